"""Local time travel: the emulator's clock runs ahead of the real one by an offset that
`crm-local clock advance 30d` moves, so a 30-day wait fires in seconds.

The offset lives in the state folder (`clock.json`, mode 0600 like the other state files).
Every function the emulator runs reads it through the composition root's clock
(`crm.composition.Crm(..., clock=...)`), and so do the emulator's scheduler and the timer
sweep; production code never reads an offset, it only ever gets a clock.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crm_local.private_files import write_private

CLOCK_FILE = "clock.json"
# How often a running emulator looks at the file for an offset another process moved.
RECHECK_S = 0.5

_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, or several together (`1d12h`); forward only."""
    cleaned = text.strip().lower()
    parts = _PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"not a duration: {text!r} (say 30d, 12h, 90m, 45s or 1d12h)")
    delta = timedelta()
    for number, unit in parts:
        delta += timedelta(**{_UNITS[unit]: int(number)})
    return delta


def describe(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"+{days}d {hours:02d}:{minutes:02d}:{seconds:02d}"


def read_offset(state_dir: Path) -> timedelta:
    path = state_dir / CLOCK_FILE
    if not path.exists():
        return timedelta()
    try:
        return timedelta(seconds=float(json.loads(path.read_text())["offset_seconds"]))
    except (ValueError, KeyError, TypeError):
        return timedelta()


def write_offset(state_dir: Path, offset: timedelta) -> None:
    body = json.dumps({"offset_seconds": offset.total_seconds()}).encode()
    write_private(state_dir / CLOCK_FILE, body)


def advance(state_dir: Path, by: timedelta) -> timedelta:
    """Move the emulator's clock forward; returns the new offset."""
    offset = read_offset(state_dir) + by
    write_offset(state_dir, offset)
    return offset


class EmulatedTime:
    """Real time plus the state folder's offset; a moved offset is seen within RECHECK_S."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / CLOCK_FILE
        self._state_dir = state_dir
        self._lock = threading.Lock()
        self._offset = read_offset(state_dir)
        self._stamp = self._file_stamp()
        self._checked = time.monotonic()

    def _file_stamp(self) -> int | None:
        try:
            return self._path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    @property
    def offset(self) -> timedelta:
        with self._lock:
            if time.monotonic() - self._checked >= RECHECK_S:
                self._checked = time.monotonic()
                stamp = self._file_stamp()
                if stamp != self._stamp:
                    self._stamp = stamp
                    self._offset = read_offset(self._state_dir)
            return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def install_clock(now: EmulatedTime) -> None:
    """The composition root every function of this process uses, reading the emulated time."""
    from crm.composition import Crm, Settings, reset

    reset(Crm(Settings.from_env(), clock=now.now))
