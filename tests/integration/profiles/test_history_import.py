"""Historical imports (POST /imports -> ImportQueue -> HistoryImportFunction against moto):
customers created or matched by identity, their history folded by the queue's folding core,
exactly once, the lake written once per (type, day) with one late marker, nothing announced on
the bus, the staged body deleted, one customer's trouble its own."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from crm.composition import root
from crm.profiles.history_import import CHUNK_CUSTOMERS
from crm.profiles.store import ProfileStore
from crm_local.harness import Suite, count_requests
from tests.integration.profiles.test_profile_events import lake_objects

QUEUE, FUNCTION = "ImportQueue", "HistoryImportFunction"
_NOW = datetime.now(UTC).replace(microsecond=0)


def days_ago(days: float) -> str:
    return (_NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def history(prefix: str, days: int = 400) -> list[dict[str, Any]]:
    """Six events over a year: two paid orders (one placed first), a partial refund, a view,
    a complaint with a note."""
    order, other = f"{prefix}o1", f"{prefix}o2"
    items = [{"sku": "serum", "category": "美妆", "quantity": 2, "unit_price": "100.00"}]
    return [
        {"event_id": f"{order}-placed", "type": "order_placed", "order_id": order,
         "amount": "200.00", "items": items, "occurred_at": days_ago(days), "channel": "app"},
        {"event_id": f"{order}-paid", "type": "order_paid", "order_id": order,
         "amount": "200.00", "items": items, "occurred_at": days_ago(days - 0.01),
         "channel": "app"},
        {"event_id": f"{order}-refund", "type": "order_refunded", "order_id": order,
         "amount": "50.00", "occurred_at": days_ago(days - 3)},
        {"event_id": f"{prefix}v1", "type": "product_viewed", "sku": "jeans", "category": "服饰",
         "occurred_at": days_ago(30)},
        {"event_id": f"{other}-paid", "type": "order_paid", "order_id": other, "amount": "59.90",
         "occurred_at": days_ago(20), "channel": "mini_program"},
        {"event_id": f"{prefix}c1", "type": "after_sales", "case": "complaint", "order_id": other,
         "note": "包装破了", "reason_code": "damaged", "occurred_at": days_ago(19)},
    ]  # fmt: skip


def customer(
    ref: str, external_id: str, events: list[dict[str, Any]], **attrs: Any
) -> dict[str, Any]:
    return {
        "ref": ref,
        "identities": [{"channel": "app", "external_id": external_id}],
        "attributes": {"city": "杭州", **attrs},
        "events": events,
    }


def start(suite: Suite, customers: list[dict[str, Any]]) -> str:
    reply = suite.call("POST", "/imports", {"customers": customers})
    assert reply.status == 202, reply.body
    import_id = str(reply.body["import_id"])
    assert reply.headers["Location"] == f"/imports/{import_id}"
    assert reply.body["customers"] == len(customers)
    assert reply.body["events"] == sum(len(c["events"]) for c in customers)
    return import_id


def run(suite: Suite) -> list[dict[str, Any]]:
    """Deliver the queued import message(s), one a batch as the event source mapping does."""
    messages = suite.receive(QUEUE)
    for message in messages:
        suite.deliver(FUNCTION, QUEUE, [message])
    return messages


def status(suite: Suite, import_id: str) -> dict[str, Any]:
    reply = suite.call("GET", f"/imports/{import_id}")
    assert reply.status == 200, reply.body
    return dict(reply.body)


def staged_keys(suite: Suite) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=suite.stack.refs["ImportsBucket"])
    return [o["Key"] for o in listing.get("Contents", [])]


def view(suite: Suite, customer_id: str) -> dict[str, Any]:
    reply = suite.call("GET", f"/customers/{customer_id}")
    assert reply.status == 200, reply.body
    return dict(reply.body)


def owner(suite: Suite, external_id: str) -> str:
    body = {"identity": {"channel": "app", "external_id": external_id}}
    found = suite.call("POST", "/customers/search", body).body["matches"]
    assert len(found) == 1, found
    return str(found[0]["customer_id"])


def without_prefix(value: Any, prefix: str) -> Any:
    return json.loads(json.dumps(value).replace(prefix, "P-"))


def test_an_import_folds_like_the_queue_and_announces_nothing(suite: Suite) -> None:
    tap = suite.tap_bus("import-tap", {"source": ["crm"]})
    # Through the queue: a customer and its history sent as POST /events.
    queued = str(suite.call("POST", "/customers", {
        "identities": [{"channel": "app", "external_id": "q-1"}],
        "attributes": {"city": "杭州"}}).body["customer_id"])  # fmt: skip
    events = [{**e, "customer_id": queued} for e in history("Q-")]
    assert suite.call("POST", "/events", {"events": events}).status == 202
    suite.drain()
    Suite.take_all(tap)
    # A customer already known (matched: its empty city is filled, its name kept) and a new one.
    known = str(suite.call("POST", "/customers", {
        "identities": [{"channel": "app", "external_id": "i-known"}],
        "attributes": {"name": "王芳"}}).body["customer_id"])  # fmt: skip
    import_id = start(suite, [
        customer("shop-1", "i-1", history("I-"), name="李娜", phone="13800001111"),
        customer("shop-2", "i-known", history("K-", days=200), name="someone else"),
    ])  # fmt: skip
    assert staged_keys(suite) == [f"imports/{import_id}.json"]
    assert status(suite, import_id)["status"] == "queued"
    assert len(run(suite)) == 1

    done = status(suite, import_id)
    assert done["status"] == "done", done
    assert (done["customers_created"], done["customers_matched"], done["customers_failed"]) == (
        1, 1, 0)  # fmt: skip
    assert (done["events_folded"], done["events_duplicate"], done["events_failed"]) == (12, 0, 0)
    assert done["failures"] == []
    assert done["attempt"] == 1
    assert done["chunks_done"] == 1
    imported = owner(suite, "i-1")
    assert owner(suite, "i-known") == known
    # The same history gives the same 360° view, whichever path it came by.
    through_queue, through_import = view(suite, queued), view(suite, imported)
    for part in ("orders", "behaviour", "timeline"):
        assert without_prefix(through_import[part], "I-") == without_prefix(
            through_queue[part], "Q-"
        ), part
    assert through_import["orders"]["order_count"] == 2
    assert Decimal(through_import["orders"]["refunded_amount"]) == Decimal("50.00")
    matched = view(suite, known)
    assert matched["attributes"]["name"] == "王芳"  # kept: only empty fields are filled
    assert matched["attributes"]["city"] == "杭州"
    assert matched["orders"]["order_count"] == 2
    # History is not news: nothing on the bus (no journey, no conversion, no segment entry).
    assert Suite.take_all(tap) == []
    # The import's PII lives no longer than the import.
    assert staged_keys(suite) == []


def test_the_lake_gets_one_object_per_type_and_day_and_one_marker(suite: Suite) -> None:
    customers = [customer(f"r{n}", f"lk-{n}", history(f"L{n}-")) for n in range(3)]
    import_id = start(suite, customers)
    run(suite)
    assert status(suite, import_id)["status"] == "done"
    objects = lake_objects(suite)
    rows = [r for found in objects.values() for r in found]
    assert sorted(r["event_id"] for r in rows) == sorted(
        e["event_id"] for c in customers for e in c["events"]
    )
    partitions = {(e["type"], e["occurred_at"][:10]) for c in customers for e in c["events"]}
    assert len(objects) == len(partitions) == status(suite, import_id)["lake_objects"]
    assert all(key.endswith(f"part-{import_id}.jsonl") for key in objects)
    assert not any("note" in r or "customer_id" in r for r in rows)
    markers = lake_objects(suite, "lake-late/")
    assert list(markers) == [f"lake-late/{import_id}.json"]


def test_a_retried_import_folds_nothing_twice(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers = [customer(f"r{n}", f"rt-{n}", history(f"R{n}-")) for n in range(2)]
    import_id = start(suite, customers)
    folding = root().event_folding

    def lake_down(*_: Any, **__: Any) -> list[str]:
        raise RuntimeError("the lake is unreachable")

    monkeypatch.setattr(folding, "write_lake", lake_down)
    run(suite)  # folded everything, then failed writing the lake
    failed = status(suite, import_id)
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError"
    assert failed["events_folded"] == 12
    assert staged_keys(suite) == [f"imports/{import_id}.json"]  # kept for the retry
    first = view(suite, owner(suite, "rt-0"))
    monkeypatch.undo()

    assert len(run(suite)) == 1  # the message came back
    done = status(suite, import_id)
    assert done["status"] == "done"
    assert done["attempt"] == 2
    # The counts describe the import: what the first attempt created and folded stays counted.
    assert (done["customers_created"], done["customers_matched"]) == (2, 0)
    assert (done["events_folded"], done["events_duplicate"]) == (12, 0)
    again = view(suite, owner(suite, "rt-0"))
    assert again["orders"] == first["orders"]
    assert again["timeline"] == first["timeline"]
    # The retry wrote the lake rows the failed attempt never wrote, each once.
    ids = Counter(r["event_id"] for rows in lake_objects(suite).values() for r in rows)
    assert set(ids.values()) == {1}
    assert len(ids) == 12
    assert staged_keys(suite) == []


def test_a_retry_keeps_the_counts_of_the_chunks_a_failed_attempt_completed(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A whole first chunk of customers without history, and one with history in the second.
    customers = [customer(f"k{n}", f"kc-{n}", []) for n in range(CHUNK_CUSTOMERS)]
    customers.append(customer("last", "kc-last", history("K-")))
    import_id = start(suite, customers)
    folding = root().event_folding
    fold = folding.fold_deliveries
    calls = 0

    def second_chunk_fails(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("DynamoDB went away")
        return fold(*args, **kwargs)

    monkeypatch.setattr(folding, "fold_deliveries", second_chunk_fails)
    run(suite)
    failed = status(suite, import_id)
    assert (failed["status"], failed["chunks_done"]) == ("failed", 1)
    assert failed["customers_created"] == CHUNK_CUSTOMERS
    monkeypatch.undo()

    run(suite)
    done = status(suite, import_id)
    assert (done["status"], done["attempt"], done["chunks_done"]) == ("done", 2, 2)
    # The first chunk's customers count once, as created; the half-done chunk counts afresh.
    assert (done["customers_created"], done["customers_matched"]) == (CHUNK_CUSTOMERS + 1, 0)
    assert (done["customers_failed"], done["events_folded"]) == (0, 6)
    assert view(suite, owner(suite, "kc-last"))["orders"]["order_count"] == 2


def test_a_customer_whose_identities_name_two_customers_fails_alone(suite: Suite) -> None:
    a = str(
        suite.call(
            "POST", "/customers", {"identities": [{"channel": "app", "external_id": "a-1"}]}
        ).body["customer_id"]
    )
    b = str(
        suite.call(
            "POST",
            "/customers",
            {
                "identities": [
                    {"channel": "app", "external_id": "b-1"},
                    {"channel": "douyin", "external_id": "dy-b"},
                ]
            },
        ).body["customer_id"]
    )
    clash = customer("clash", "a-1", history("X-"))
    clash["identities"].append({"channel": "douyin", "external_id": "dy-b"})  # b's
    import_id = start(suite, [clash, customer("fine", "ok-1", history("F-"))])
    run(suite)
    done = status(suite, import_id)
    assert done["status"] == "done"
    assert (done["customers_created"], done["customers_failed"]) == (1, 1)
    assert done["events_folded"] == 6
    (failure,) = done["failures"]
    assert failure["ref"] == "clash"
    assert "2 different customers" in failure["reason"]
    # Nothing was written for it: neither profile has its orders, and no merge happened.
    assert view(suite, a)["orders"]["order_count"] == 0
    assert view(suite, b)["orders"]["order_count"] == 0
    assert view(suite, a)["merged_from"] == []
    assert view(suite, b)["merged_from"] == []
    assert view(suite, owner(suite, "ok-1"))["orders"]["order_count"] == 2


def test_limits_and_bad_events_are_refused_whole(suite: Suite) -> None:
    too_many = [customer(f"r{n}", f"u-{n}", []) for n in range(1001)]
    reply = suite.call("POST", "/imports", {"customers": too_many})
    assert reply.status == 400
    assert any(f["field"] == "customers" for f in reply.body["error"]["fields"]), reply.body

    one = history("E-")[1]
    events = [{**one, "event_id": f"e{n}", "order_id": f"o{n}"} for n in range(20_001)]
    heavy = [customer(f"h{n}", f"h-{n}", events[n * 1000 : (n + 1) * 1000]) for n in range(21)]
    reply = suite.call("POST", "/imports", {"customers": heavy})
    assert reply.status == 413, reply.body
    assert "20000 events" in reply.body["error"]["message"]

    bad = history("B-")
    bad[1] = {**bad[1], "amount": "199.00"}  # disagrees with its items
    bad[3] = {**bad[3], "occurred_at": (_NOW + timedelta(days=1)).isoformat()}
    twice = customer("dup", "d-1", [history("B-")[4]])  # the same event_id as bad[4]
    reply = suite.call("POST", "/imports", {"customers": [customer("b", "b-9", bad), twice,
                                                           customer("b", "b-8", [])]})  # fmt: skip
    assert reply.status == 400, reply.body
    fields = {f["field"] for f in reply.body["error"]["fields"]}
    assert fields == {
        "customers.0.events.1.amount",
        "customers.0.events.3.occurred_at",
        "customers.0.events.4.event_id",
        "customers.1.events.0.event_id",
        "customers.2.ref",
    }
    with_id = {**history("C-")[0], "customer_id": "c-1"}
    reply = suite.call("POST", "/imports", {"customers": [customer("c", "c-1", [with_id])]})
    assert reply.status == 400
    assert reply.body["error"]["fields"][0]["field"].startswith("customers.0.events.0")
    # Nothing was accepted: no object, no message.
    assert staged_keys(suite) == []
    assert suite.receive(QUEUE) == []


def test_an_unknown_import_or_a_lost_body_is_a_poison_message(suite: Suite) -> None:
    url = suite.queue_url(QUEUE)
    boto3.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps({"import_id": "nope"}))
    (unknown,) = suite.receive(QUEUE)
    reply = suite.deliver(FUNCTION, QUEUE, [unknown])
    assert reply["batchItemFailures"] == [{"itemIdentifier": unknown["MessageId"]}]
    assert suite.call("GET", "/imports/nope").status == 404

    import_id = start(suite, [customer("r", "p-1", history("P-"))])
    s3 = boto3.client("s3")
    s3.delete_object(Bucket=suite.stack.refs["ImportsBucket"], Key=f"imports/{import_id}.json")
    lost = [m for m in suite.receive(QUEUE) if import_id in m["Body"]]
    reply = suite.deliver(FUNCTION, QUEUE, lost)
    assert reply["batchItemFailures"] == [{"itemIdentifier": lost[0]["MessageId"]}]
    gone = status(suite, import_id)
    assert gone["status"] == "failed"
    assert "gone" in gone["error"]
    assert suite.call("GET", f"/imports/{import_id}", role="marketer").status == 403


def test_requests_per_import_of_100_customers_of_6_events(suite: Suite) -> None:
    customers = [customer(f"r{n}", f"cnt-{n}", history(f"N{n}-"), name="张伟") for n in range(100)]
    import_id = start(suite, customers)
    with count_requests() as counts:
        run(suite)
    done = status(suite, import_id)
    assert done["status"] == "done"
    assert done["events_folded"] == 600
    partitions = {(e["type"], e["occurred_at"][:10]) for c in customers for e in c["events"]}
    # The identities' owners, then the payments the refunds count against: new customers'
    # profiles are not read (they are created by the transaction of their history).
    assert counts["dynamodb.BatchGetItem"] == 1 + 1
    # Each customer created with its history: one transaction.
    assert counts["dynamodb.TransactWriteItems"] == 100
    assert counts["dynamodb.Query"] == 0
    # The status item: running, once per chunk, done; and each chunk's outcomes (a retry's
    # bookkeeping), deleted together when the import is done.
    chunks = math.ceil(100 / CHUNK_CUSTOMERS)
    assert counts["dynamodb.PutItem"] == 2 + chunks + chunks
    assert counts["dynamodb.BatchWriteItem"] == math.ceil(chunks / 25)
    assert counts["s3.GetObject"] == 1
    assert counts["s3.DeleteObject"] == 1
    assert counts["s3.PutObject"] == len(partitions) + 1  # the rows, one late marker
    assert counts["events.PutEvents"] == 0
    assert counts["sqs.SendMessageBatch"] == 0
    # A data key per new customer (it has a name), used again for its note: never unwrapped.
    assert counts["kms.GenerateDataKey"] == 100
    assert counts["kms.Decrypt"] == 0
    assert sum(counts.values()) == (
        1 + 1 + 3 + 2 + 1 + 100 + 100 + 1 + len(partitions) + 1 + 1 + 1
    ), counts  # the status read, the body, ..., the secret, the lake, the delete, the outcomes


def test_a_customer_without_history_is_created_all_the_same(suite: Suite) -> None:
    import_id = start(suite, [customer("quiet", "q-0", [], name="赵敏")])
    run(suite)
    done = status(suite, import_id)
    assert done["status"] == "done"
    assert done["customers_created"] == 1
    assert done["lake_objects"] == 0
    quiet = view(suite, owner(suite, "q-0"))
    assert quiet["orders"]["order_count"] == 0
    assert quiet["attributes"]["name"] == "赵敏"


def test_a_new_customer_whose_history_cannot_commit_is_not_counted_created(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer claims the identity between the chunk's read of the owners and the
    transaction that creates the customer with its history: the transaction is cancelled, so
    nothing of that customer exists, and the status says it failed, not created."""
    taken = suite.call(
        "POST", "/customers", {"identities": [{"channel": "app", "external_id": "race-1"}]}
    )
    assert taken.status == 201, taken.body
    real_owners = ProfileStore.owners

    def read_before_the_other_writer(
        store: ProfileStore, identities: Any
    ) -> dict[tuple[str, str], str]:
        return {k: v for k, v in real_owners(store, identities).items() if k[1] != "race-1"}

    monkeypatch.setattr(ProfileStore, "owners", read_before_the_other_writer)
    import_id = start(suite, [customer("late", "race-1", history("L-")),
                              customer("fine", "ok-2", history("G-"))])  # fmt: skip
    run(suite)
    done = status(suite, import_id)
    assert done["status"] == "done"
    assert (done["customers_created"], done["customers_failed"]) == (1, 1)
    assert done["events_folded"] == 6
    assert [f["ref"] for f in done["failures"]] == ["late"]
    assert view(suite, str(taken.body["customer_id"]))["orders"]["order_count"] == 0
