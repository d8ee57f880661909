"""Campaigns' erasure where a customer's id sits inside shared items: a segment send's page of
members, a coupon issued with her message, a conversion and an order claim. Her id leaves
them all, the campaign's report keeps its totals, and the other recipients are untouched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from crm.campaigns import CampaignsPersonalData
from crm.campaigns.policy import ContactPolicy
from crm.composition import Crm, Settings, reset, root
from crm.erasure import Identifiers, mentioning
from crm.personal_data import DataSubject
from crm_local.cli import campaigns_backfill
from crm_local.harness import Suite, count_requests
from tests.integration.campaigns.conftest import COUPON_TEMPLATE
from tests.integration.sends.conftest import LIVE_START, FakeDispatch, Kit, MovingClock

CONVERSIONS = "ConversionsQueue"


@pytest.fixture
def kit(suite: Suite) -> Iterator[Kit]:
    clock = MovingClock(LIVE_START)
    reset(Crm(Settings.from_env(), clock=clock, sleep=lambda _: None))
    put = suite.call("PUT", "/campaigns/templates/t-1", COUPON_TEMPLATE, role="marketer")
    assert put.status == 200
    yield Kit(suite, clock, FakeDispatch(clock))
    reset()


def customer(kit: Kit, n: int) -> str:
    body = {"identities": [{"channel": "app", "external_id": f"r-{n}"}],
            "attributes": {"name": "李四", "phone": f"+86139{n:08d}"}}  # fmt: skip
    cid: str = kit.suite.call("POST", "/customers", body).body["customer_id"]
    change = {"purpose": "marketing_sms", "granted": True, "source": "app"}
    assert kit.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
    return cid


def items(suite: Suite) -> list[dict[str, Any]]:
    table = suite.stack.refs["CampaignsTable"]
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    return [item for page in pages for item in page["Items"]]


def theirs(suite: Suite, customer_id: str) -> list[dict[str, Any]]:
    """The items that name a customer, send pages aside (they name every recipient)."""
    named = mentioning(items(suite), Identifiers.named([(customer_id, "customer_id")]))
    return [item for item, _ in named if not item["PK"]["S"].startswith("SEND#")]


def report(kit: Kit, campaign_id: str) -> dict[str, Any]:
    out = kit.suite.call("GET", f"/campaigns/{campaign_id}/report", role="analyst")
    assert out.status == 200, out.body
    body: dict[str, Any] = out.body
    return body


def sent_and_converted(kit: Kit) -> tuple[str, list[str], str, dict[str, Any]]:
    """Six recipients of a send with a coupon; one of them (alice) pays with hers: (alice,
    the recipients in the order they were created, the send id, her payment)."""
    offer = {"offer_id": "dec-99-50", "description": "满99减50", "kind": "amount_off",
             "amount_off": "50.00", "min_order": "99.00", "expires_at": "2026-12-31T00:00:00Z",
             "budget": 100}  # fmt: skip
    assert kit.suite.call("POST", "/campaigns/coupons/offers", offer, role="marketer").status == 201
    customers = [customer(kit, n) for n in range(6)]
    policy = ContactPolicy()
    alice = next(c for c in customers if not policy.in_global_control(c))
    kit.members("rfm:champions", customers)
    send_id = kit.create_send(holdout_percent=0, coupon_offer_id="dec-99-50")["send_id"]
    kit.act(send_id, "start")
    kit.run()
    code = root().send_store.issued_code("dec-99-50", f"send#{send_id}#A#{alice}#sms")
    assert code is not None
    kit.clock.advance(hours=1)
    now = kit.clock.now.isoformat()
    paid = {"event_id": "o-1-paid", "type": "order_paid", "customer_id": alice,
            "occurred_at": now, "order_id": "o-1", "amount": "120.00", "channel": "app",
            "coupon_codes": [code]}  # fmt: skip
    assert kit.suite.call("POST", "/events", {"events": [paid]}).status == 202
    kit.suite.drain()
    assert kit.suite.drain("CampaignConversionsFunction", CONVERSIONS) == 1
    return alice, customers, send_id, paid


def test_her_id_leaves_send_pages_coupons_and_conversions_and_the_totals_stay(kit: Kit) -> None:
    alice, customers, send_id, paid = sent_and_converted(kit)
    others = [c for c in customers if c != alice]
    before = report(kit, send_id)
    assert before["variants"][0]["converted"] == 1

    subject = DataSubject(
        customer_id=alice, pseudonym="p" * 32, external_ids=(f"r-{customers.index(alice)}",)
    )
    store = CampaignsPersonalData(kit.suite.stack.refs["CampaignsTable"])
    held = {h.kind: h.count for h in store.inventory(subject).holdings}
    assert {"message", "caps", "touch", "coupon", "coupon_claim", "conversion", "order_claim",
            "send_page"} <= set(held), held  # fmt: skip
    assert not store.verify(subject).clean
    others_before = {c: theirs(kit.suite, c) for c in others}
    assert all(others_before.values())

    result = store.erase(subject)
    assert result.anonymised == {"conversion": 1, "order_claim": 1, "send_page": 1}
    assert store.verify(subject).clean
    ids = Identifiers.of(subject)
    assert list(mentioning(items(kit.suite), ids)) == []
    # The other recipients keep everything; her place in the page is marked, not removed.
    assert {c: theirs(kit.suite, c) for c in others} == others_before
    [page] = [i for i in items(kit.suite) if i["PK"]["S"] == f"SEND#{send_id}"]
    members = [m["S"] for m in page["members"]["L"]]
    assert members.count("ERASED") == 1
    assert set(members) - {"ERASED"} == set(others)
    # The report keeps its totals: the conversion is kept under an anonymous id.
    assert report(kit, send_id) == before
    # The order still counts once: a redelivered payment counts nothing.
    assert kit.suite.call("POST", "/events", {"events": [paid]}).status == 202
    kit.suite.drain()
    kit.suite.drain("CampaignConversionsFunction", CONVERSIONS)
    assert report(kit, send_id) == before
    # Erasing again changes nothing.
    snapshot = items(kit.suite)
    again = store.erase(subject)
    assert (again.erased, again.anonymised) == ({}, {})
    assert items(kit.suite) == snapshot


def test_her_items_are_found_by_the_customer_index_in_exact_requests(kit: Kit) -> None:
    alice, customers, send_id, _ = sent_and_converted(kit)
    # Every item that names her carries her id as the index key, a send page's members
    # through one member entry each (the page itself names everyone).
    named = theirs(kit.suite, alice)
    assert len(named) >= 7, named
    assert all(item.get("CUST") == {"S": alice} for item in named), named
    entries = [i for i in items(kit.suite) if i["PK"]["S"].startswith(f"SENDMEM#{send_id}#")]
    assert sorted(i["SK"]["S"] for i in entries) == sorted(customers)
    assert all(i["CUST"]["S"] == i["SK"]["S"] for i in entries)

    # Her id and a profile merged into hers (nothing stored under it): one Query each.
    subject = DataSubject(
        customer_id=alice,
        pseudonym="p" * 32,
        external_ids=(f"r-{customers.index(alice)}",),
        merged_ids=("c-merged-away",),
    )
    store = CampaignsPersonalData(kit.suite.stack.refs["CampaignsTable"])
    with count_requests() as counts:
        held = store.inventory(subject)
    assert dict(counts) == {"dynamodb.Query": 2, "dynamodb.BatchGetItem": 1}
    assert sum(h.count for h in held.holdings) == len(named)
    with count_requests() as counts:
        exported = store.export(subject)
    assert dict(counts) == {"dynamodb.Query": 2, "dynamodb.BatchGetItem": 1}
    assert [m["campaign_id"] for m in exported.sections["campaign_messages"]] == [send_id]
    with count_requests() as counts:
        result = store.erase(subject)
    assert dict(counts) == {
        "dynamodb.Query": 2,
        "dynamodb.BatchGetItem": 2,  # her items (and push endpoint), then the page she is on
        "dynamodb.UpdateItem": 2,  # the order claim unlinked, the page's member replaced
        "dynamodb.BatchWriteItem": 2,  # the conversion moved; deletions (under 25)
    }
    assert sum(result.erased.values()) + sum(result.anonymised.values()) == len(named)
    with count_requests() as counts:
        proof = store.verify(subject)
    assert dict(counts) == {"dynamodb.Query": 2, "dynamodb.BatchGetItem": 1}
    assert proof.clean
    assert proof.checked == 3
    assert theirs(kit.suite, alice) == []
    # The others are still found by the index.
    bob = next(c for c in customers if c != alice)
    theirs_now = store.inventory(
        DataSubject(customer_id=bob, pseudonym="q" * 32, external_ids=())
    ).holdings
    assert "send_page" in {h.kind for h in theirs_now}


def test_items_written_before_the_index_are_indexed_by_the_backfill(kit: Kit) -> None:
    alice, customers, _, _ = sent_and_converted(kit)
    table = kit.suite.stack.refs["CampaignsTable"]
    ddb = boto3.client("dynamodb")

    def ordered() -> list[dict[str, Any]]:
        return sorted(items(kit.suite), key=lambda i: (i["PK"]["S"], i["SK"]["S"]))

    as_written = ordered()
    # The table as it was before the index: no CUST anywhere, no member entries.
    for item in as_written:
        key = {"PK": item["PK"], "SK": item["SK"]}
        if item["PK"]["S"].startswith("SENDMEM#"):
            ddb.delete_item(TableName=table, Key=key)
        elif "CUST" in item:
            ddb.update_item(TableName=table, Key=key, UpdateExpression="REMOVE CUST")
    subject = DataSubject(customer_id=alice, pseudonym="p" * 32)
    store = CampaignsPersonalData(table)
    assert store.inventory(subject).holdings == ()  # the index finds nothing of hers

    done = campaigns_backfill()
    # Every item as today's writers write it: the backfill misses no kind and invents none.
    assert ordered() == as_written
    assert done["send_page"] == len(customers)
    assert {"message", "caps", "touch", "coupon", "coupon_claim", "conversion",
            "order_claim"} <= set(done), done  # fmt: skip
    # Run again: only the member entries are rewritten (as they were).
    assert campaigns_backfill() == {"send_page": len(customers)}
    assert ordered() == as_written
    store.erase(subject)
    assert store.verify(subject).clean
    assert theirs(kit.suite, alice) == []
