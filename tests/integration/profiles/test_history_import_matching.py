"""Historical imports against an existing customer base (HistoryImportFunction against moto):
a chunk reads its matched customers' profiles together, once, for resolution and folding;
followed merges, two customers of a chunk matching one profile, and identities of several
profiles keep behaving as one by one. A retry counts each customer once, by its ref, even when
erasure took a customer out of the staged body between the attempts."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from crm.composition import root
from crm.dynamo import MAX_BATCH_GET_KEYS
from crm.privacy.registry import collect_subject, personal_data_stores
from crm.profiles.history_import import CHUNK_CUSTOMERS
from crm_local.harness import Suite, count_requests
from tests.integration.profiles.test_history_import import (
    days_ago,
    history,
    owner,
    run,
    staged_keys,
    start,
    status,
    view,
)


def shopper(
    ref: str, external_id: str, events: list[dict[str, Any]], **attrs: Any
) -> dict[str, Any]:
    return {
        "ref": ref,
        "identities": [{"channel": "app", "external_id": external_id}],
        "attributes": attrs,
        "events": events,
    }


def paid(prefix: str, n: int = 1) -> list[dict[str, Any]]:
    """n paid orders of 10.00, without notes (no data key to unwrap)."""
    return [
        {"event_id": f"{prefix}p{k}", "type": "order_paid", "order_id": f"{prefix}o{k}",
         "amount": "10.00", "occurred_at": days_ago(100 - k)}
        for k in range(n)
    ]  # fmt: skip


def imported(suite: Suite, customers: list[dict[str, Any]]) -> dict[str, Any]:
    import_id = start(suite, customers)
    run(suite)
    done = status(suite, import_id)
    assert done["status"] == "done", done
    return done


def outcome_items(suite: Suite, import_id: str) -> list[dict[str, Any]]:
    out = boto3.client("dynamodb").query(
        TableName=suite.stack.refs["CustomersTable"],
        KeyConditionExpression="PK = :pk AND begins_with(SK, :done)",
        ExpressionAttributeValues={":pk": {"S": f"IMPORT#{import_id}"}, ":done": {"S": "DONE#"}},
    )
    return list(out["Items"])


def test_a_chunk_of_matched_customers_reads_their_profiles_in_one_batch(suite: Suite) -> None:
    n = CHUNK_CUSTOMERS
    # The base: n customers without a city, each with a paid order, a refund and a note.
    first = imported(suite, [shopper(f"r{k}", f"m-{k}", history(f"A{k}-")) for k in range(n)])
    assert first["customers_created"] == n
    # The same customers again with more history, and a city that fills an empty field: each
    # resolution saves its profile, and the fold starts from the revision that save committed.
    again = [shopper(f"r{k}", f"m-{k}", history(f"B{k}-", days=300), city="杭州") for k in range(n)]
    import_id = start(suite, again)
    with count_requests() as counts:
        run(suite)
    done = status(suite, import_id)
    assert (done["status"], done["customers_matched"], done["customers_created"]) == ("done", n, 0)
    assert (done["events_folded"], done["events_duplicate"], done["events_failed"]) == (6 * n, 0, 0)
    # Reads: the identities' owners (n keys), then the matched profiles with the payments the
    # refunds count against (n + n keys, no scores items), per 100 keys. No profile is read
    # alone (before: a Query per customer to resolve it, and the fold's batch read it again).
    assert counts["dynamodb.BatchGetItem"] == math.ceil(n / MAX_BATCH_GET_KEYS) + math.ceil(
        2 * n / MAX_BATCH_GET_KEYS
    )
    assert counts["dynamodb.Query"] == 0
    assert counts["dynamodb.GetItem"] == 1  # the status item
    # Writes: a resolution's save and a fold's transaction per customer; the status item
    # (running, per chunk, done), the chunk's outcomes and their deletion.
    assert counts["dynamodb.TransactWriteItems"] == 2 * n
    chunks = math.ceil(n / CHUNK_CUSTOMERS)
    assert counts["dynamodb.PutItem"] == 2 + 2 * chunks
    assert counts["dynamodb.BatchWriteItem"] == 1
    assert sum(v for k, v in counts.items() if k.startswith("dynamodb.")) == (
        1 + 3 + 2 * n + 2 + 2 * chunks + 1
    ), counts
    # Each note's customer key is unwrapped once, by the codec the chunk shares.
    assert counts["kms.Decrypt"] == n
    customer_id = owner(suite, "m-7")
    profile = view(suite, customer_id)
    assert profile["attributes"]["city"] == "杭州"
    assert profile["orders"]["order_count"] == 4
    # Created with its history, then the city, then the new history: three commits, no retry.
    stored = root().profile_service.store.get(customer_id)
    assert stored is not None
    assert stored.rev == 3
    assert outcome_items(suite, import_id) == []  # the bookkeeping went with the import


def test_two_customers_of_a_chunk_matching_one_profile_both_land_on_it(suite: Suite) -> None:
    base = suite.call("POST", "/customers", {"identities": [
        {"channel": "app", "external_id": "two-a"},
        {"channel": "douyin", "external_id": "two-b"}]})  # fmt: skip
    assert base.status == 201, base.body
    customer_id = str(base.body["customer_id"])
    other = shopper("b", "x", paid("T2-", 2), gender="female")
    other["identities"] = [{"channel": "douyin", "external_id": "two-b"}]
    customers = [shopper("a", "two-a", paid("T1-"), city="杭州"), other]
    import_id = start(suite, customers)
    with count_requests() as counts:
        run(suite)
    done = status(suite, import_id)
    assert (done["customers_matched"], done["customers_failed"]) == (2, 0), done
    assert done["events_folded"] == 3
    # One read of the profile for both: the second resolution starts from what the first
    # committed (a stale revision would cost a failed commit and a read of its own).
    assert counts["dynamodb.BatchGetItem"] == 2
    assert counts["dynamodb.Query"] == 0
    assert counts["dynamodb.TransactWriteItems"] == 3  # two saves, one fold of both histories
    profile = view(suite, customer_id)
    assert (profile["attributes"]["city"], profile["attributes"]["gender"]) == ("杭州", "female")
    assert profile["orders"]["order_count"] == 3


def test_an_identity_of_a_merged_profile_lands_on_the_survivor(suite: Suite) -> None:
    survivor, source = (
        str(suite.call("POST", "/customers", {"identities": [identity]}).body["customer_id"])
        for identity in ({"channel": "app", "external_id": "mg-s"},
                         {"channel": "wechat", "external_id": "mg-w"})
    )  # fmt: skip
    merged = suite.call("POST", f"/customers/{survivor}/merge", {"source_customer_id": source},
                        role="support_manager")  # fmt: skip
    assert merged.status == 200, merged.body
    # The identity's item still naming the absorbed profile (as one read before the merge
    # re-pointed it would): resolution follows the merge, as it does one customer at a time.
    boto3.client("dynamodb").put_item(
        TableName=suite.stack.refs["CustomersTable"],
        Item={"PK": {"S": "ID#wechat#mg-w"}, "SK": {"S": "ID"}, "channel": {"S": "wechat"},
              "key": {"S": "mg-w"}, "customer_id": {"S": source}},
    )  # fmt: skip
    follower = shopper("f", "unused", paid("MG-", 2))
    follower["identities"] = [{"channel": "wechat", "external_id": "mg-w"}]
    import_id = start(suite, [follower])
    with count_requests() as counts:
        run(suite)
    done = status(suite, import_id)
    assert (done["customers_matched"], done["events_folded"]) == (1, 2), done
    # The owners, the absorbed profile, then the survivor it names: one batch per hop.
    assert counts["dynamodb.BatchGetItem"] == 3
    assert counts["dynamodb.Query"] == 0
    assert view(suite, survivor)["orders"]["order_count"] == 2
    assert view(suite, survivor)["merged_from"] == [source]


def test_a_customer_naming_a_profile_that_is_gone_fails_alone(suite: Suite) -> None:
    boto3.client("dynamodb").put_item(
        TableName=suite.stack.refs["CustomersTable"],
        Item={"PK": {"S": "ID#app#ghost-1"}, "SK": {"S": "ID"}, "channel": {"S": "app"},
              "key": {"S": "ghost-1"}, "customer_id": {"S": "no-such-customer"}},
    )  # fmt: skip
    done = imported(suite, [shopper("ghost", "ghost-1", paid("G1-")),
                            shopper("fine", "fine-1", paid("G2-"))])  # fmt: skip
    assert (done["customers_created"], done["customers_failed"]) == (1, 1), done
    assert done["events_folded"] == 1
    assert done["failures"] == [{"ref": "ghost", "reason": "no customer no-such-customer"}]


def fail_call(monkeypatch: pytest.MonkeyPatch, failing: int) -> Callable[[], None]:
    """The `failing`-th fold of the import raises (DynamoDB going away mid-import)."""
    folding = root().event_folding
    fold = folding.fold_deliveries
    calls = 0

    def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == failing:
            raise RuntimeError("DynamoDB went away")
        return fold(*args, **kwargs)

    monkeypatch.setattr(folding, "fold_deliveries", flaky)
    return monkeypatch.undo


def test_a_retry_after_an_erasure_counts_each_remaining_customer_once(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = suite.call("POST", "/customers", {"identities": [{"channel": "app", "external_id": "e-a"}]})
    b = suite.call("POST", "/customers", {"identities": [{"channel": "app", "external_id": "e-b"}]})
    assert (a.status, b.status) == (201, 201)
    # Chunk 1: the customer to be erased (no history), one whose identities name two
    # customers (fails), the rest with an order each. Chunk 2: two customers with three.
    chunk1 = [shopper("gone", "e-gone", [], city="杭州")]
    clash = shopper("clash", "e-a", paid("EC-"))
    clash["identities"].append({"channel": "app", "external_id": "e-b"})
    chunk1.append(clash)
    chunk1 += [shopper(f"c{k}", f"e-{k}", paid(f"E{k}-")) for k in range(2, CHUNK_CUSTOMERS)]
    chunk2 = [shopper(f"d{k}", f"e-d{k}", paid(f"D{k}-", 3)) for k in range(2)]
    import_id = start(suite, chunk1 + chunk2)
    undo = fail_call(monkeypatch, 2)
    run(suite)
    failed = status(suite, import_id)
    assert (failed["status"], failed["chunks_done"]) == ("failed", 1)
    assert (failed["customers_created"], failed["customers_failed"]) == (CHUNK_CUSTOMERS - 1, 1)
    undo()

    # The erased customer goes from every store, the staged body included: the body's later
    # customers each move one place up, the first of chunk 2 into chunk 1.
    subject = collect_subject(root(), owner(suite, "e-gone"))
    for store in personal_data_stores(root()):
        store.erase(subject)
    assert staged_keys(suite) == [f"imports/{import_id}.json"]

    run(suite)
    done = status(suite, import_id)
    assert (done["status"], done["attempt"], done["chunks_done"]) == ("done", 2, 2), done
    # What one clean run of the remaining customers reports: 98 + 2 created, the clash failed,
    # 98 single orders and 2 x 3 folded, nothing counted twice, the erased one nowhere.
    remaining = CHUNK_CUSTOMERS - 2 + 2
    assert (done["customers_created"], done["customers_matched"], done["customers_failed"]) == (
        remaining, 0, 1)  # fmt: skip
    assert (done["events_folded"], done["events_duplicate"], done["events_failed"]) == (
        CHUNK_CUSTOMERS - 2 + 6, 0, 0)  # fmt: skip
    assert [f["ref"] for f in done["failures"]] == ["clash"]
    assert "2 different customers" in done["failures"][0]["reason"]
    assert "gone" not in str(done)
    found = suite.call("POST", "/customers/search", {
        "identity": {"channel": "app", "external_id": "e-gone"}}).body["matches"]  # fmt: skip
    assert found == []
    assert view(suite, owner(suite, "e-d0"))["orders"]["order_count"] == 3
    assert outcome_items(suite, import_id) == []
    assert staged_keys(suite) == []


def test_a_chunk_left_half_done_is_counted_once(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer without history is created (and counted) before its chunk's fold; when
    that fold fails, the retry matches it: it counts once, as created."""
    customers = [shopper("quiet", "h-quiet", []), shopper("busy", "h-busy", paid("H-", 2))]
    import_id = start(suite, customers)
    undo = fail_call(monkeypatch, 1)
    run(suite)
    failed = status(suite, import_id)
    assert (failed["status"], failed["chunks_done"], failed["customers_created"]) == (
        "failed", 0, 0)  # fmt: skip
    undo()
    run(suite)
    done = status(suite, import_id)
    # The half-done chunk recorded no outcome: its customers are counted as the retry finds
    # them, the quiet one (created by the failed attempt) as matched, once.
    assert (done["status"], done["customers_created"], done["customers_matched"]) == (
        "done", 1, 1), done  # fmt: skip
    assert done["events_folded"] == 2


def test_a_profile_changed_after_the_chunks_read_is_read_again_and_keeps_both(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = suite.call("POST", "/customers", {"identities": [
        {"channel": "app", "external_id": "busy-1"}]})  # fmt: skip
    customer_id = str(known.body["customer_id"])
    identities = root().profile_identity
    resolve = identities.import_customer

    def then_a_marketer_tags_it(*args: Any, **kwargs: Any) -> Any:
        found = resolve(*args, **kwargs)
        tagged = suite.call("POST", f"/customers/{customer_id}/tags",
                            {"add": [{"name": "vip"}]}, role="marketer")  # fmt: skip
        assert tagged.status == 200, tagged.body
        return found

    monkeypatch.setattr(identities, "import_customer", then_a_marketer_tags_it)
    done = imported(suite, [shopper("busy", "busy-1", paid("BZ-", 2))])
    assert (done["customers_matched"], done["events_folded"], done["failures"]) == (1, 2, [])
    # The fold's commit found a newer revision than the chunk read: it read the profile alone
    # again and folded onto it, so neither the tag nor the history is lost.
    profile = view(suite, customer_id)
    assert set(profile["tags"]) == {"vip"}
    assert profile["orders"]["order_count"] == 2
