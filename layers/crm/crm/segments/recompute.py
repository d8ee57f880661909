"""The nightly recompute: a planner fits the models on the base and fans shards out; workers
score their shard, write back what changed and announce each segment transition."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from crm.clock import Clock, IdFactory
from crm.errors import InvalidInput, validation_problems
from crm.lake import Lake, partition_key
from crm.pii import BlindIndex
from crm.profiles import ProfileRecord, ProfileService, StaleProfile
from crm.queue import Queue
from crm.segments.baskets import associations
from crm.segments.membership import RuleMembership, computed_segments, transitions
from crm.segments.records import (
    MembershipChange,
    SegmentModel,
    ShardTask,
)
from crm.segments.runs import SHARD_ATTEMPTS, SHARD_TIME_MARGIN_S, deadline_for, run_id_for
from crm.segments.scoring import (
    Features,
    features_of,
    materially_changed,
    score_page,
)
from crm.segments.store import ModelStore, SegmentStore
from crm.sqs_consumer import PoisonMessage

logger = Logger(child=True)

SAMPLE_SEGMENTS = 64  # the sample reads whole scan segments, chosen at random
# The planner fits on every customer it reads; it reads the whole base up to this many paying
# customers, and beyond, whole random scan segments until it holds this many (a uniform
# sample). The bound is the planner's time, not the fit's: reading a profile costs ~1.25 ms
# of CPU today (botocore's parse and validation), so 500k take ~10 of its 15 minutes, while
# fitting 1M customers takes seconds and ~500 bytes each of its 3,008 MB.
SAMPLE_SIZE = 500_000
# One worker's share. Its worst case is a first run that writes every profile back: a
# transaction each (~15 ms), its membership writes and bus events, ~25 ms a profile, so 50 s
# for 2,000 profiles, well within the worker's 120 s; a usual night, which writes only what
# changed, reads and scores a shard in a few seconds (docs/benchmarks.md).
PROFILES_PER_SHARD = 2_000
# Even a small base is split, so several workers share a run and a slow or failing shard is
# a small part of it to wait for or retry.
MIN_SHARDS = 8
MAX_SHARDS = 10_000  # 20M profiles; the planner queues them in a minute
# Items a scan request evaluates (of every kind; the profiles among them are returned). Each
# request stays short: ~10 ms in DynamoDB, under 0.5 s on the emulator, which serves one
# request at a time, so a run's scan never holds the API's reads up for long, and a page that
# timed out is cheap to read again. A 2,000-profile shard of ~20,000 items takes 200 pages.
SCAN_PAGE_ITEMS = 100


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    shards: int
    sample_size: int
    estimated_profiles: int
    model: SegmentModel


@dataclass
class ShardResult:
    run_id: str
    shard: int
    scored: int = 0
    written: int = 0
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    run_complete: bool = False
    run_over: bool = False  # the run had ended (failed, or complete): nothing was done


class ShardOutOfTime(Exception):
    """The shard could not be finished within the worker's time; what it wrote stays written,
    so the next attempt has less to do."""


def shard_count(estimated_profiles: int) -> int:
    return max(MIN_SHARDS, min(MAX_SHARDS, math.ceil(estimated_profiles / PROFILES_PER_SHARD)))


def failure_name(exc: BaseException) -> str:
    """What a run's error says about an exception: its type, never its text (which may quote
    a customer's data), except a poison message's, which names fields only."""
    if isinstance(exc, PoisonMessage):
        return f"{type(exc).__name__} ({exc})"
    return type(exc).__name__


class SegmentRecompute:
    def __init__(
        self,
        profiles: ProfileService,
        membership: RuleMembership,
        segments: SegmentStore,
        models: ModelStore,
        queue: Queue,
        lake: Lake,
        index: Callable[[], BlindIndex],
        clock: Clock,
        ids: IdFactory,
    ) -> None:
        self._profiles = profiles
        self._membership = membership
        self._segments = segments
        self._models = models
        self._queue = queue
        self._lake = lake
        self._index = index
        self._clock = clock
        self._ids = ids

    # ------------------------------------------------------------ planner
    def plan_run(
        self, rng: random.Random | None = None, requested: str | None = None
    ) -> RunPlan | None:
        """Records the run as `planned` first, so that a planner that fails or times out
        while it samples and fits leaves a run the watchdog can see and end. A run someone
        asked for was recorded by the API under the id it answered; the planner claims it,
        and None means it was planned already or ended (a repeated delivery of the request)."""
        now = self._clock()
        if requested is None:
            run_id = run_id_for(now, self._ids)
            self._segments.create_run(run_id, now)
        elif self._segments.claim_run(requested, now):
            run_id = requested
        else:
            logger.info("segment run already claimed or ended", extra={"run_id": requested})
            return None
        try:
            return self._plan(run_id, now, rng or random.Random())  # noqa: S311
        except Exception as exc:
            try:
                self._segments.fail_run(run_id, f"planning failed: {failure_name(exc)}",
                                        self._clock())  # fmt: skip
            except Exception:  # the store may be what failed; the watchdog ends the run then
                logger.exception("could not record the planner's failure")
            raise

    def _plan(self, run_id: str, now: datetime, rng: random.Random) -> RunPlan:
        sample, baskets, seen, read = self._sample(now, rng)
        model = self._fit(run_id, now, sample)
        table, categories, popular = associations(baskets)
        model = model.model_copy(update={"associations": table, "product_categories": categories,
                                         "popular_products": popular})  # fmt: skip
        self._models.put(model)
        estimated = math.ceil(seen * SAMPLE_SEGMENTS / max(read, 1))
        shards = shard_count(estimated)
        queued_at = self._clock()
        # Running before the first shard is queued: a worker only counts shards of a running run.
        if not self._segments.start_run(run_id, shards, deadline_for(shards, queued_at),
                                        queued_at):  # fmt: skip
            raise RuntimeError("the run was ended while it was being planned")
        tasks = [ShardTask(run_id=run_id, segment=i, total_segments=shards) for i in range(shards)]
        self._queue.send([t.model_dump_json() for t in tasks])
        logger.info("segment run planned", extra={"run_id": run_id, "shards": shards,
                                                  "sample": len(sample)})  # fmt: skip
        return RunPlan(run_id, shards, len(sample), estimated, model)

    def _sample(
        self, now: datetime, rng: random.Random
    ) -> tuple[list[Features], list[dict[str, str]], int, int]:
        """Whole scan segments in random order until the sample is large enough: each holds a
        hash-partitioned, so uniform, share of the customers."""
        order = list(range(SAMPLE_SEGMENTS))
        rng.shuffle(order)
        sample: list[Features] = []
        baskets: list[dict[str, str]] = []
        seen = read = 0
        for segment in order:
            start: dict[str, Any] | None = None
            while True:
                records, start = self._profiles.store.scan_profiles(
                    segment, SAMPLE_SEGMENTS, start, limit=SCAN_PAGE_ITEMS
                )
                seen += len(records)
                sample += [f for r in records if (f := features_of(r, now)) is not None]
                baskets += [r.aggregates.orders.products for r in records]
                if not start:
                    break
            read += 1
            if len(sample) >= SAMPLE_SIZE:
                break
        return sample, baskets, seen, read

    @staticmethod
    def _fit(run_id: str, now: datetime, sample: list[Features]) -> SegmentModel:
        # Imported here: fitting needs scipy.optimize, which the worker (this class's other
        # half) must not load; only the planner fits.
        from crm.segments.fitting import fit_segment_model

        return fit_segment_model(run_id, now, sample)

    # ------------------------------------------------------------ worker
    def score_message(
        self, body: str, attempt: int = 1, remaining_ms: Callable[[], int] | None = None
    ) -> ShardResult:
        """Score the shard a message names. `attempt` is SQS's receive count; a failure is
        recorded on the run, and the one SQS will not deliver again fails the run, naming
        the shard and the kind of error."""
        try:
            task = ShardTask.model_validate_json(body)
        except ValidationError as exc:
            problems = "; ".join(f"{p.field}: {p.message}" for p in validation_problems(exc))
            raise PoisonMessage(f"not a shard task ({problems})") from None
        try:
            return self.score_shard(task, remaining_ms)
        except Exception as exc:
            self._shard_failed(task, exc, attempt)
            raise

    def _shard_failed(self, task: ShardTask, exc: Exception, attempt: int) -> None:
        where = f"shard {task.segment} of {task.total_segments}"
        logger.warning(
            "shard failed",
            extra={"run_id": task.run_id, "shard": task.segment, "attempt": attempt,
                   "error": type(exc).__name__},
        )  # fmt: skip
        try:
            if isinstance(exc, PoisonMessage):  # no attempt can do better
                self._segments.fail_run(task.run_id, f"{where} cannot be scored: "
                                        f"{failure_name(exc)}", self._clock())  # fmt: skip
            elif attempt >= SHARD_ATTEMPTS:  # SQS moves it to the dead-letter queue now
                self._segments.fail_run(task.run_id, f"{where} failed {attempt} times: "
                                        f"{failure_name(exc)}", self._clock())  # fmt: skip
            else:
                self._segments.note_retry(task.run_id)
        except Exception:  # the store may be what failed: SQS's retry and the watchdog remain
            logger.exception("could not record the shard's failure")

    def score_shard(
        self, task: ShardTask, remaining_ms: Callable[[], int] | None = None
    ) -> ShardResult:
        result = ShardResult(task.run_id, task.segment)
        run = self._segments.run(task.run_id, consistent=True)
        if run is None:
            raise PoisonMessage("the shard names no run")
        if not run.active:  # failed (its shards are not needed) or done (a redelivery)
            logger.info("shard of an ended run skipped", extra={"run_id": task.run_id,
                                                                "status": run.status})  # fmt: skip
            result.run_over = True
            return result
        if task.total_segments != run.total_segments:
            raise PoisonMessage("total_segments differs from the run's")
        try:
            model = self._models.get(task.run_id)
        except InvalidInput:
            raise PoisonMessage("the run has no fitted model") from None
        now = self._clock()
        snapshot: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            if remaining_ms is not None and remaining_ms() < SHARD_TIME_MARGIN_S * 1000:
                raise ShardOutOfTime
            records, start = self._profiles.store.scan_profiles(
                task.segment, task.total_segments, start, limit=SCAN_PAGE_ITEMS
            )
            self._score_records(records, model, now, result, snapshot)
            if not start:
                break
        if snapshot:
            key = partition_key("segment_scores", {"run": task.run_id},
                                f"shard-{task.segment:07d}")  # fmt: skip
            self._lake.write_rows(key, snapshot)
        run = self._segments.record_shard(task.run_id, task.segment, result.counts,
                                          result.scored, result.written, self._clock())  # fmt: skip
        if run.status == "running" and run.shards_done >= run.total_segments:
            result.run_complete = self._segments.finish_run(task.run_id, self._clock())
        return result

    def _score_records(
        self,
        records: list[ProfileRecord],
        model: SegmentModel,
        now: datetime,
        result: ShardResult,
        snapshot: list[dict[str, Any]],
    ) -> None:
        features = [f for r in records if (f := features_of(r, now)) is not None]
        scores = score_page(features, model, now)
        index = self._index()
        changes: list[MembershipChange] = []
        for record in records:
            new_scores = scores.get(record.customer_id)
            before = set(record.segments)
            changed_scores = new_scores is not None and materially_changed(
                record.scores, new_scores
            )
            if changed_scores:
                record.scores = new_scores
            computed = (
                computed_segments(new_scores.tier, new_scores.rfm_segment) if new_scores else set()
            )
            rules = self._membership.rule_segments(record, now)
            after = computed | rules
            for name in after:
                result.counts[name] = result.counts.get(name, 0) + 1
            result.scored += 1
            if after != before or changed_scores:
                record.segments = sorted(after)
                try:
                    self._profiles.save(record, evaluate_rules=False, announce=False)
                except StaleProfile:
                    result.skipped += 1  # changed meanwhile; the next run or event catches up
                    continue
                result.written += 1
                changes += transitions(record.customer_id, before, after)
            if new_scores is not None:
                snapshot.append({
                    "run_id": result.run_id, "customer_pid": index.pseudonym(record.customer_id),
                    **new_scores.model_dump(mode="json", exclude={"scored_at"}),
                })  # fmt: skip
        self._membership.apply(changes, result.run_id)
