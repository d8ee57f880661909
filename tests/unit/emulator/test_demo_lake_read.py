"""The dashboard's first read of the lake comes after `demo ready`: the demo's data (customers,
folded events, segments, journeys, tickets) is complete before it, and the read only fills the
dashboard's cache. The status says when the read finished; a failed read leaves the demo
ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_local import cli
from crm_local.demo_status import read_status
from crm_local.seed import ApiClient

LAKE_READ = ("GET", "/analytics/metrics/active_customers")


class NoDeadLetters:
    def __init__(self, queue_url: str) -> None:
        pass

    def check(self) -> None:
        pass


def fake_loading(monkeypatch: pytest.MonkeyPatch, state_dir: Path, answer: int) -> list[Any]:
    """The loader's steps replaced by stubs; returns what the API was asked, with the demo's
    state at the moment of asking."""
    asked: list[Any] = []

    def request(self: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status = read_status(state_dir)
        asked.append(((method, path), status.state if status else None))
        return answer, {}

    monkeypatch.setattr(cli, "_DeadLetters", NoDeadLetters)
    monkeypatch.setattr(
        cli, "load_shop", lambda client, shop, **kw: {"customers": len(shop), "events": 5}
    )
    monkeypatch.setattr(cli, "_first_segment_run", lambda client: "run-1")
    monkeypatch.setattr(cli, "load_journeys", lambda client: 0)
    monkeypatch.setattr(cli, "load_tickets", lambda client, shop: 0)
    monkeypatch.setattr(ApiClient, "request", request)
    return asked


def test_the_lake_is_read_after_the_demo_is_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = fake_loading(monkeypatch, tmp_path, 200)
    status = cli._seed("http://127.0.0.1:9", "s" * 32, 3, "q", tmp_path)
    assert asked == [(LAKE_READ, "ready")]  # asked once, the demo already ready
    assert status.state == "ready"
    assert status.segment_run == "run-1"
    assert status.lake_read_seconds is not None
    assert status.lake_read_seconds >= status.seconds
    assert read_status(tmp_path) == status
    printed = capsys.readouterr().out
    assert printed.index("demo ready") < printed.index("dashboard: the lake was read")


def test_a_failed_lake_read_leaves_the_demo_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = fake_loading(monkeypatch, tmp_path, 503)
    status = cli._seed("http://127.0.0.1:9", "s" * 32, 3, "q", tmp_path)
    assert [a[0] for a in asked] == [LAKE_READ]
    assert status.state == "ready"
    assert status.lake_read_seconds is None
    stored = read_status(tmp_path)
    assert stored == status
