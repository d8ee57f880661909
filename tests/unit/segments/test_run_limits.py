"""The time limits segment runs keep: they agree with template.yaml, shards are sized for
them, and a run is called stuck exactly when nothing can still finish it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm.segments.recompute import MAX_SHARDS, MIN_SHARDS, PROFILES_PER_SHARD, shard_count
from crm.segments.records import RunRecord
from crm.segments.runs import (
    PLANNER_TIMEOUT_S,
    SHARD_ATTEMPTS,
    SHARD_TIME_MARGIN_S,
    SHARD_TIMEOUT_S,
    SHARD_VISIBILITY_S,
    STALL_LIMIT,
    WATCHDOG_EVERY,
    WORKER_CONCURRENCY,
    deadline_for,
    stuck_reason,
)
from crm_local.schedule import Rate, parse_schedule
from crm_local.template import load_template

T0 = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def test_the_limits_are_the_templates() -> None:
    template = load_template()
    worker = template.function("SegmentWorkerFunction")
    queue = template.resources["SegmentShardsQueue"]["Properties"]
    shards = next(e for e in worker.events if e.type == "SQS").properties
    assert worker.timeout == SHARD_TIMEOUT_S
    assert queue["VisibilityTimeout"] == SHARD_VISIBILITY_S
    assert SHARD_VISIBILITY_S >= SHARD_TIMEOUT_S  # AWS refuses the event source otherwise
    assert SHARD_VISIBILITY_S <= 300  # a crashed shard is tried again within minutes
    assert queue["RedrivePolicy"]["maxReceiveCount"] == SHARD_ATTEMPTS
    assert shards["ScalingConfig"]["MaximumConcurrency"] == WORKER_CONCURRENCY
    assert shards["BatchSize"] == 1  # a failed shard is retried alone
    assert template.function("SegmentPlannerFunction").timeout == PLANNER_TIMEOUT_S
    watchdog = template.function("SegmentWatchdogFunction")
    schedule = next(e for e in watchdog.events if e.type == "Schedule").properties
    assert parse_schedule(schedule["Schedule"]) == Rate(WATCHDOG_EVERY)
    assert 0 < SHARD_TIME_MARGIN_S < SHARD_TIMEOUT_S / 4


def test_shards_are_never_fewer_than_the_minimum_nor_larger_than_their_size() -> None:
    assert shard_count(0) == MIN_SHARDS
    assert shard_count(12) == MIN_SHARDS
    assert shard_count(MIN_SHARDS * PROFILES_PER_SHARD) == MIN_SHARDS
    assert shard_count(MIN_SHARDS * PROFILES_PER_SHARD + 1) == MIN_SHARDS + 1
    assert shard_count(10_000_000) == 5_000
    assert shard_count(10**12) == MAX_SHARDS
    assert MIN_SHARDS >= 4


def test_a_deadline_grows_with_the_waves_of_shards() -> None:
    visibility, timeout = timedelta(seconds=SHARD_VISIBILITY_S), timedelta(seconds=SHARD_TIMEOUT_S)
    assert deadline_for(8, T0) == T0 + 2 * timeout + 3 * visibility  # 13 minutes
    assert deadline_for(5_000, T0) == T0 + 100 * timeout + 3 * visibility
    assert SHARD_ATTEMPTS * visibility < STALL_LIMIT  # a shard that is still being retried


def run(status: str, **values: object) -> RunRecord:
    return RunRecord(run_id="r", status=status, started_at=T0, total_segments=8,  # type: ignore[arg-type]
                     **values)  # type: ignore[arg-type]  # fmt: skip


def test_a_run_is_stuck_only_when_nothing_can_still_finish_it() -> None:
    planned = run("planned")
    assert stuck_reason(planned, T0 + timedelta(minutes=20)) is None
    assert stuck_reason(planned, T0 + timedelta(minutes=21)) == (
        "the planner did not queue the shards within 20 minutes"
    )
    moving = run("running", progress_at=T0 + timedelta(minutes=5),
                 deadline_at=T0 + timedelta(minutes=13))  # fmt: skip
    assert stuck_reason(moving, T0 + timedelta(minutes=12)) is None
    assert stuck_reason(moving, T0 + timedelta(minutes=13, seconds=1)) == (
        "not done by its deadline, 2026-11-23 18:13 UTC"
    )
    stalled = run("running", progress_at=T0, deadline_at=T0 + timedelta(hours=5))
    assert stuck_reason(stalled, T0 + timedelta(minutes=10)) is None
    assert stuck_reason(stalled, T0 + timedelta(minutes=12)) == "no shard finished for 12 minutes"
    for final in ("complete", "failed"):
        assert stuck_reason(run(final), T0 + timedelta(days=3)) is None
