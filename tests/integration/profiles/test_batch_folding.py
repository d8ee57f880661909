"""Folding an SQS batch together (ProfileEventsFunction against moto): one BatchGetItem for the
batch, one TransactWriteItems per customer, and every guarantee the fold had one event at a
time: exactly once, partial batch failures, optimistic concurrency per customer, refunds against
payments, rule-segment shifts once per batch, identities, merged profiles."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from crm import aws
from crm.composition import root
from crm.profiles import event_folding
from crm.profiles.service import BACKOFF_BASE_S, BACKOFF_CAP_S, MAX_ATTEMPTS, Loaded, ProfileService
from crm.profiles.store import ProfileStore, SaveProfile, Write
from crm_local.harness import Suite, count_requests
from tests.integration.profiles.test_profile_events import lake_objects, new_customer, recent

QUEUE, FUNCTION = "ProfileEventsQueue", "ProfileEventsFunction"


def paid(
    cid: str, order: str, amount: str = "10.00", event_id: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"{order}-paid", "type": "order_paid", "customer_id": cid,
        "order_id": order, "amount": amount, "occurred_at": recent(),
    }  # fmt: skip


def refund(cid: str, event_id: str, order: str, amount: str) -> dict[str, Any]:
    return {
        "event_id": event_id, "type": "order_refunded", "customer_id": cid, "order_id": order,
        "amount": amount, "occurred_at": recent(),
    }  # fmt: skip


def viewed(cid: str, event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "type": "product_viewed", "customer_id": cid, "sku": "s-1",
            "occurred_at": recent()}  # fmt: skip


def queue(suite: Suite, *events: dict[str, Any]) -> None:
    """POST /events, one request per 100 events."""
    for start in range(0, len(events), 100):
        chunk = list(events[start : start + 100])
        assert suite.call("POST", "/events", {"events": chunk}).status == 202


def take(suite: Suite, count: int) -> list[dict[str, Any]]:
    """`count` queued messages, to deliver as one batch (SQS hands out 10 per receive)."""
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        got = suite.receive(QUEUE)
        assert got, f"the queue holds {len(messages)} messages, not {count}"
        messages += got
    assert len(messages) == count
    return messages


def deliver(suite: Suite, messages: list[dict[str, Any]]) -> set[str]:
    """Deliver one batch; the message ids it reported as failed."""
    response = suite.deliver(FUNCTION, QUEUE, messages)
    return {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}


def event_id_of(message: dict[str, Any]) -> str:
    return str(json.loads(message["Body"])["event"]["event_id"])


def orders(suite: Suite, cid: str) -> dict[str, Any]:
    return dict(suite.call("GET", f"/customers/{cid}").body["orders"])


def timeline_ids(suite: Suite, cid: str) -> list[str]:
    return sorted(e["event_id"] for e in suite.call("GET", f"/customers/{cid}").body["timeline"])


def lake_event_ids(suite: Suite) -> list[str]:
    return sorted(r["event_id"] for rows in lake_objects(suite).values() for r in rows)


@contextmanager
def captured(operation: str, service: str = "dynamodb") -> Iterator[list[dict[str, Any]]]:
    """The parameters of every `operation` (DynamoDB's, or the bus's: "events") the functions
    call meanwhile."""
    calls: list[dict[str, Any]] = []
    client = aws.events() if service == "events" else aws.dynamodb()
    event = f"provide-client-params.{service}.{operation}"

    def keep(params: dict[str, Any], **_: Any) -> None:
        calls.append(copy.deepcopy(params))

    client.meta.events.register(event, keep, unique_id=f"capture-{operation}")
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, unique_id=f"capture-{operation}")


def profile_keys(batch_get: dict[str, Any]) -> list[str]:
    (request,) = batch_get["RequestItems"].values()
    return sorted(k["PK"]["S"] for k in request["Keys"] if k["SK"]["S"] == "PROFILE")


@pytest.fixture
def sleeps(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoffs the fold sleeps, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(root().profile_service, "_sleep", slept.append)
    return slept


# ---------------------------------------------------------------------- requests per batch
def test_a_batch_of_ten_events_of_ten_customers_takes_thirteen_requests(suite: Suite) -> None:
    customers = [new_customer(suite, f"u-{n}") for n in range(10)]
    queue(suite, paid(customers[0], "warm"))
    suite.drain()  # warm: the blind-index key is fetched once per container
    queue(suite, *[paid(cid, f"o-{cid}") for cid in customers])
    messages = take(suite, 10)
    with count_requests() as counts:
        assert deliver(suite, messages) == set()
    assert dict(counts) == {
        "dynamodb.BatchGetItem": 1,  # was 10 GetItem
        "dynamodb.TransactWriteItems": 10,
        "s3.PutObject": 1,
        # One entry per customer, its paid order inside (campaigns' attribution): 10 a call.
        "events.PutEvents": 1,
    }
    assert sum(counts.values()) == 13  # was 22, then 14 with an entry per paid order
    assert all(orders(suite, cid)["order_count"] == 1 for cid in customers[1:])


def test_a_late_batch_puts_one_marker_more(suite: Suite) -> None:
    """History loaded late (days no nightly compaction covers again): one more PutObject for the
    batch, the marker naming its days for the next nightly compaction."""
    customers = [new_customer(suite, f"u-{n}") for n in range(10)]
    queue(suite, paid(customers[0], "warm"))
    suite.drain()
    old = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0)
    days = [(old - timedelta(days=n)).date().isoformat() for n in range(2)]
    queue(suite, *[{**paid(cid, f"o-{cid}"), "occurred_at": f"{days[n % 2]}T10:00:00Z"}
                      for n, cid in enumerate(customers)])  # fmt: skip
    messages = take(suite, 10)
    with count_requests() as counts:
        assert deliver(suite, messages) == set()
    assert dict(counts) == {
        "dynamodb.BatchGetItem": 1,
        "dynamodb.TransactWriteItems": 10,
        "s3.PutObject": 2 + 1,  # a partition per day, and the one marker
        "events.PutEvents": 1,
    }
    (marker,) = lake_objects(suite, "lake-late/").values()
    assert marker[0]["days"] == sorted(days)


def test_a_batch_of_ten_paid_orders_of_one_customer_takes_four_requests(suite: Suite) -> None:
    cid = new_customer(suite)
    queue(suite, paid(cid, "warm"))
    suite.drain()
    queue(suite, *[paid(cid, f"o-{n}") for n in range(10)])
    messages = take(suite, 10)
    with (
        count_requests() as counts,
        captured("TransactWriteItems") as transactions,
        captured("PutEvents", "events") as published,
    ):
        assert deliver(suite, messages) == set()
    assert dict(counts) == {
        "dynamodb.BatchGetItem": 1,
        "dynamodb.TransactWriteItems": 1,
        "s3.PutObject": 1,
        "events.PutEvents": 1,  # one entry: the revision and its ten paid orders
    }
    assert len(transactions[0]["TransactItems"]) == 1 + 10  # the profile and ten entries
    (entry,) = published[0]["Entries"]
    detail = json.loads(entry["Detail"])
    assert detail["orders_paid"] == 10
    assert sorted(o["order_id"] for o in detail["paid_orders"]) == [f"o-{n}" for n in range(10)]
    assert orders(suite, cid)["order_count"] == 11


def test_a_batch_reads_at_most_100_keys_per_request(suite: Suite) -> None:
    known = [new_customer(suite, f"u-{n}") for n in range(3)]
    ghosts = [f"ghost-{n}" for n in range(102)]
    sqs = boto3.client("sqs")
    for cid in [*known, *ghosts]:  # queued as an older release did: intake checks customers
        sqs.send_message(QueueUrl=suite.queue_url(QUEUE), MessageBody=json.dumps(paid(cid, cid)))
    messages = take(suite, 105)
    with captured("BatchGetItem") as reads:
        failed = deliver(suite, messages)
    # Two keys a customer (its profile and its scores item): 210 keys in three requests.
    keys = sorted(len(r["RequestItems"][next(iter(r["RequestItems"]))]["Keys"]) for r in reads)
    assert keys == [10, 100, 100]
    assert len(failed) == 102  # the unknown customers, each failing alone
    assert all(orders(suite, cid)["order_count"] == 1 for cid in known)


def test_keys_left_unprocessed_are_asked_again(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers = [new_customer(suite, f"u-{n}") for n in range(4)]
    queue(suite, *[paid(cid, f"o-{cid}") for cid in customers])
    messages = take(suite, 4)
    client = aws.dynamodb()
    real = client.batch_get_item
    throttled: list[int] = []

    def half_unprocessed(**params: Any) -> Any:
        out: Any = real(**params)
        if not throttled:  # DynamoDB under throttling answers part of the keys
            table = next(iter(params["RequestItems"]))
            request = params["RequestItems"][table]
            throttled.append(len(request["Keys"]))
            answered = out["Responses"][table]
            out["Responses"][table] = answered[:2]
            unanswered = [{"PK": i["PK"], "SK": i["SK"]} for i in answered[2:]]
            out["UnprocessedKeys"] = {table: {**request, "Keys": unanswered}}
        return out

    monkeypatch.setattr(client, "batch_get_item", half_unprocessed)
    with count_requests() as counts:
        assert deliver(suite, messages) == set()
    assert throttled == [8]  # four profiles and their scores items
    assert counts["dynamodb.BatchGetItem"] == 2
    assert all(orders(suite, cid)["order_count"] == 1 for cid in customers)


def test_notes_of_two_customers_open_each_key_once_per_batch(suite: Suite) -> None:
    first, second = new_customer(suite, "u-1"), new_customer(suite, "u-2")
    note = {"type": "after_sales", "case": "complaint", "note": "罐子有凹痕",
            "occurred_at": "2026-11-20T10:00:00Z"}  # fmt: skip
    warm = [{**note, "event_id": f"w-{cid}", "customer_id": cid} for cid in (first, second)]
    queue(suite, *warm)  # gives both customers their data key
    suite.drain()
    notes = [{**note, "event_id": f"n-{cid}-{n}", "customer_id": cid}
             for n in range(5) for cid in (first, second)]  # fmt: skip
    queue(suite, *notes)
    messages = take(suite, 10)
    with count_requests() as counts:
        assert deliver(suite, messages) == set()
    # One for each customer's key (was one per note) and one for the request's transit key.
    assert counts["kms.Decrypt"] == 2 + 1
    agent = suite.call("GET", f"/customers/{second}", role="support_agent").body
    assert {e["note"] for e in agent["timeline"]} == {"罐子有凹痕"}


# ---------------------------------------------------------------------- exactly once
def test_a_duplicate_inside_one_batch_is_folded_once(suite: Suite) -> None:
    cid = new_customer(suite)
    queue(suite, paid(cid, "o-1"), viewed(cid, "v-1"))
    queue(suite, paid(cid, "o-1", event_id="o-1-resent"), viewed(cid, "v-1"))
    messages = take(suite, 4)
    with count_requests() as counts:
        assert deliver(suite, messages) == set()
    assert counts["dynamodb.TransactWriteItems"] == 1  # dropped before anything was written
    assert orders(suite, cid)["order_count"] == 1
    assert timeline_ids(suite, cid) == ["o-1-paid", "v-1"]
    assert lake_event_ids(suite) == ["o-1-paid", "v-1"]


def test_redelivered_events_do_not_drop_the_customers_new_ones(suite: Suite) -> None:
    """The transaction is cancelled naming both entries that exist; the customer's new events
    commit in a second try instead of failing with them."""
    cid = new_customer(suite)
    queue(suite, paid(cid, "o-1"), viewed(cid, "v-1"))
    first = take(suite, 2)
    assert deliver(suite, first) == set()
    queue(suite, paid(cid, "o-2"), viewed(cid, "v-2"))
    again = [{**m, "Attributes": {**m["Attributes"], "ApproximateReceiveCount": "2"}}
             for m in first]  # fmt: skip
    batch = [again[0], *take(suite, 2), again[1]]
    with count_requests() as counts, captured("TransactWriteItems") as transactions:
        assert deliver(suite, batch) == set()
    assert counts["dynamodb.TransactWriteItems"] == 2
    assert [len(t["TransactItems"]) for t in transactions] == [1 + 4, 1 + 2]
    assert orders(suite, cid)["order_count"] == 2
    assert timeline_ids(suite, cid) == ["o-1-paid", "o-2-paid", "v-1", "v-2"]
    # Redelivered duplicates repeat their side effects (they may not have happened).
    assert lake_event_ids(suite) == ["o-1-paid", "o-1-paid", "o-2-paid", "v-1", "v-1", "v-2"]


def test_an_entry_another_customer_holds_drops_only_that_event(suite: Suite) -> None:
    payer, other = new_customer(suite, "u-1"), new_customer(suite, "u-2")
    queue(suite, paid(payer, "o-1"))
    queue(suite, paid(other, "o-1", event_id="o-1-again"), viewed(other, "v-1"))
    messages = take(suite, 3)
    with count_requests() as counts:
        assert deliver(suite, messages) == set()
    # The first of the two to commit holds the payment; the other's transaction is cancelled
    # naming it, and commits its other event in a second try.
    assert counts["dynamodb.TransactWriteItems"] == 3
    assert sorted(orders(suite, cid)["order_count"] for cid in (payer, other)) == [0, 1]
    assert "v-1" in timeline_ids(suite, other)


# ---------------------------------------------------------------------- partial failures
def test_poison_and_unknown_customers_fail_alone(suite: Suite) -> None:
    first, second = new_customer(suite, "u-1"), new_customer(suite, "u-2")
    sqs = boto3.client("sqs")
    url = suite.queue_url(QUEUE)
    sqs.send_message(QueueUrl=url, MessageBody='{"type": "order_paid", "phone": "13812345678"')
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(paid("ghost", "o-ghost")))
    queue(suite, paid(first, "o-1"), paid(second, "o-2"), viewed(second, "v-2"))
    messages = take(suite, 5)
    failed = deliver(suite, messages)
    bodies = {m["MessageId"]: m["Body"] for m in messages}
    assert len(failed) == 2
    assert all("ghost" in bodies[f] or "phone" in bodies[f] for f in failed)
    assert orders(suite, first)["order_count"] == orders(suite, second)["order_count"] == 1


def test_a_customer_whose_commit_fails_fails_only_its_own_messages(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, fine, also_fine = (new_customer(suite, f"u-{n}") for n in range(3))
    queue(suite, paid(broken, "o-1"), paid(fine, "o-2"), viewed(broken, "v-1"),
          viewed(also_fine, "v-3"))  # fmt: skip
    messages = take(suite, 4)
    real = ProfileStore.commit

    def failing_for_one(self: ProfileStore, writes: list[Write]) -> None:
        first = writes[0]
        if isinstance(first, SaveProfile) and first.record.customer_id == broken:
            error = {"Error": {"Code": "InternalServerError", "Message": "try again"}}
            raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]
        real(self, writes)

    with monkeypatch.context() as patched:
        patched.setattr(ProfileStore, "commit", failing_for_one)
        failed = deliver(suite, messages)
    assert sorted(event_id_of(m) for m in messages if m["MessageId"] in failed) == [
        "o-1-paid",
        "v-1",
    ]
    assert orders(suite, fine)["order_count"] == 1
    assert timeline_ids(suite, also_fine) == ["v-3"]
    assert lake_event_ids(suite) == ["o-2-paid", "v-3"]
    assert suite.drain() == 2  # they come back, and fold
    assert timeline_ids(suite, broken) == ["o-1-paid", "v-1"]


# ---------------------------------------------------------------------- concurrency
def race_on_load(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, cid: str, times: int
) -> list[Collection[str]]:
    """After each of the fold's first `times` reads that include `cid`, an agent edits that
    profile (as another container would commit between the fold's read and its write)."""
    original = ProfileService.load_many
    reads: list[Collection[str]] = []

    def load_then_race(
        self: ProfileService, customer_ids: Collection[str], order_ids: Collection[str] = ()
    ) -> Loaded:
        loaded = original(self, customer_ids, order_ids)
        reads.append(sorted(customer_ids))
        if cid in customer_ids and len([r for r in reads if cid in r]) <= times:
            edit = {"version": loaded.live[cid].version, "attributes": {"city": f"城{len(reads)}"}}
            assert suite.call("PATCH", f"/customers/{cid}", edit).status == 200
        return loaded

    monkeypatch.setattr(ProfileService, "load_many", load_then_race)
    return reads


def test_a_stale_profile_retries_only_its_customer_with_jitter(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    raced, calm = new_customer(suite, "u-1"), new_customer(suite, "u-2")
    queue(suite, paid(raced, "o-1"), paid(calm, "o-2"), viewed(raced, "v-1"))
    messages = take(suite, 3)
    reads = race_on_load(suite, monkeypatch, raced, times=1)
    with count_requests() as counts, captured("BatchGetItem") as batch_reads:
        assert deliver(suite, messages) == set()
    assert reads == [sorted([raced, calm]), [raced]]  # only the raced customer is read again
    assert profile_keys(batch_reads[-1]) == [f"CUST#{raced}"]
    assert counts["dynamodb.TransactWriteItems"] == 2 + 1 + 1  # raced, calm, the agent's edit
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= BACKOFF_BASE_S
    view = suite.call("GET", f"/customers/{raced}").body
    assert view["attributes"]["city"] == "城1"  # the edit is kept, and so are the events
    assert view["orders"]["order_count"] == 1
    assert timeline_ids(suite, raced) == ["o-1-paid", "v-1"]
    assert orders(suite, calm)["order_count"] == 1


def test_a_conflict_that_never_ends_fails_only_that_customer(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    raced, calm = new_customer(suite, "u-1"), new_customer(suite, "u-2")
    queue(suite, paid(raced, "o-1"), paid(calm, "o-2"), viewed(raced, "v-1"))
    messages = take(suite, 3)
    race_on_load(suite, monkeypatch, raced, times=MAX_ATTEMPTS)
    failed = deliver(suite, messages)
    assert sorted(event_id_of(m) for m in messages if m["MessageId"] in failed) == [
        "o-1-paid",
        "v-1",
    ]
    assert len(sleeps) == MAX_ATTEMPTS - 1
    assert all(0 <= s <= min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**n) for n, s in enumerate(sleeps))
    assert orders(suite, calm)["order_count"] == 1
    assert orders(suite, raced)["order_count"] == 0


# ---------------------------------------------------------------------- refunds
def test_refunds_and_payments_in_one_batch_fold_as_they_would_one_by_one(suite: Suite) -> None:
    together, alone = new_customer(suite, "u-1"), new_customer(suite, "u-2")

    def history(cid: str) -> list[dict[str, Any]]:
        p = f"{cid}-"
        return [
            paid(cid, p + "o-2", "60.00"),  # a payment stored before the batch
            refund(cid, p + "r-1", p + "o-1", "30.00"),  # a refund before its payment ...
            paid(cid, p + "o-1", "100.00"),  # ... which arrives in the same batch
            refund(cid, p + "r-2", p + "o-1", "50.00"),  # a refund after it, same batch
            refund(cid, p + "r-3", p + "o-2", "40.00"),  # two refunds of the stored payment
            refund(cid, p + "r-4", p + "o-2", "40.00"),  # together asking more than it paid
        ]

    queue(suite, history(together)[0])
    suite.drain()
    queue(suite, *history(together)[1:])
    with count_requests() as counts:
        assert deliver(suite, take(suite, 5)) == set()
    assert counts["dynamodb.TransactWriteItems"] == 1
    for event in history(alone):  # the reference: one event per batch
        queue(suite, event)
        suite.drain()
    expected = orders(suite, alone)
    assert orders(suite, together) == expected
    assert (expected["refunded_amount"], expected["refunds_aside"]) == ("140.00", "20.00")
    # What the payments' entries recorded counts the next refunds right.
    for cid in (together, alone):
        queue(suite, refund(cid, f"{cid}-r-5", f"{cid}-o-1", "30.00"))
        queue(suite, refund(cid, f"{cid}-r-6", f"{cid}-o-2", "5.00"))
        suite.drain()
    assert orders(suite, together) == orders(suite, alone)
    assert orders(suite, together)["refunded_amount"] == "160.00"


# ---------------------------------------------------------------------- rule segments
def test_segment_shifts_of_a_batch_are_announced_once(suite: Suite) -> None:
    rule = {"all": [{"field": "orders.order_count", "op": "gte", "value": 2}]}
    created = suite.call("POST", "/segments", {"name": "repeat-buyers", "rule": rule},
                         role="marketer")  # fmt: skip
    assert created.status == 201, created.body
    tap = suite.tap_bus("segment-tap", {"detail-type": ["CustomerSegmentChanged"]})
    customers = [new_customer(suite, f"u-{n}") for n in range(3)]
    queue(suite, *[paid(cid, f"o-{cid}-{n}") for cid in customers for n in range(2)])
    with count_requests() as counts:
        assert deliver(suite, take(suite, 6)) == set()
    assert counts["dynamodb.BatchWriteItem"] == 1  # the three memberships, together
    assert counts["events.PutEvents"] == 2  # the three entries, and the profile updates
    entered = Suite.take_all(tap)
    assert sorted(e["detail"]["customer_id"] for e in entered) == sorted(customers)
    assert {e["detail"]["change"] for e in entered} == {"entered"}


# ---------------------------------------------------------------------- identities and merges
def test_events_naming_identities_are_resolved_together(suite: Suite) -> None:
    member = new_customer(suite, "known")
    card = {"channel": "offline_store", "external_id": "card-1"}
    app = {"channel": "app", "external_id": "known"}

    def paid_by(identity: dict[str, str], order: str) -> dict[str, Any]:
        event = paid("none", order, "5.00")
        del event["customer_id"]
        return {**event, "identity": identity}

    queue(suite, paid_by(card, "pos-1"), paid_by(card, "pos-2"), paid_by(app, "pos-3"),
          viewed(member, "v-1"))  # fmt: skip
    with count_requests() as counts:
        assert deliver(suite, take(suite, 4)) == set()
    # Who owns the identities: one read; the new member is created (its own read and write);
    # the profiles: one read.
    assert counts["dynamodb.BatchGetItem"] == 3
    assert counts["dynamodb.TransactWriteItems"] == 1 + 2  # the new profile; two customers
    found = suite.call("POST", "/customers", {"identities": [card]}).body
    assert found["created"] is False
    assert found["profile"]["orders"]["order_count"] == 2
    assert timeline_ids(suite, member) == ["pos-3-paid", "v-1"]


def test_events_for_a_merged_away_id_land_on_the_survivor_in_one_transaction(
    suite: Suite,
) -> None:
    survivor, source = new_customer(suite, "u-1"), new_customer(suite, "u-2")
    merged = suite.call("POST", f"/customers/{survivor}/merge", {"source_customer_id": source})
    assert merged.status == 200, merged.body
    queue(suite, paid(source, "o-1"), paid(survivor, "o-2"), viewed(source, "v-1"))
    with count_requests() as counts:
        assert deliver(suite, take(suite, 3)) == set()
    assert counts["dynamodb.BatchGetItem"] == 1  # the survivor was read with the batch
    assert counts["dynamodb.TransactWriteItems"] == 1
    assert timeline_ids(suite, survivor) == ["o-1-paid", "o-2-paid", "v-1"]
    assert orders(suite, survivor)["order_count"] == 2


# ---------------------------------------------------------------------- transaction limits
def test_more_events_than_one_transaction_holds_are_split(suite: Suite) -> None:
    cid = new_customer(suite)
    queue(suite, *[viewed(cid, f"v-{n}") for n in range(120)])
    messages = take(suite, 120)
    with captured("TransactWriteItems") as transactions:
        assert deliver(suite, messages) == set()
    assert [len(t["TransactItems"]) for t in transactions] == [100, 1 + 21]
    view = suite.call("GET", f"/customers/{cid}").body
    assert view["behaviour"]["view_count"] == 120


def test_a_transaction_past_its_size_budget_is_split(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = new_customer(suite)
    queue(suite, paid(cid, "warm"))
    suite.drain()
    queue(suite, *[paid(cid, f"o-{n}") for n in range(10)])
    messages = take(suite, 10)
    # As if each entry were a quarter of the 4 MB a transaction may carry beside the profile.
    budget = event_folding._ENTRY_BYTES_BUDGET
    monkeypatch.setattr(root().profile_service.store, "write_bytes", lambda _: budget // 4)
    with captured("TransactWriteItems") as transactions:
        assert deliver(suite, messages) == set()
    assert [len(t["TransactItems"]) for t in transactions] == [1 + 4, 1 + 4, 1 + 2]
    assert orders(suite, cid)["order_count"] == 11
