"""The example journeys load once the first segment run's announcements have all been read by
the journey triggers (their queue empty three looks in a row): only activity after the demo's
history enters them, the same every time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_local import cli
from crm_local.seed import ApiClient


class Counts:
    """A queue's backlog as `_Backlog` reads it: one count per look."""

    def __init__(self, counts: list[int], log: list[str]) -> None:
        self.url = "http://127.0.0.1:9/123456789012/triggers"
        self.counts, self.log = counts, log

    def __call__(self) -> int:
        count = self.counts.pop(0) if self.counts else 0
        self.log.append(f"backlog {count}")
        return count


def test_the_wait_ends_after_three_empty_looks_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "SETTLE_LOOK_S", 0.001)
    log: list[str] = []
    cli._wait_until_empty(Counts([40, 0, 0, 3, 0, 0, 0, 9], log))  # type: ignore[arg-type]
    assert log == ["backlog 40", "backlog 0", "backlog 0", "backlog 3", "backlog 0",
                   "backlog 0", "backlog 0"]  # fmt: skip


def test_a_queue_that_never_empties_fails_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "SETTLE_LOOK_S", 0.001)
    monkeypatch.setattr(cli, "SETTLE_TIMEOUT_S", 0.05)
    with pytest.raises(RuntimeError, match="triggers still held messages"):
        cli._wait_until_empty(Counts([1] * 10_000, []))  # type: ignore[arg-type]


def test_journeys_load_after_the_segment_changes_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []
    monkeypatch.setattr(cli, "SETTLE_LOOK_S", 0.001)

    class NoDeadLetters:
        def __init__(self, queue_url: str) -> None:
            pass

        def check(self) -> None:
            pass

    def backlog(url: str) -> Any:
        return Counts([7, 2], log) if url == "triggers-queue" else (lambda: 0)

    def request(self: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return 200, {}

    monkeypatch.setattr(cli, "_DeadLetters", NoDeadLetters)
    monkeypatch.setattr(cli, "_Backlog", backlog)
    monkeypatch.setattr(
        cli, "load_shop", lambda client, shop, **kw: {"customers": len(shop), "events": 5}
    )

    def step(name: str, answer: Any) -> Any:
        def run(*args: Any) -> Any:
            log.append(name)
            return answer

        return run

    monkeypatch.setattr(cli, "_first_segment_run", step("run", "run-1"))
    monkeypatch.setattr(cli, "load_journeys", step("journeys", 0))
    monkeypatch.setattr(cli, "load_tickets", step("tickets", 0))
    monkeypatch.setattr(ApiClient, "request", request)
    status = cli._seed("http://127.0.0.1:9", "s" * 32, 3, "q", tmp_path,
                       announced_to="triggers-queue")  # fmt: skip
    assert status.state == "ready"
    assert log == ["run", "backlog 7", "backlog 2", "backlog 0", "backlog 0", "backlog 0",
                   "journeys", "tickets"]  # fmt: skip
