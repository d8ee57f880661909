"""Optimistic concurrency: a change that lands between a read and its commit is never lost."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from crm.profiles.service import Loaded, ProfileService
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

    original = ProfileService.load_many
    raced: list[bool] = []

    def load_then_race(
        self: ProfileService, customer_ids: Collection[str], order_ids: Collection[str] = ()
    ) -> Loaded:
        loaded = original(self, customer_ids, order_ids)
        if not raced:  # an agent edits the profile right after the fold has read it
            raced.append(True)
            edit = {"version": loaded.live[cid].version, "attributes": {"city": "成都"}}
            assert suite.call("PATCH", f"/customers/{cid}", edit).status == 200
        return loaded

    monkeypatch.setattr(ProfileService, "load_many", load_then_race)
    suite.drain()
    monkeypatch.undo()

    view = suite.call("GET", f"/customers/{cid}").body
    assert view["attributes"]["city"] == "成都"
    assert view["orders"]["order_count"] == 1
    assert view["version"] == 2
