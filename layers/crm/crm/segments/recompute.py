"""The nightly recompute: a planner fits the models on the base and fans shards out; workers
score their shard, write back what changed and announce each segment transition."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from crm import metrics
from crm.clock import Clock, IdFactory
from crm.errors import InvalidInput, validation_problems
from crm.lake import Lake, partition_key
from crm.pii import BlindIndex
from crm.profiles import INDEX_MISSING, ProfileService, ScoresWrite, ScoringProfile
from crm.queue import Queue
from crm.segments.baskets import associations
from crm.segments.fitted import SegmentModel
from crm.segments.membership import (
    RuleMembership,
    computed_segments,
    is_computed,
    legacy_deletes,
    transitions,
)
from crm.segments.models import StoredDefinition
from crm.segments.records import MembershipChange, ShardCheckpoint
from crm.segments.runs import SHARD_ATTEMPTS, SHARD_TIME_MARGIN_S, deadline_for, run_id_for
from crm.segments.scoring import (
    Features,
    features_of,
    materially_changed,
    score_page,
)
from crm.segments.store import ModelStore, SegmentStore
from crm.segments.transit import ShardTask
from crm.sqs_consumer import PoisonMessage

logger = Logger(child=True)


def _fail_run(segments: SegmentStore, run_id: str, error: str, at: datetime) -> None:
    """End the run as failed and count it (metric SegmentRunsFailed, which SegmentRunFailedAlarm
    watches) when this call is the one that ended it."""
    if not segments.fail_run(run_id, error, at):
        return
    metrics.count("SegmentRunsFailed")


SAMPLE_SEGMENTS = 64  # the sample reads whole scan segments, chosen at random
# The planner fits on every customer it reads; it reads the whole base up to this many paying
# customers, and beyond, whole random scan segments until it holds this many (a uniform
# sample). The bound is the planner's time, not the fit's: reading 500k profiles takes a few
# of its 15 minutes, while fitting 1M customers takes seconds and ~550 bytes each of its
# 3,008 MB (docs/benchmarks.md).
SAMPLE_SIZE = 500_000
# One worker's share. Its worst case is a night when every profile changes: a share of a
# BatchWriteItem for its scores item (also its tier and RFM membership), its rule-segment
# membership writes and bus events; a usual night,
# which writes only what changed, reads and scores a shard in a few seconds
# (docs/benchmarks.md, bench/segments.py fan_out_plan).
PROFILES_PER_SHARD = 2_000
# Even a small base is split, so several workers share a run and a slow or failing shard is
# a small part of it to wait for or retry.
MIN_SHARDS = 8
MAX_SHARDS = 10_000  # 20M profiles; the planner queues them in a minute
# Items a scan request reads from the sparse `scoring` index (a profile and its scores item
# are two). Each request stays short: ~10 ms in DynamoDB, under 0.5 s on the emulator, which
# serves one request at a time, so a run's scan never holds the API's reads up for long, and
# a page that timed out is cheap to read again. A 2,000-profile shard takes ~40 pages.
SCAN_PAGE_ITEMS = 100
# A shard keeps how far it got (its scan's resume key and counters, on its shard item) every
# this many pages, and before it runs out of time: a retried shard resumes there.
CHECKPOINT_EVERY_PAGES = 10


# How a run writes the computed segments' membership (SegmentRecompute._layout).
Layout = Literal["indexed", "upgrade", "legacy"]


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
    pages: int = 0  # read by this attempt
    resumed: bool = False  # this attempt started where an earlier one checkpointed
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
                _fail_run(self._segments, run_id, f"planning failed: {failure_name(exc)}",
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
        layout, notice = self._layout(run_id)
        queued_at = self._clock()
        # Running before the first shard is queued: a worker only counts shards of a running run.
        if not self._segments.start_run(run_id, shards, deadline_for(shards, queued_at),
                                        queued_at, notice):  # fmt: skip
            raise RuntimeError("the run was ended while it was being planned")
        tasks = [ShardTask(run_id=run_id, segment=i, total_segments=shards,
                           upgrade=layout == "upgrade", legacy=layout == "legacy")
                 for i in range(shards)]  # fmt: skip
        self._queue.send([t.model_dump_json() for t in tasks])
        logger.info("segment run planned", extra={"run_id": run_id, "shards": shards,
                                                  "sample": len(sample)})  # fmt: skip
        return RunPlan(run_id, shards, len(sample), estimated, model)

    def _layout(self, run_id: str) -> tuple[Layout, str | None]:
        """How the run writes the computed segments' membership, and why when it cannot move
        it onto the member indexes. Until a run of this version completes, a run moves it there
        (`upgrade`), deleting the legacy SEG# items, and its completion switches the listings
        to the indexes: so it does only when both indexes exist and are ACTIVE (built and
        backfilled). Between the two deploys of an upgrade (docs/operations.md), a run keeps
        the legacy layout (`legacy`) and says so. One DescribeTable per run, and none once
        the layout is indexed."""
        if self._segments.computed_members_indexed():
            return "indexed", None
        states = self._profiles.store.member_index_states()
        waiting = {index: state for index, state in sorted(states.items()) if state != "ACTIVE"}
        if not waiting:
            return "upgrade", None
        problems = [f"member index {index} " + ("does not exist" if state == INDEX_MISSING
                                                 else f"is {state}")
                    for index, state in waiting.items()]  # fmt: skip
        notice = "; ".join(problems) + (": computed segments kept in the legacy layout (finish "
                                        "the upgrade deploy, docs/operations.md)")  # fmt: skip
        logger.warning("member indexes not ready: legacy layout kept",
                       extra={"run_id": run_id, "indexes": waiting})  # fmt: skip
        metrics.count("MemberIndexesNotReady")
        return "legacy", notice

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
                _fail_run(self._segments, task.run_id, f"{where} cannot be scored: "
                          f"{failure_name(exc)}", self._clock())  # fmt: skip
            elif attempt >= SHARD_ATTEMPTS:  # SQS moves it to the dead-letter queue now
                _fail_run(self._segments, task.run_id, f"{where} failed {attempt} times: "
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
        start: dict[str, Any] | None = None
        parts = 0
        done = self._segments.shard_checkpoint(task.run_id, task.segment)
        if done is not None:
            start, parts, result.resumed = done.resume, done.parts, True
            result.scored, result.written, result.skipped = done.scored, done.written, done.skipped
            result.counts = dict(done.counts)
        # Rules read since the shards were queued, not from a warm worker's minute-long cache: a
        # rule defined while the run was planned (POST /segments joins a planned run to fill
        # it) is evaluated in every shard.
        rules = self._membership.definitions(fresh_since=run.queued_at or run.started_at)
        # Rule segments may read any projected attribute: only then is a profile validated whole.
        whole = any(isinstance(d, StoredDefinition) and not d.paused
                    for d in rules)  # fmt: skip
        snapshot: list[dict[str, Any]] = []
        since_checkpoint = 0
        while True:
            if remaining_ms is not None and remaining_ms() < SHARD_TIME_MARGIN_S * 1000:
                if since_checkpoint and start:
                    self._checkpoint(task, result, start, parts, snapshot)
                raise ShardOutOfTime
            found, start = self._profiles.store.scan_scoring(
                task.segment, task.total_segments, start, limit=SCAN_PAGE_ITEMS
            )
            result.pages += 1
            self._score_page(found, model, now, whole, result, snapshot, task)
            since_checkpoint += 1
            if not start:
                break
            if since_checkpoint >= CHECKPOINT_EVERY_PAGES:
                if not self._checkpoint(task, result, start, parts, snapshot):
                    break  # another attempt finished the shard meanwhile
                parts += 1 if snapshot else 0
                snapshot, since_checkpoint = [], 0
        if snapshot:
            self._lake.write_rows(self._snapshot_key(task, parts), snapshot)
        for definition in rules:  # each rule it evaluated is sized, an empty one at 0
            if isinstance(definition, StoredDefinition) and not definition.paused:
                result.counts.setdefault(definition.name, 0)
        run = self._segments.record_shard(task.run_id, task.segment, result.counts,
                                          result.scored, result.written, self._clock())  # fmt: skip
        if run.status == "running" and run.shards_done >= run.total_segments:
            result.run_complete = self._segments.finish_run(task.run_id, self._clock())
            if result.run_complete and task.upgrade:
                self._segments.mark_computed_members_indexed(task.run_id, self._clock())
        return result

    @staticmethod
    def _snapshot_key(task: ShardTask, part: int) -> str:
        name = f"shard-{task.segment:07d}" + (f"-{part:04d}" if part else "")
        return partition_key("segment_scores", {"run": task.run_id}, name)

    def _checkpoint(
        self,
        task: ShardTask,
        result: ShardResult,
        resume: dict[str, Any],
        parts: int,
        snapshot: list[dict[str, Any]],
    ) -> bool:
        """The lake's rows first, then the checkpoint that says they are written."""
        if snapshot:
            self._lake.write_rows(self._snapshot_key(task, parts), snapshot)
            parts += 1
        checkpoint = ShardCheckpoint(resume=resume, counts=dict(result.counts),
                                     scored=result.scored, written=result.written,
                                     skipped=result.skipped, parts=parts)  # fmt: skip
        return self._segments.checkpoint_shard(task.run_id, task.segment, checkpoint,
                                               self._clock())  # fmt: skip

    def _score_page(
        self,
        found: list[ScoringProfile],
        model: SegmentModel,
        now: datetime,
        whole: bool,
        result: ShardResult,
        snapshot: list[dict[str, Any]],
        task: ShardTask,
    ) -> None:
        """Score a page and write back only what changed, in an order a retry can repeat:
        rule segments (conditional, on the profile), then rule-segment memberships and every
        transition's bus event, then the scores items (a batch), which are the computed
        segments' membership: a retry that finds a scores item written finds its transitions
        announced. An `upgrade` run writes every scores item (so each carries its index keys)
        and deletes the legacy SEG# items of the computed segments it lists; a `legacy` run
        writes the computed segments' transitions as SEG# items too, as versions before the
        member indexes did (its scores items carry the index keys all the same: DynamoDB
        ignores them while the index does not exist, and backfills them once it does)."""
        upgrade = task.upgrade
        features = [f for p in found if (f := features_of(p.record, now)) is not None]
        scores = score_page(features, model, now)
        index = self._index()
        changes: list[MembershipChange] = []
        legacy: list[MembershipChange] = []
        writes: list[ScoresWrite] = []
        for profile in found:
            new = scores.get(profile.customer_id)
            changed = new is not None and (
                not profile.scores_stored or materially_changed(profile.scores, new)
            )
            kept = new if changed else profile.scores
            run_before = set(profile.run_segments)
            run_after = computed_segments(new.tier, new.rfm_segment) if new else set()
            record = profile.full_record() if whole else profile.record
            record.scores = kept
            rules_before = set(profile.rule_segments)
            rules_after = self._membership.rule_segments(record, now)
            for name in run_after | rules_after:
                result.counts[name] = result.counts.get(name, 0) + 1
            result.scored += 1
            wrote = False
            if rules_after != rules_before:
                if self._profiles.store.set_rule_segments(
                    profile.customer_id, sorted(rules_after), profile.rev
                ):
                    changes += transitions(profile.customer_id, rules_before, rules_after)
                    wrote = True
                else:
                    result.skipped += 1  # saved meanwhile, which evaluated its rule segments
            if upgrade:
                legacy += legacy_deletes(profile.customer_id, run_before)
            if kept is not None and (changed or run_after != run_before or upgrade):
                writes.append(ScoresWrite(profile.customer_id, result.run_id, kept,
                                          tuple(sorted(run_after))))  # fmt: skip
                changes += transitions(profile.customer_id, run_before, run_after)
                wrote = True
            result.written += wrote
            if new is not None:
                snapshot.append({
                    "run_id": result.run_id, "customer_pid": index.pseudonym(profile.customer_id),
                    **new.model_dump(mode="json", exclude={"scored_at"}),
                })  # fmt: skip
        if task.legacy:
            legacy = [c for c in changes if is_computed(c.segment)]
        self._membership.apply(changes, result.run_id, legacy)
        self._profiles.store.put_scores(writes)
