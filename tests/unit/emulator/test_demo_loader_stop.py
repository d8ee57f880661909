"""Ctrl-C while the demo loads stops the emulator under the loader: its next request fails,
which is the stop, not a failure to report with a traceback."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from crm_local import cli


class Refused(ConnectionError):
    pass


def refuse(queue_url: str) -> None:
    raise Refused("the emulator is gone")


@pytest.mark.parametrize("stopping", [True, False])
def test_a_stop_mid_load_ends_quietly_and_a_real_failure_still_says_so(
    stopping: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "_DeadLetters", refuse)
    event = threading.Event()
    if stopping:
        event.set()
    with caplog.at_level(logging.INFO, logger=cli.log.name):
        status = cli._seed("http://127.0.0.1:9", "s" * 32, 3, "q", tmp_path, None, event)
    assert status.state == "failed"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    printed = capsys.readouterr().out
    if stopping:
        assert status.error == "stopped"
        assert errors == []
        assert "FAILED" not in printed  # after "stopping ...", no alarm on the console
    else:
        assert status.error == "the emulator is gone"
        assert [r.exc_info is not None for r in errors] == [True]
        assert "demo loading FAILED" in printed
