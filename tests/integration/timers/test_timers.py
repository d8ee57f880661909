"""Timers through the real sweep functions (schedule -> TimerSweepFunction -> TimerSweepQueue ->
TimerShardFunction -> the kind's queue) against moto, with a test-only kind and consumer."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from crm.composition import root
from crm.errors import InvalidInput, NotFound
from crm.timers import SHARDS, UnknownTimerKind
from tests.integration.timers.conftest import Kit, bodies, ids, sample


def test_a_timer_fires_once_when_due_and_not_before(kit: Kit) -> None:
    timers = root().timers
    timer = timers.set("ping", "order-1#step-2", kit.clock.now + timedelta(days=10),
                       {"customer_id": "c-1"})  # fmt: skip
    assert timer.state == "pending"
    kit.clock.advance(days=9, hours=23)
    assert kit.sweep() == []
    assert kit.pings() == []
    kit.clock.advance(hours=1)
    assert len(kit.sweep()) == 1
    queued = kit.pings()
    assert bodies(queued) == [{
        "kind": "ping", "timer_id": "order-1#step-2", "generation": timer.generation,
        "due_at": "2026-12-03T08:00:00.000Z", "payload": {"customer_id": "c-1"},
    }]  # fmt: skip
    kit.consume_pings(queued)
    assert ids(kit.fired) == ["order-1#step-2"]
    fired = timers.get("ping", "order-1#step-2")
    assert fired is not None
    assert fired.state == "fired"
    assert fired.fired_at == kit.clock.now
    assert kit.due_items() == []
    # Nothing left to sweep: the next minutes queue nothing more.
    kit.clock.advance(minutes=5)
    assert kit.sweep() == []
    assert kit.pings() == []


def test_the_same_timer_set_twice_is_one_timer_even_after_it_fired(kit: Kit) -> None:
    timers = root().timers
    due = kit.clock.now + timedelta(hours=2)
    first = timers.set("ping", "t-1", due + timedelta(microseconds=1500))
    assert first == timers.get("ping", "t-1")  # as stored, to the millisecond
    # A retried step sets it again later, with a later due time: the first stays.
    kit.clock.advance(minutes=30)
    again = timers.set("ping", "t-1", kit.clock.now + timedelta(hours=2))
    assert again == first
    assert len(kit.due_items()) == 1
    kit.clock.advance(hours=2)
    kit.sweep()
    kit.consume_pings()
    assert ids(kit.fired) == ["t-1"]
    late = timers.set("ping", "t-1", kit.clock.now + timedelta(minutes=10))
    assert late.state == "fired"
    assert late.generation == first.generation
    kit.clock.advance(hours=1)
    assert kit.sweep() == []
    assert kit.pings() == []


def test_cancel_removes_the_timer_and_its_wake_up_claims_nothing(kit: Kit) -> None:
    timers = root().timers
    timers.set("ping", "keep", kit.clock.now + timedelta(hours=1))
    timers.set("ping", "drop", kit.clock.now + timedelta(hours=1))
    assert timers.cancel("ping", "drop") is True
    assert timers.cancel("ping", "drop") is False
    assert timers.cancel("ping", "never-set") is False
    assert timers.get("ping", "drop") is None
    kit.clock.advance(hours=1)
    kit.sweep()
    kept = kit.pings()
    assert [b["timer_id"] for b in bodies(kept)] == ["keep"]
    kit.consume_pings(kept)
    # A wake-up already queued when its timer is cancelled claims nothing.
    timers.set("ping", "late-cancel", kit.clock.now)  # due now: queued at once
    assert timers.cancel("ping", "late-cancel") is True
    queued = kit.pings()
    assert [b["timer_id"] for b in bodies(queued)] == ["late-cancel"]
    kit.consume_pings(queued)
    assert ids(kit.fired) == ["keep"]
    # A cancelled id may be set again: it is a new timer.
    again = timers.set("ping", "drop", kit.clock.now + timedelta(hours=1))
    assert again.state == "pending"


def test_reschedule_moves_a_pending_timer_and_the_old_wake_up_is_void(kit: Kit) -> None:
    timers = root().timers
    first = timers.set("ping", "sla-1", kit.clock.now + timedelta(hours=1), {"ticket_id": "T1"})
    later = timers.reschedule("ping", "sla-1", kit.clock.now + timedelta(days=3))
    assert later.generation != first.generation
    assert later.payload == {"ticket_id": "T1"}
    assert len(kit.due_items()) == 1
    kit.clock.advance(hours=1)
    assert kit.sweep() == []
    earlier = timers.reschedule("ping", "sla-1", kit.clock.now + timedelta(days=1))
    kit.clock.advance(days=1)
    kit.sweep()
    queued = kit.pings()
    assert [w["generation"] for w in bodies(queued)] == [earlier.generation]
    kit.consume_pings(queued)
    assert len(kit.fired) == 1
    with pytest.raises(NotFound):
        timers.reschedule("ping", "sla-1", kit.clock.now + timedelta(days=1))  # fired
    with pytest.raises(NotFound):
        timers.reschedule("ping", "no-such", kit.clock.now + timedelta(days=1))


def test_due_in_seconds_is_queued_at_once_with_its_delay(kit: Kit) -> None:
    timers = root().timers
    timers.set("ping", "soon", kit.clock.now + timedelta(seconds=7, milliseconds=200))
    assert kit.delays() == [8]  # rounded up: never early
    assert kit.due_items() == []  # its due item went once the wake-up was queued
    kit.clock.advance(minutes=2)
    assert kit.sweep() == []


def test_due_in_minutes_is_queued_by_the_sweep_within_its_lead(kit: Kit) -> None:
    timers = root().timers
    timers.set("ping", "ten-minutes", kit.clock.now + timedelta(minutes=10))
    kit.clock.advance(minutes=8)
    assert kit.sweep() == []  # 2 minutes ahead: beyond the 90 s lead
    kit.clock.advance(minutes=1)
    assert len(kit.sweep()) == 1
    assert kit.delays() == [60]


def test_due_in_months(kit: Kit) -> None:
    timers = root().timers
    timers.set("ping", "privacy-deadline", kit.clock.now + timedelta(days=120))
    kit.clock.advance(days=119)
    assert kit.sweep() == []
    kit.clock.advance(days=1)
    kit.sweep()
    kit.consume_pings()
    assert ids(kit.fired) == ["privacy-deadline"]
    with pytest.raises(InvalidInput) as refused:
        timers.set("ping", "too-far", kit.clock.now + timedelta(days=800))
    assert refused.value.fields[0].field == "due_at"


def test_missed_sweeps_catch_up_late_but_nothing_is_lost(kit: Kit) -> None:
    timers = root().timers
    for n in range(40):
        timers.set("ping", f"t-{n:02d}", kit.clock.now + timedelta(minutes=5 + 4 * n))
    # No sweep ran for two days (an outage): the first one queues all of them, at once.
    kit.clock.advance(days=2)
    kit.sweep()
    wakes = kit.pings()
    assert sorted(b["timer_id"] for b in bodies(wakes)) == [f"t-{n:02d}" for n in range(40)]
    assert kit.delays() == [0] * 40
    assert kit.due_items() == []


def test_a_hot_minute_is_spread_over_the_shards_and_swept_in_parallel(kit: Kit) -> None:
    timers = root().timers
    nine = kit.clock.now.replace(hour=9, minute=0)
    for n in range(640):
        timers.set("ping", f"quiet-hours-end-{n}", nine)
    per_shard: dict[str, int] = {}
    for item in kit.due_items():
        per_shard[item["PK"]["S"]] = per_shard.get(item["PK"]["S"], 0) + 1
    assert len(per_shard) == SHARDS  # every shard holds some of the 09:00 timers
    assert max(per_shard.values()) < 3 * 640 / SHARDS
    kit.clock.now = nine - timedelta(seconds=30)
    assert len(kit.sweep()) == SHARDS  # one worker per shard, not one for the minute
    # Each held back by SQS to 09:00 to the second.
    assert kit.delays() == [30] * 640
    # That all 640 were accepted is what the sends above show; moto's queue counters are not
    # used here: on a merged main they reported 596-611 of 640 delayed, nondeterministically
    # (under investigation, see the session 3 closing note).
    # AWS's limits, which moto does not enforce: 10 messages per SendMessageBatch, 25 writes
    # per BatchWriteItem, 256 KiB per batch.
    sends = kit.calls.of("sqs.SendMessageBatch")
    assert sends
    assert max(len(s["Entries"]) for s in sends) <= 10
    assert max(sum(len(e["MessageBody"]) for e in s["Entries"]) for s in sends) <= 256 * 1024
    writes = kit.calls.of("dynamodb.BatchWriteItem")
    assert writes
    assert max(len(w["RequestItems"][t]) for w in writes for t in w["RequestItems"]) == 25
    assert kit.due_items() == []


def test_a_duplicated_wake_up_is_claimed_once(kit: Kit) -> None:
    timers = root().timers
    timers.set("ping", "dup", kit.clock.now + timedelta(minutes=30))
    kit.clock.advance(minutes=30)
    kit.sweep()
    (message,) = kit.pings()
    # SQS delivers at least once: the same message twice in one batch, then again later.
    twin = {**message, "MessageId": "twin"}
    kit.consume_pings([message, twin])
    kit.consume_pings([dict(message, MessageId="later")])
    assert ids(kit.fired) == ["dup"]


def test_a_poison_wake_up_goes_to_the_kinds_dlq_and_the_others_fire(kit: Kit) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=kit.ping_url, MessageBody='{"kind": "ping", "timer_id": 7}')
    root().timers.set("ping", "fine", kit.clock.now)  # due now: queued with no delay
    for _ in range(3):
        kit.consume_pings()
    assert ids(kit.fired) == ["fine"]
    dead = sqs.receive_message(QueueUrl=kit.ping_dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ['{"kind": "ping", "timer_id": 7}']


def test_a_poison_sweep_task_goes_to_the_sweep_dlq(kit: Kit) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=kit.suite.queue_url("TimerSweepQueue"), MessageBody='{"shard": 99}')
    for _ in range(4):
        kit.suite.drain("TimerShardFunction", "TimerSweepQueue")
    dead = sqs.receive_message(
        QueueUrl=kit.suite.queue_url("TimerSweepDLQ"), MaxNumberOfMessages=10
    )["Messages"]
    assert [m["Body"] for m in dead] == ['{"shard": 99}']


def test_timers_hold_ids_only_within_aws_limits(kit: Kit) -> None:
    timers = root().timers
    due = kit.clock.now + timedelta(days=1)
    with pytest.raises(InvalidInput) as pii:
        timers.set("ping", "t", due, {"email": "lin@example.com", "name": "林小雨"})
    assert sorted(p.field for p in pii.value.fields) == ["payload.email", "payload.name"]
    with pytest.raises(InvalidInput) as many:
        timers.set("ping", "t", due, {f"k{n}": "v" for n in range(11)})
    assert [p.field for p in many.value.fields] == ["payload"]
    with pytest.raises(InvalidInput) as large:
        timers.set("ping", "t", due, {f"k{n}": "x" * 150 for n in range(8)})
    assert [p.field for p in large.value.fields] == ["payload"]
    with pytest.raises(InvalidInput) as bad_id:
        timers.set("ping", "has spaces", due)
    assert [p.field for p in bad_id.value.fields] == ["timer_id"]
    with pytest.raises(UnknownTimerKind):
        timers.set("campaign_step", "t", due)  # no TIMER_QUEUE_CAMPAIGN_STEP configured
    with pytest.raises(InvalidInput):
        timers.set("ping", "t", due.replace(tzinfo=None))
    assert kit.due_items() == []


def test_the_sample_shard_event_runs_through_the_shard_function(kit: Kit) -> None:
    assert kit.suite.invoke("TimerShardFunction", sample("sqs_timer_shard.json")) == {
        "batchItemFailures": []
    }
