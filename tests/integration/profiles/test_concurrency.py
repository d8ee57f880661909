"""Optimistic concurrency: a change that lands between a read and its commit is never lost."""

from __future__ import annotations

import pytest

from crm.profiles.records import ProfileRecord
from crm.profiles.service import ProfileService
from crm_local.harness import Suite


def test_a_fold_racing_an_edit_retries_and_keeps_both(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"identities": [{"channel": "app", "external_id": "race"}]}
    cid = suite.call("POST", "/customers", body).body["customer_id"]
    event = {
        "event_id": "e1", "type": "order_paid", "order_id": "o1", "amount": "10.00",
        "customer_id": cid, "occurred_at": "2026-11-01T00:00:00Z",
    }  # fmt: skip
    suite.call("POST", "/events", {"events": [event]})

    original = ProfileService.load
    raced: list[bool] = []

    def load_then_race(self: ProfileService, customer_id: str) -> ProfileRecord:
        record = original(self, customer_id)
        if not raced:  # an agent edits the profile right after the fold has read it
            raced.append(True)
            edit = {"version": record.version, "attributes": {"city": "成都"}}
            assert suite.call("PATCH", f"/customers/{cid}", edit).status == 200
        return record

    monkeypatch.setattr(ProfileService, "load", load_then_race)
    suite.drain()
    monkeypatch.undo()

    view = suite.call("GET", f"/customers/{cid}").body
    assert view["attributes"]["city"] == "成都"
    assert view["orders"]["order_count"] == 1
    assert view["version"] == 2
