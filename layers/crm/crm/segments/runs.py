"""Segment runs as operators see them: status and progress, the time limits a run keeps, and
the watchdog that gives up on a run that stopped moving.

The limits follow from the template (a test checks they agree):
- a worker has SHARD_TIMEOUT_S for a shard and stops itself a little before, so a slow shard
  fails as an error that names it rather than vanishing in a timeout;
- the queue's visibility timeout (SHARD_VISIBILITY_S) is how long SQS waits before it delivers
  a failed or crashed shard again. AWS needs it >= the function's timeout; it recommends six
  times, to absorb throttled invocations, but that would put a crashed shard's retry 12
  minutes away, and the worker's MaximumConcurrency already keeps the poller from taking more
  shards than it can run;
- after SHARD_ATTEMPTS deliveries a shard lands in the dead-letter queue. A worker that fails
  the last attempt marks the run failed itself; a crash cannot, so the watchdog does.

No numerical libraries here: the API and the watchdog use this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from crm.clock import Clock, IdFactory
from crm.events import SegmentRunRequested
from crm.segments.models import RunProgress, SegmentRun
from crm.segments.records import RunRecord
from crm.segments.store import SegmentStore

logger = Logger(child=True)

RUN_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")  # a key DynamoDB takes; run ids are shorter
SHARD_TIMEOUT_S = 120  # SegmentWorkerFunction's Timeout
SHARD_VISIBILITY_S = 180  # SegmentShardsQueue's VisibilityTimeout
SHARD_ATTEMPTS = 3  # SegmentShardsQueue's maxReceiveCount
WORKER_CONCURRENCY = 100  # the worker's MaximumConcurrency
PLANNER_TIMEOUT_S = 900  # SegmentPlannerFunction's Timeout
WATCHDOG_EVERY = timedelta(minutes=5)  # its schedule, rate(5 minutes)

# A worker stops this long before its timeout: enough to record the failure.
SHARD_TIME_MARGIN_S = 15
# Planning reads a bounded sample, so it ends within the planner's timeout or never.
PLANNING_LIMIT = timedelta(seconds=PLANNER_TIMEOUT_S) + timedelta(minutes=5)
# A shard that keeps failing has used all its deliveries after this long; when no shard at
# all finished meanwhile, nothing is left working on the run.
STALL_LIMIT = SHARD_ATTEMPTS * timedelta(seconds=SHARD_VISIBILITY_S) + timedelta(minutes=1)
WATCHED_RUNS = 20  # runs started within a watchdog period are far fewer


def requested_run_id(event: Mapping[str, Any]) -> str | None:
    """The run a `SegmentRunRequested` names (None for the nightly schedule's event, and for
    requests from before runs were named by the API)."""
    if event.get("detail-type") != SegmentRunRequested.detail_type:
        return None
    detail = event.get("detail")
    run_id = detail.get("run_id") if isinstance(detail, Mapping) else None
    return run_id if isinstance(run_id, str) and RUN_ID.fullmatch(run_id) else None


def run_id_for(now: datetime, ids: IdFactory) -> str:
    """Sorts by start time (runs are listed newest first by key)."""
    # To the microsecond: two runs started in one second still list in the order they began.
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + ids()[:6]


def deadline_for(shards: int, queued_at: datetime) -> datetime:
    """When a run of this many shards must be done: every wave of shards (as many as run at
    once) within a worker's timeout, doubled for slack because a busy account may grant
    fewer workers, then every delivery of a failing last shard."""
    waves = math.ceil(shards / WORKER_CONCURRENCY)
    return queued_at + (
        2 * waves * timedelta(seconds=SHARD_TIMEOUT_S)
        + SHARD_ATTEMPTS * timedelta(seconds=SHARD_VISIBILITY_S)
    )


def run_view(run: RunRecord) -> SegmentRun:
    return SegmentRun(
        run_id=run.run_id,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        last_progress_at=run.progress_at,
        deadline_at=run.deadline_at,
        progress=RunProgress(
            shards_total=run.total_segments,
            shards_done=min(run.shards_done, run.total_segments),
            profiles_scored=run.scored,
            profiles_written=run.written,
            attempts_retried=run.retried,
        ),
        error=run.error,
        notice=run.notice,
    )


def _minutes(span: timedelta) -> int:
    return round(span.total_seconds() / 60)


def stuck_reason(run: RunRecord, now: datetime) -> str | None:
    """Why an active run will not finish by itself, or None while it may."""
    if run.status == "planned":
        if now - run.started_at > PLANNING_LIMIT:
            return f"the planner did not queue the shards within {_minutes(PLANNING_LIMIT)} minutes"
        return None
    if run.status != "running":
        return None
    if run.deadline_at is not None and now > run.deadline_at:
        return f"not done by its deadline, {run.deadline_at:%Y-%m-%d %H:%M} UTC"
    last = run.progress_at or run.started_at
    if now - last > STALL_LIMIT:
        return f"no shard finished for {_minutes(now - last)} minutes"
    return None


def _listed(shards: list[int], at_most: int = 10) -> str:
    shown = ", ".join(str(n) for n in shards[:at_most])
    return shown + (f" and {len(shards) - at_most} more" if len(shards) > at_most else "")


class RunWatchdog:
    """Runs every few minutes (a schedule in the template): a crashed worker or planner cannot
    report its own failure, and nothing else wakes up until the next night."""

    def __init__(self, store: SegmentStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def check(self) -> list[RunRecord]:
        """Ends every active run that is stuck; returns them as they were found."""
        now = self._clock()
        ended = []
        for run in self._store.runs(limit=WATCHED_RUNS):
            reason = stuck_reason(run, now) if run.active else None
            if reason is None:
                continue
            if run.status == "running":
                recorded = self._store.recorded_shards(run.run_id)
                missing = sorted(set(range(run.total_segments)) - recorded)
                if not missing:
                    # Every shard is stored: an attempt stopped before counting its own.
                    if self._store.finish_run(run.run_id, now):
                        logger.warning("stuck run was complete", extra={"run_id": run.run_id})
                        ended.append(run)
                    continue
                reason += (
                    f"; shards not done: {_listed(missing)} of {run.total_segments} (a worker "
                    "crashed or timed out: see the shard queue's dead-letter queue)"
                )
            if self._store.fail_run(run.run_id, reason, now):
                logger.warning("stuck segment run failed", extra={"run_id": run.run_id,
                                                                  "reason": reason})  # fmt: skip
                ended.append(run)
        return ended
