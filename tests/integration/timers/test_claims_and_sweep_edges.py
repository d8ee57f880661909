"""Exactly-once wake-ups when things go wrong: a claim inside the family's own transaction, two
consumers at once, a sweep that stops half way, a kind taken out of the template."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from crm import aws
from crm.composition import root
from crm.queue import Queue
from crm.timers import TimerSweep, WakeUp
from crm.timers.records import shard_of
from crm.timers.store import TimerStore
from tests.integration.timers.conftest import Kit, bodies, ids


def _effects_table() -> str:
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName="family-effects", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
    )  # fmt: skip
    return "family-effects"


def test_a_claim_in_the_familys_transaction_commits_with_its_effect_once(kit: Kit) -> None:
    table = _effects_table()
    timers = root().timers
    timers.set("ping", "step-3", kit.clock.now)
    (message,) = kit.pings()
    wake = WakeUp.parse(message["Body"])

    def act() -> bool:
        """The family's effect (a counter) and the claim, one TransactWriteItems."""
        try:
            aws.dynamodb().transact_write_items(
                TransactItems=[
                    timers.claim_operation(wake),  # type: ignore[list-item]
                    {"Update": {"TableName": table, "Key": {"PK": {"S": "sent"}},
                                "UpdateExpression": "ADD n :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                ]
            )  # fmt: skip
        except ClientError as exc:
            if aws.error_code(exc) != "TransactionCanceledException":
                raise
            return False
        return True

    assert [act(), act(), act()] == [True, False, False]
    item = boto3.client("dynamodb").get_item(TableName=table, Key={"PK": {"S": "sent"}})["Item"]
    assert item["n"] == {"N": "1"}
    fired = timers.get("ping", "step-3")
    assert fired is not None
    assert fired.state == "fired"


def test_two_consumers_claiming_at_once_act_once(kit: Kit, atomic_moto: None) -> None:
    timers = root().timers
    timers.set("ping", "race", kit.clock.now)
    (message,) = kit.pings()
    wake = WakeUp.parse(message["Body"])
    results: list[bool] = []
    start = threading.Barrier(8)

    def claim() -> None:
        start.wait()
        results.append(timers.claim(wake))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_a_sweep_that_stops_before_deleting_sends_again_and_the_claim_absorbs_it(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    timers = root().timers
    timers.set("ping", "crash", kit.clock.now + timedelta(minutes=10))
    kit.clock.advance(minutes=10)

    def crash(self: TimerStore, keys: Any) -> None:
        raise RuntimeError("the worker's Lambda timed out here")

    with monkeypatch.context() as patched:
        patched.setattr(TimerStore, "delete_due", crash)
        kit.sweep()  # queued, not deleted: the shard task fails and comes back
    assert len(kit.due_items()) == 1
    kit.sweep()
    queued = kit.pings()
    # Sent by every attempt of the failed task and again by the next sweep.
    assert len(queued) >= 2
    assert {b["timer_id"] for b in bodies(queued)} == {"crash"}
    kit.consume_pings(queued)
    assert ids(kit.fired) == ["crash"]
    assert kit.due_items() == []


def test_a_worker_at_its_time_budget_leaves_the_rest_to_the_next_sweep(kit: Kit) -> None:
    timers = root().timers
    same_shard = [f"bulk-{n}" for n in range(20_000) if shard_of("ping", f"bulk-{n}") == 5]
    for timer_id in same_shard[:600]:
        timers.set("ping", timer_id, kit.clock.now + timedelta(hours=1))
    kit.clock.advance(hours=1)
    ticks = iter(range(0, 10_000, 50))  # each page "takes" 50 s: over the 45 s budget
    sweep = TimerSweep(
        root().timer_store, root().timer_kinds, Queue(kit.suite.queue_url("TimerSweepQueue")),
        kit.clock, monotonic=lambda: float(next(ticks)),
    )  # fmt: skip
    swept = sweep.sweep(5, remaining_s=60)
    assert (swept.queued, swept.more) == (250, True)  # one page, then it stopped
    assert len(kit.due_items()) == 350
    assert kit.sweep() == [5]  # the next minute's sweep goes on where it stopped
    assert len(kit.delays()) == 600  # each timer once: none lost, none twice
    assert kit.due_items() == []


def test_timers_of_a_kind_without_a_queue_wait_and_the_others_fire(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm.composition import Crm, Settings, reset

    monkeypatch.setenv("TIMER_QUEUE_RETIRED", kit.ping_url)
    reset(Crm(Settings.from_env(), clock=kit.clock))
    root().timers.set("retired", "old-1", kit.clock.now + timedelta(hours=1))
    root().timers.set("ping", "new-1", kit.clock.now + timedelta(hours=1))
    # The kind's queue is taken out of the template; its timer is still in the table.
    monkeypatch.delenv("TIMER_QUEUE_RETIRED")
    reset(Crm(Settings.from_env(), clock=kit.clock))
    kit.clock.advance(hours=1)
    kit.sweep()
    assert [b["timer_id"] for b in bodies(kit.pings())] == ["new-1"]
    assert [i["SK"]["S"].split("#")[2] for i in kit.due_items()] == ["old-1"]


def test_a_batch_of_large_messages_is_split_at_256_kib(kit: Kit) -> None:
    body = "x" * (100 * 1024)
    Queue(kit.ping_url).send([body] * 5, [0] * 5)
    calls = [c for c in kit.calls.of("sqs.SendMessageBatch") if c["QueueUrl"] == kit.ping_url]
    assert [len(c["Entries"]) for c in calls] == [2, 2, 1]
    with pytest.raises(ValueError, match="900"):
        Queue(kit.ping_url).send(["late"], [901])


def test_the_same_timer_set_by_many_containers_at_once_is_one_timer(
    kit: Kit, atomic_moto: None
) -> None:
    timers = root().timers
    results: list[str] = []
    start = threading.Barrier(8)

    def set_it(n: int) -> None:
        start.wait()
        due = kit.clock.now + timedelta(hours=1, minutes=n)
        results.append(timers.set("ping", "once", due).generation)

    threads = [threading.Thread(target=set_it, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert len(kit.due_items()) == 1  # the losers' due items were undone
    kit.clock.advance(hours=2)
    kit.sweep()
    kit.consume_pings()
    assert ids(kit.fired) == ["once"]
