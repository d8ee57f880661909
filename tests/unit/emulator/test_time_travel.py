"""The emulator's clock: an offset kept in the state folder, read by everything it runs, and a
scheduler that fires each schedule once after a jump."""

from __future__ import annotations

import json
import stat
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crm_local.cli import main
from crm_local.clock import Clock
from crm_local.time_travel import (
    CLOCK_FILE,
    RECHECK_S,
    EmulatedTime,
    advance,
    parse_duration,
    read_offset,
)
from crm_local.triggers import ScheduleTrigger


def test_durations_in_days_hours_minutes_and_seconds() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("45s") == timedelta(seconds=45)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    for wrong in ("", "30", "-1d", "30 days", "1w", "d"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(wrong)


def test_the_offset_is_kept_private_in_the_state_folder(tmp_path: Path) -> None:
    assert read_offset(tmp_path) == timedelta()
    advance(tmp_path, timedelta(days=30))
    advance(tmp_path, timedelta(hours=1))
    assert read_offset(tmp_path) == timedelta(days=30, hours=1)
    mode = stat.S_IMODE((tmp_path / CLOCK_FILE).stat().st_mode)
    assert mode == 0o600


def test_a_running_emulator_sees_an_offset_moved_by_another_process(tmp_path: Path) -> None:
    emulated = EmulatedTime(tmp_path)
    assert abs(emulated.now() - datetime.now(UTC)) < timedelta(seconds=5)
    advance(tmp_path, timedelta(days=30))  # what `crm-local clock advance 30d` does
    time.sleep(RECHECK_S + 0.1)
    ahead = emulated.now() - datetime.now(UTC)
    assert timedelta(days=30) - timedelta(seconds=5) < ahead < timedelta(days=30, seconds=5)


def test_crm_local_clock_shows_and_advances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--state-dir", str(tmp_path), "clock"]) == 0
    assert "(real time +0d 00:00:00)" in capsys.readouterr().out
    assert main(["--state-dir", str(tmp_path), "clock", "advance", "30d"]) == 0
    assert main(["--state-dir", str(tmp_path), "clock", "advance", "90m"]) == 0
    shown = capsys.readouterr().out.splitlines()[-1]
    assert shown.endswith("(real time +30d 01:30:00)")
    assert json.loads((tmp_path / CLOCK_FILE).read_text()) == {"offset_seconds": 2597400.0}
    assert main(["--state-dir", str(tmp_path), "clock", "advance", "soon"]) == 2
    assert "not a duration" in capsys.readouterr().err


def test_after_a_jump_each_schedule_fires_once(tmp_path: Path) -> None:
    fired: list[tuple[str, str]] = []
    now = [datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC)]
    schedules = [
        ScheduleTrigger("TimerSweepFunction", "sweep", "rate(1 minute)", None, True),
        ScheduleTrigger("SegmentPlannerFunction", "nightly", "cron(0 18 * * ? *)", None, True),
        ScheduleTrigger("Other", "first-of-month", "cron(0 0 1 * ? *)", None, True),
    ]
    clock = Clock(
        schedules,
        lambda function, body: fired.append((function, json.loads(body)["time"])),
        threading.Event(),
        now=lambda: now[0],
    )
    now[0] += timedelta(seconds=45)
    clock.tick()
    assert fired == []
    now[0] += timedelta(seconds=20)  # 08:01:35: the rate's first period is over
    clock.tick()
    assert fired == [("TimerSweepFunction", "2026-11-23T08:01:30Z")]
    fired.clear()
    now[0] += timedelta(days=30)  # crm-local clock advance 30d
    clock.tick()
    assert sorted(fired) == [
        ("Other", "2026-12-01T00:00:00Z"),
        ("SegmentPlannerFunction", "2026-12-22T18:00:00Z"),
        ("TimerSweepFunction", "2026-12-23T08:01:30Z"),
    ]
    fired.clear()
    now[0] += timedelta(seconds=61)
    clock.tick()
    assert fired == [("TimerSweepFunction", "2026-12-23T08:02:30Z")]
