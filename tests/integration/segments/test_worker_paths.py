"""The segment worker's read and write paths on moto: the sparse `scoring` index (profiles and
their scores items, no ledger entries), scores items written in batches of at most 25 and
never clobbered by a profile save (nor the other way round), and shards that checkpoint and
resume."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from crm import aws
from crm.composition import root
from crm.profiles import ScoresWrite, StaleProfile
from crm.profiles.models import CustomerScores
from crm.profiles.store import ProfileStore
from crm.segments import recompute
from crm.segments.transit import ShardTask
from crm_local.harness import Suite, count_requests
from tests.integration.segments.test_segments import SCHEDULE, SHARDS, load_shop, run_segments


@pytest.fixture
def shop(suite: Suite) -> dict[str, str]:
    return load_shop(suite, customers=24)


@contextmanager
def scanned_items() -> Iterator[list[dict[str, Any]]]:
    """Every item the bulk client's Scan calls returned."""
    found: list[dict[str, Any]] = []

    def after(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Scan":
            found.extend(parsed.get("Items", []))

    client = aws.dynamodb_bulk()
    client.meta.events.register("after-call", after, unique_id="scanned-items")
    try:
        yield found
    finally:
        client.meta.events.unregister("after-call", unique_id="scanned-items")


def shard_tasks(suite: Suite) -> list[ShardTask]:
    tasks = []
    while batch := suite.receive(SHARDS):
        tasks += [ShardTask.model_validate_json(m["Body"]) for m in batch]
    return sorted(tasks, key=lambda t: t.segment)


def scores(tier: str) -> CustomerScores:
    return CustomerScores(recency_score=1, frequency_score=1, monetary_score=1,
                          rfm_segment="lost", tier=tier, scored_at=datetime.now(UTC))  # fmt: skip


def test_a_run_reads_profiles_and_scores_items_only_and_a_quiet_shard_writes_nothing(
    suite: Suite, shop: dict[str, str]
) -> None:
    with scanned_items() as first:
        run_segments(suite)
    profiles = [i for i in first if i["SK"]["S"] == "PROFILE"]
    assert len(profiles) == 2 * len(shop)  # every live profile, by the planner and a worker
    assert {i["SK"]["S"] for i in first} == {"PROFILE"}  # no ledger entry, identity, ...
    assert not {"sealed", "identities", "consent", "wrapped_key"} & {k for i in first for k in i}

    suite.invoke("SegmentPlannerFunction", SCHEDULE)
    tasks = shard_tasks(suite)
    worker = root().segment_recompute
    with scanned_items() as second, count_requests() as counts:
        results = [worker.score_shard(t) for t in tasks]
    buyers = sum(r.scored for r in results)
    kinds = [i["SK"]["S"] for i in second]
    assert kinds.count("PROFILE") == len(shop)
    assert kinds.count("SCORES") == buyers  # every scored customer's scores item, beside it
    # Nobody changed: per shard one read of the run and of its checkpoint, one scan page,
    # one lake object, the shard's result and the run's counters; the run's completion once.
    n = len(tasks)
    assert sum(r.written for r in results) == 0
    assert dict(counts) == {
        "dynamodb.GetItem": 2 * n,
        "dynamodb.Scan": n,
        "s3.GetObject": 1,  # the run's model, once per container
        "s3.PutObject": sum(1 for r in results if r.scored),
        "dynamodb.PutItem": n,
        "dynamodb.UpdateItem": n,
        # The shards' results, summed by the last shard; the rule definitions, once: the
        # container's cached read is older than the run (a rule defined since must count).
        "dynamodb.Query": 2,
        "dynamodb.TransactWriteItems": 1,
    }


def test_scores_go_out_in_batches_of_25_and_unprocessed_ones_are_sent_again(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: ProfileStore = root().profile_service.store
    client = aws.dynamodb_bulk()
    real = client.batch_write_item
    sizes: list[int] = []

    def throttled(**kwargs: Any) -> dict[str, Any]:
        requests = next(iter(kwargs["RequestItems"].values()))
        sizes.append(len(requests))
        out: dict[str, Any] = dict(real(**kwargs))
        if len(sizes) == 1:  # DynamoDB throttles part of the first call: it comes back
            table = next(iter(kwargs["RequestItems"]))
            client.delete_item(TableName=table, Key={
                "PK": requests[-1]["PutRequest"]["Item"]["PK"], "SK": {"S": "SCORES"}})  # fmt: skip
            out["UnprocessedItems"] = {table: requests[-1:]}
        return out

    monkeypatch.setattr(client, "batch_write_item", throttled)
    writes = [ScoresWrite(f"c-{n:03d}", "run-1", scores("regular"), ("tier:regular",))
              for n in range(60)]  # fmt: skip
    assert store.put_scores(writes) == 4  # 25 + 25 + 10, and the unprocessed one again
    assert sizes == [25, 1, 25, 10]
    monkeypatch.setattr(client, "batch_write_item", real)
    table = suite.stack.refs["CustomersTable"]
    for n in (0, 24, 59):
        item = client.get_item(TableName=table, Key={"PK": {"S": f"CUST#c-{n:03d}"},
                                                     "SK": {"S": "SCORES"}})["Item"]  # fmt: skip
        assert item["segments"] == {"L": [{"S": "tier:regular"}]}


def test_a_profile_save_and_a_run_never_undo_each_others_writes(
    suite: Suite, shop: dict[str, str]
) -> None:
    run_segments(suite)
    profiles = root().profile_service
    cid = next(c for c in shop.values() if profiles.load(c).scores is not None)

    # A fold read the profile; a run writes new scores; the fold saves what it read.
    folding = profiles.load(cid)
    profiles.store.put_scores(
        [ScoresWrite(cid, "run-2", scores("dormant"), ("rfm:lost", "tier:dormant"))]
    )
    folding.attributes["city"] = "杭州"
    profiles.save(folding)
    view = suite.call("GET", f"/customers/{cid}", role="marketer").body
    assert view["attributes"]["city"] == "杭州"  # the fold's change
    assert view["scores"]["tier"] == "dormant"  # and the run's, kept
    assert {"tier:dormant", "rfm:lost"} <= set(view["segments"])

    # A run read the profile; a save changes it; the run's writes keep the save's change.
    read = next(p for t in range(8) for p in profiles.store.scan_scoring(t, 8)[0]
                if p.customer_id == cid)  # fmt: skip
    assert suite.call("POST", f"/customers/{cid}/tags", {"add": [{"name": "vip"}]},
                      role="marketer").status == 200  # fmt: skip
    assert not profiles.store.set_rule_segments(cid, ["big-spenders"], read.rev)  # stale
    profiles.store.put_scores([ScoresWrite(cid, "run-3", scores("regular"), ("tier:regular",))])
    view = suite.call("GET", f"/customers/{cid}", role="marketer").body
    assert "vip" in view["tags"]
    assert view["scores"]["tier"] == "regular"
    assert "big-spenders" not in view["segments"]

    # A run's rule-segment change moves the revision on: a save that read before it retries.
    stale = profiles.load(cid)
    assert profiles.store.set_rule_segments(cid, ["big-spenders"], stale.rev)
    with pytest.raises(StaleProfile):
        profiles.save(stale)
    assert "big-spenders" in profiles.load(cid).segments


def test_a_shard_that_fails_midway_resumes_from_its_checkpoint(
    suite: Suite, shop: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_segments(suite)  # everyone has a scores item: a profile is two items to read
    monkeypatch.setattr(recompute, "SCAN_PAGE_ITEMS", 2)
    monkeypatch.setattr(recompute, "CHECKPOINT_EVERY_PAGES", 2)
    suite.invoke("SegmentPlannerFunction", SCHEDULE)
    tasks = shard_tasks(suite)
    store: ProfileStore = root().profile_service.store
    pages = {t.segment: 0 for t in tasks}
    for t in tasks:  # how many pages each shard reads, uninterrupted
        start: dict[str, Any] | None = None
        while True:
            _, start = store.scan_scoring(t.segment, t.total_segments, start, limit=2)
            pages[t.segment] += 1
            if not start:
                break
    task = max(tasks, key=lambda t: pages[t.segment])
    assert pages[task.segment] >= 4

    original = ProfileStore.scan_scoring
    calls = {"n": 0}

    def failing(self: ProfileStore, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # after two pages and their checkpoint, and one more page
            raise ConnectionError("the network went away")
        return original(self, *args, **kwargs)

    worker = root().segment_recompute
    body = task.model_dump_json()
    monkeypatch.setattr(ProfileStore, "scan_scoring", failing)
    with pytest.raises(ConnectionError):
        worker.score_message(body, attempt=1)
    monkeypatch.setattr(ProfileStore, "scan_scoring", original)
    checkpoint = root().segment_store.shard_checkpoint(task.run_id, task.segment)
    assert checkpoint is not None
    assert checkpoint.scored > 0

    with count_requests() as counts:
        result = worker.score_message(body, attempt=2)  # SQS delivers it again
    assert result.resumed
    assert result.pages == pages[task.segment] - 2  # the two checkpointed pages are not read again
    assert counts["dynamodb.Scan"] == result.pages

    for t in tasks:
        if t.segment != task.segment:
            worker.score_shard(t)
    status = suite.call("GET", f"/segments/runs/{task.run_id}", role="analyst").body
    assert status["status"] == "complete"
    assert status["progress"]["shards_done"] == len(tasks)  # the retried shard counted once
    listing = suite.call("GET", "/segments", role="analyst").body
    sizes = {s["name"]: s["size"] for s in listing["segments"]}
    tiers = sum(n for name, n in sizes.items() if name.startswith("tier:"))
    assert tiers == status["progress"]["profiles_scored"] - sum(
        1 for c in shop.values() if root().profile_service.load(c).scores is None
    )
    assert root().segment_store.recorded_shards(task.run_id) == {t.segment for t in tasks}
