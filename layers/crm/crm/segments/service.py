"""Segments as the API sees them: definitions, sizes, members, recommendations, runs on
request. No numerical libraries here: the API function does not carry the analytics layer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger

from crm.auth import Caller, Permission
from crm.bus import Bus
from crm.clock import Clock, IdFactory
from crm.errors import Conflict, NotFound
from crm.events import SegmentRunRequested
from crm.profiles import ProfileService
from crm.segments.baskets import recommend
from crm.segments.fields import RFM_SEGMENTS, TIERS
from crm.segments.membership import RuleMembership, is_computed
from crm.segments.models import (
    RULE_SEGMENT_NAME,
    Recommendations,
    RunRequested,
    SegmentDefined,
    SegmentDefinition,
    SegmentDeleted,
    SegmentDetail,
    SegmentList,
    SegmentMembers,
    SegmentPause,
    SegmentPauseResult,
    SegmentRun,
    SegmentSize,
    SegmentSummary,
    StoredDefinition,
)
from crm.segments.records import ACTIVE, CompleteRun, RunRecord, UnreadableDefinition
from crm.segments.runs import RUN_ID, run_id_for, run_view
from crm.segments.store import ModelStore, SegmentStore

logger = Logger(child=True)

TREND_RUNS = 7
# Every profile change evaluates every rule segment: 200 of three conditions take about a
# millisecond of CPU on an idle core.
MAX_RULE_SEGMENTS = 200


Kind = Literal["tier", "rfm", "rule"]


def _computed(name: str) -> tuple[Kind, str] | None:
    """Kind and label of a segment the runs compute, or None."""
    kind, _, key = name.partition(":")
    if kind == "tier" and key in TIERS:
        return "tier", f"{TIERS[key]} {key}"
    if kind == "rfm" and key in RFM_SEGMENTS:
        return "rfm", key.replace("_", " ")
    return None


def _label(definition: StoredDefinition | UnreadableDefinition) -> str:
    if isinstance(definition, StoredDefinition) and definition.description:
        return definition.description
    return definition.name


class SegmentCatalog:
    def __init__(
        self,
        store: SegmentStore,
        membership: RuleMembership,
        bus: Bus,
        models: ModelStore,
        profiles: ProfileService,
        clock: Clock,
        ids: IdFactory,
    ) -> None:
        self._ids = ids
        self._store = store
        self._membership = membership
        self._bus = bus
        self._models = models
        self._profiles = profiles
        self._clock = clock
        self._members_indexed = False

    # ------------------------------------------------------------ definitions
    def define_segment(self, caller: Caller, body: SegmentDefinition) -> SegmentDefined:
        """Store the rule, then fill the segment: profile changes only evaluate the rules for
        the customers who change, so a new or changed rule is evaluated over the whole base
        by a segment run started now (runs score every profile, and each of their shards
        reads the rules afresh)."""
        caller.require(Permission.EDIT_SEGMENTS)
        defined = {d.name: d for d in self._store.definitions()}
        if body.name not in defined and len(defined) >= MAX_RULE_SEGMENTS:
            raise Conflict(
                f"there are {len(defined)} rule segments, the most this CRM evaluates on every "
                "profile change: delete one first"
            )
        stored = StoredDefinition(
            name=body.name,
            description=body.description,
            rule=body.rule,
            updated_at=self._clock(),
            updated_by=caller.subject,
        )
        stored = self._store.put_definition(stored, paused=body.paused)
        self._membership.forget_definitions()
        before = defined.get(body.name)
        created = before is None
        if stored.paused:
            return SegmentDefined(**dict(stored), status="paused", run_id=None, created=created)
        if (isinstance(before, StoredDefinition) and before.rule == stored.rule
                and not before.paused):  # fmt: skip
            return SegmentDefined(**dict(stored), status="unchanged", run_id=None, created=False)
        run_id = self._fill_run(caller)
        status: Literal["filling", "waiting"] = "filling" if run_id else "waiting"
        return SegmentDefined(**dict(stored), status=status, run_id=run_id, created=created)

    def _fill_run(self, caller: Caller) -> str | None:
        """The run that fills a new rule: one planned and not yet claimed by the planner will
        read every profile with the rule stored now, so a second definition (or a racing
        one) joins it; otherwise a new run. None when the run could not be requested: the
        rule is stored all the same, and the next run (nightly, or POST /segments/runs)
        fills it."""
        newest = self._newest_run()
        if newest is not None and newest.status == "planned":
            return newest.run_id
        try:
            return self._start_run(caller.subject)
        except Exception:  # the bus: the run is recorded as failed, the rule stays stored
            logger.warning("segment fill run not started")
            return None

    def pause_segment(self, caller: Caller, name: str, body: SegmentPause) -> SegmentPauseResult:
        """Pause (or resume) a rule segment: while paused its members stay as they are. A
        resumed segment is filled as a new one is (customers changed, or became due, while it
        was paused): by a segment run started now."""
        caller.require(Permission.EDIT_SEGMENTS)
        self._refuse_computed(name, "paused")
        was_paused = self._store.set_paused(name, body.paused, self._clock(), caller.subject)
        if was_paused is None:
            raise NotFound(f"no rule segment {name}")
        self._membership.forget_definitions()
        detail = self.segment(caller, name)
        if body.paused:
            return SegmentPauseResult(**dict(detail), status="paused", run_id=None)
        if not was_paused:
            return SegmentPauseResult(**dict(detail), status="active", run_id=None)
        run_id = self._fill_run(caller)
        return SegmentPauseResult(
            **dict(detail), status="filling" if run_id else "waiting", run_id=run_id
        )

    def delete_segment(self, caller: Caller, name: str) -> SegmentDeleted:
        caller.require(Permission.EDIT_SEGMENTS)
        self._refuse_computed(name, "deleted")
        if not self._store.delete_definition(name):
            raise NotFound(f"no rule segment {name}")
        self._membership.forget_definitions()
        return SegmentDeleted(
            name=name,
            detail="the segment is gone now: it is listed nowhere and its members are no longer "
            "served; each member drops out, unannounced, at their next change or the next run",
        )

    @staticmethod
    def _refuse_computed(name: str, what: str) -> None:
        if _computed(name) is not None:
            raise Conflict(f"{name} is computed by the segment runs and cannot be {what}")
        if not RULE_SEGMENT_NAME.fullmatch(name):
            raise NotFound(f"no rule segment {name}")

    def _start_run(self, requested_by: str) -> str:
        """Records a run as planned under a new id and asks the planner for it."""
        now = self._clock()
        run_id = run_id_for(now, self._ids)
        self._store.create_run(run_id, now)
        try:
            self._bus.publish([SegmentRunRequested(run_id=run_id, requested_by=requested_by,
                                                   occurred_at=now)])  # fmt: skip
        except Exception:
            self._store.fail_run(run_id, "the request did not reach the planner", self._clock())
            raise
        return run_id

    # ------------------------------------------------------------ queries
    def list_segments(self, caller: Caller) -> SegmentList:
        """Sizes from complete runs only, read from where only complete runs are kept: a run
        in progress or a string of failed ones never hides the last good sizes. Two small
        queries (the newest run, the latest complete ones), so a run scanning the profiles
        meanwhile does not slow this down."""
        caller.require(Permission.READ_SEGMENTS)
        complete = self._complete_runs()
        newest = self._newest_run()
        # Under way, or failed (the listing says why: the next run clears it).
        current = newest if newest and newest.status != "complete" else None
        computed = [*(f"tier:{t}" for t in TIERS), *(f"rfm:{s}" for s in RFM_SEGMENTS)]
        names = {name: kind for name in computed if (kind := _computed(name))}
        paused = set()
        created: dict[str, datetime | None] = {}
        for definition in self._membership.definitions():
            names[definition.name] = ("rule", _label(definition))
            if isinstance(definition, StoredDefinition):
                created[definition.name] = definition.created_at
            if definition.paused:
                paused.add(definition.name)
        summaries = [
            SegmentSummary(
                **self._sizes(name, complete, created.get(name), rule=kind == "rule"),
                kind=kind,
                label=label,
                paused=name in paused,
            )
            for name, (kind, label) in names.items()
        ]
        latest = complete[-1] if complete else None
        return SegmentList(
            latest_run=latest.run_id if latest else None,
            current_run=run_view(current) if current else None,
            segments=summaries,
        )

    def segment_run(self, caller: Caller, run_id: str) -> SegmentRun:
        caller.require(Permission.READ_SEGMENTS)
        run = self._store.run(run_id) if RUN_ID.fullmatch(run_id) else None
        if run is None:
            raise NotFound("no segment run with this id")
        return run_view(run)

    def segment(self, caller: Caller, name: str) -> SegmentDetail:
        """One segment: a tier, an RFM segment or a rule segment (read afresh, not cached)."""
        caller.require(Permission.READ_SEGMENTS)
        computed = _computed(name)
        if computed is not None:
            kind, label = computed
            sizes = self._sizes(name, self._complete_runs())
            return SegmentDetail(**sizes, kind=kind, label=label, paused=False)
        definition = self._definition(name)
        if definition is None:
            raise NotFound(f"no segment {name}")
        since = definition.created_at if isinstance(definition, StoredDefinition) else None
        sizes = self._sizes(name, self._complete_runs(), since, rule=True)
        if isinstance(definition, UnreadableDefinition):
            problem = "the stored rule does not fit the rule grammar (" + "; ".join(
                definition.problems) + "): redefine or delete it"  # fmt: skip
            return SegmentDetail(**sizes, kind="rule", label=name, paused=definition.paused,
                                 problem=problem)  # fmt: skip
        return SegmentDetail(**sizes, kind="rule", label=_label(definition),
                             paused=definition.paused, definition=definition)  # fmt: skip

    def _definition(self, name: str) -> StoredDefinition | UnreadableDefinition | None:
        if not RULE_SEGMENT_NAME.fullmatch(name):
            return None  # not a name a segment can have, nor a key DynamoDB would take
        return self._store.definition(name)

    def _newest_run(self) -> RunRecord | None:
        return next(iter(self._store.runs(limit=1)), None)

    def _complete_runs(self) -> list[CompleteRun]:
        """The recent complete runs, oldest first."""
        complete = self._store.complete_runs(limit=TREND_RUNS)
        complete.reverse()
        return complete

    @staticmethod
    def _sizes(
        name: str, complete: list[CompleteRun], since: datetime | None = None, rule: bool = False
    ) -> dict[str, Any]:
        """Sizes at the complete runs; a rule segment's only at those that finished after it
        was created (an earlier run never evaluated it: its 0 would be a fake history) and
        that sized it (a run records each rule it evaluated, 0 included: a segment paused
        before it was ever filled is not given the paused run's 0), and no size (None) until
        one has."""
        runs = [r for r in complete if (since is None or r.finished_at > since)
                and (not rule or name in r.sizes)]  # fmt: skip
        trend = [
            SegmentSize(run_id=r.run_id, finished_at=r.finished_at, size=r.sizes.get(name, 0))
            for r in runs
        ]
        size = runs[-1].sizes.get(name, 0) if runs else None
        return {"name": name, "size": size, "trend": trend}

    def segment_members(
        self, caller: Caller, name: str, limit: int, page_token: str | None
    ) -> SegmentMembers:
        caller.require(Permission.READ_SEGMENTS)
        # Read afresh, not from the minute-long cache: a deleted segment serves no members.
        if _computed(name) is None and self._definition(name) is None:
            raise NotFound(f"no segment {name}")
        ids, next_token = self.member_page(name, limit, page_token)
        return SegmentMembers(name=name, customer_ids=ids, next_token=next_token)

    def member_page(
        self, name: str, limit: int, page_token: str | None
    ) -> tuple[list[str], str | None]:
        """One page of a segment's members for in-process readers (campaign sends fan out
        over them), which check who may send before; the next page's token or None.

        A tier's or RFM cell's members are the scores items in its family's index (read
        through the profiles family); a rule segment's are its SEG# items. Until a run of this
        version completes, computed segments are still listed from their legacy SEG# items,
        and a listing that began there continues there. An index the marker promises but the
        table cannot serve (an unfinished upgrade deploy) is Unavailable (503; a send's
        listing task fails and is retried, then dead-lettered), never an empty list."""
        start = self._store.page_start(page_token)
        if is_computed(name) and not self._store.legacy_start(start) and self._indexed():
            return self._profiles.store.computed_members(name, limit, start)
        return self._store.members(name, limit, start)

    def _indexed(self) -> bool:
        """Whether computed segments are listed from the member indexes; once they are, they
        always are (one GetItem per process, not one per page of a send)."""
        if not self._members_indexed:
            self._members_indexed = self._store.computed_members_indexed()
        return self._members_indexed

    def recommendations(self, caller: Caller, customer_id: str, limit: int) -> Recommendations:
        """Top products the customer has not bought, from the latest run's associations."""
        caller.require(Permission.READ_PROFILE, customer_id)
        record = self._profiles.load(customer_id)
        latest = next(iter(self._store.complete_runs(limit=1)), None)
        if latest is None:
            return Recommendations(customer_id=record.customer_id, run_id=None,
                                   recommendations=[])  # fmt: skip
        model = self._models.get(latest.run_id)
        chosen = recommend(record.aggregates.orders.products, model.associations,
                           model.product_categories, model.popular_products, limit)  # fmt: skip
        return Recommendations(customer_id=record.customer_id, run_id=latest.run_id,
                               recommendations=chosen)  # fmt: skip

    def request_run(self, caller: Caller) -> RunRequested:
        """Records the run as planned under the id it answers, so the caller can follow it at
        once; the planner claims it from the bus."""
        caller.require(Permission.RUN_SEGMENTS)
        newest = self._newest_run()
        if newest is not None and newest.status in ACTIVE:
            # A second run at once would compute the same again, over the first one's writes.
            return RunRequested(
                requested=False,
                run_id=newest.run_id,
                detail=f"a run is under way ({newest.status}): follow it at "
                f"GET /segments/runs/{newest.run_id}",
            )
        run_id = self._start_run(caller.subject)
        return RunRequested(
            run_id=run_id,
            detail="the planner starts the run within seconds: follow it at "
            f"GET /segments/runs/{run_id}",
        )
