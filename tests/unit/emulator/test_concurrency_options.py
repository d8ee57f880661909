"""How many containers and queue pollers the emulator runs, and `crm-local up --concurrency`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_local import cli
from crm_local.emulator import DEFAULT_CONCURRENCY, Emulator, pollers_per_queue


class Started(Exception):
    """Raised by the stand-in emulator: `up` got as far as making one."""


def options_of_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *flags: str) -> dict[str, Any]:
    def stand_in(**options: Any) -> None:
        raise Started(options)

    monkeypatch.setattr(cli, "Emulator", stand_in)
    with pytest.raises(Started) as started:
        cli.main(["--state-dir", str(tmp_path), "up", "--port", "0", *flags])
    options: dict[str, Any] = started.value.args[0]
    return options


def test_a_burst_gets_at_least_ten_containers_per_function_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert DEFAULT_CONCURRENCY >= 10
    assert Emulator().concurrency == DEFAULT_CONCURRENCY
    assert options_of_up(monkeypatch, tmp_path)["concurrency"] == DEFAULT_CONCURRENCY


def test_up_takes_the_concurrency(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert options_of_up(monkeypatch, tmp_path, "--concurrency", "3")["concurrency"] == 3


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_up_refuses_a_concurrency_below_one(
    value: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--state-dir", str(tmp_path), "up", "--concurrency", value])
    assert exited.value.code == 2
    assert "--concurrency" in capsys.readouterr().err


def test_queue_pollers_do_not_grow_with_the_api_concurrency() -> None:
    assert pollers_per_queue(DEFAULT_CONCURRENCY) == 4
    assert pollers_per_queue(100) == 4
    assert pollers_per_queue(1) == 1  # never more pollers than containers to hand batches to
