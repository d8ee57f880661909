"""Events in transit: what POST /events queues holds no free text or phone/email in the clear,
and opens again for the folder only as it was sealed (in-memory keys: exact and fast)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from crm.keys import DataKeys, TransitKeys
from crm.pii import BlindIndex
from crm.profiles.customer_events import CUSTOMER_EVENT, AfterSalesEvent, BrowseEvent, CustomerEvent
from crm.profiles.models import Channel
from crm.profiles.service import NoRuleSegments, ProfileService
from crm.profiles.store import ProfileStore
from crm.profiles.transit import PENDING_CUSTOMER, EventTransit
from crm.sqs_consumer import PoisonMessage
from tests.fakes import FakeDataKeys, FakeProfileStore, FakeTransitKeys, sequence_ids

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
NOTE = "奶粉罐有凹痕 / tin dented"
INDEX = BlindIndex(b"test-key")


def events(*raw: dict[str, Any]) -> list[CustomerEvent]:
    return [CUSTOMER_EVENT.validate_python(e) for e in raw]


def complaint(event_id: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": "after_sales", "case": "complaint", "note": NOTE,
            "customer_id": "c1", "occurred_at": "2026-11-20T10:00:00Z", **extra}  # fmt: skip


SEARCH = {"event_id": "q-1", "type": "search", "query": "奶粉 三段",
          "occurred_at": "2026-11-20T10:00:00Z",
          "identity": {"channel": "phone", "external_id": "13812345678"}}  # fmt: skip
VIEW = {"event_id": "v-1", "type": "product_viewed", "sku": "s-1",
        "occurred_at": "2026-11-20T10:00:00Z",
        "identity": {"channel": "email", "external_id": "Lin@Example.com"}}  # fmt: skip


class Transit:
    def __init__(self) -> None:
        self.keys = FakeTransitKeys()
        service = ProfileService(
            cast(ProfileStore, FakeProfileStore()),
            cast(DataKeys, FakeDataKeys()),
            lambda: INDEX,
            NoRuleSegments(),
            clock=lambda: NOW,
            ids=sequence_ids("c"),
        )
        self.transit = EventTransit(
            cast(TransitKeys, self.keys), service.stored_identity, sequence_ids("batch-")
        )


@pytest.fixture
def t() -> Transit:
    return Transit()


def test_free_text_is_sealed_the_query_stays_behind_and_identities_are_indexed(t: Transit) -> None:
    bodies = t.transit.pack(events(complaint("n-1"), SEARCH, VIEW))
    queued = "\n".join(bodies)
    for clear in ("凹痕", "dented", "奶粉", "三段", "13812345678", "lin@example.com", "Lin@"):
        assert clear not in queued
    first = json.loads(bodies[0])
    assert first["v"] == 2
    assert first["key"]["batch_id"] == "batch-1"
    assert set(first["sealed"]) == {"note"}
    search = json.loads(bodies[1])
    assert search["identity"] == {"channel": "phone", "display": "138****5678",
                                  "key": INDEX.token("phone", "+8613812345678")}  # fmt: skip
    assert "key" not in search  # nothing sealed: no key travels
    assert json.loads(bodies[2])["identity"]["display"] == "l***@example.com"

    note, search_back, view = (t.transit.unpack(b) for b in bodies)
    assert isinstance(note.event, AfterSalesEvent)
    assert note.event.note == NOTE
    assert note.event.customer_id == "c1"
    assert note.identity is None
    assert isinstance(search_back.event, BrowseEvent)
    assert search_back.event.query is None
    assert search_back.event.customer_id == PENDING_CUSTOMER
    assert search_back.identity is not None
    assert search_back.identity.channel is Channel.PHONE
    assert view.identity is not None
    assert view.identity.key == INDEX.token("email", "lin@example.com")


def test_one_key_per_batch_with_free_text_and_one_unwrap_per_batch(t: Transit) -> None:
    assert t.transit.pack(events(SEARCH, VIEW))
    assert t.keys.created == 0  # no free text, no KMS call
    bodies = t.transit.pack(events(*[complaint(f"n-{i}") for i in range(100)]))
    assert t.keys.created == 1
    assert len({json.loads(b)["key"]["wrapped"] for b in bodies}) == 1
    for body in bodies:
        t.transit.unpack(body)
    assert t.keys.unwrapped == 1
    other = t.transit.pack(events(complaint("n-x")))
    t.transit.unpack(other[0])
    assert (t.keys.created, t.keys.unwrapped) == (2, 2)


def test_a_sealed_note_opens_only_for_its_own_event_and_batch(t: Transit) -> None:
    one, two = (json.loads(b) for b in t.transit.pack(events(complaint("n-1"), complaint("n-2"))))
    moved = {**two, "sealed": one["sealed"]}
    with pytest.raises(PoisonMessage, match="sealed note cannot be opened"):
        t.transit.unpack(json.dumps(moved))
    (elsewhere,) = (json.loads(b) for b in t.transit.pack(events(complaint("n-1"))))
    other_key = {**one, "key": elsewhere["key"]}
    with pytest.raises(PoisonMessage, match="sealed note cannot be opened"):
        t.transit.unpack(json.dumps(other_key))
    forged = {**one, "key": {**one["key"], "batch_id": "batch-9"}}
    with pytest.raises(PoisonMessage, match="cannot be unwrapped"):
        t.transit.unpack(json.dumps(forged))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"v": 3}, "v"),
        ({"sealed": {"query": "v1:AAAA"}}, "only free-text fields are sealed"),
        ({"key": None}, "sealed fields need the batch's key"),
        ({"identity": {"channel": "app", "key": "u-1", "display": "u-1"}}, "exactly one of"),
        ({"extra": 1}, "extra"),
    ],
)
def test_malformed_queued_events_are_poison_named_by_field(
    t: Transit, change: dict[str, Any], problem: str
) -> None:
    (body,) = t.transit.pack(events(complaint("n-1")))
    with pytest.raises(PoisonMessage, match=problem) as caught:
        t.transit.unpack(json.dumps({**json.loads(body), **change}))
    assert NOTE not in str(caught.value)


def test_an_event_queued_by_the_previous_release_still_opens(t: Transit) -> None:
    """Before events travelled sealed the queue held the event as the client sent it."""
    legacy = CUSTOMER_EVENT.validate_python(complaint("n-1", customer_id=None,
                                                      identity=SEARCH["identity"]))  # fmt: skip
    arrival = t.transit.unpack(legacy.model_dump_json())
    assert arrival.event == legacy
    assert arrival.identity is None
    with pytest.raises(PoisonMessage, match="not a valid customer event"):
        t.transit.unpack('{"type": "order_paid", "phone": "13812345678"')
