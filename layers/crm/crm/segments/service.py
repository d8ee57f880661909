"""Segments as the API sees them: definitions, sizes, members, recommendations, runs on
request. No numerical libraries here: the API function does not carry the analytics layer."""

from __future__ import annotations

import re

from crm.auth import Caller, Permission
from crm.bus import Bus
from crm.clock import Clock
from crm.errors import NotFound
from crm.events import SegmentRunRequested
from crm.profiles import ProfileService
from crm.segments.baskets import recommend
from crm.segments.membership import COMPUTED_PREFIXES, RuleMembership
from crm.segments.models import (
    RFM_SEGMENTS,
    TIERS,
    Recommendations,
    RunRequested,
    SegmentDefinition,
    SegmentList,
    SegmentMembers,
    SegmentRun,
    SegmentSize,
    SegmentSummary,
    StoredDefinition,
)
from crm.segments.runs import run_view
from crm.segments.store import ModelStore, SegmentStore

TREND_RUNS = 7
RUN_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")  # a key DynamoDB takes; run ids are shorter


class SegmentCatalog:
    def __init__(
        self,
        store: SegmentStore,
        membership: RuleMembership,
        bus: Bus,
        models: ModelStore,
        profiles: ProfileService,
        clock: Clock,
    ) -> None:
        self._store = store
        self._membership = membership
        self._bus = bus
        self._models = models
        self._profiles = profiles
        self._clock = clock

    # ------------------------------------------------------------ definitions
    def define_segment(self, caller: Caller, body: SegmentDefinition) -> StoredDefinition:
        caller.require(Permission.EDIT_SEGMENTS)
        stored = StoredDefinition(
            name=body.name,
            description=body.description,
            rule=body.rule,
            updated_at=self._clock(),
            updated_by=caller.subject,
        )
        self._store.put_definition(stored)
        self._membership.forget_definitions()
        return stored

    # ------------------------------------------------------------ queries
    def list_segments(self, caller: Caller) -> SegmentList:
        """Sizes from complete runs only, read from where only complete runs are kept: a run
        in progress or a string of failed ones never hides the last good sizes. Two small
        queries (the newest run, the latest complete ones), so a run scanning the profiles
        meanwhile does not slow this down."""
        caller.require(Permission.READ_SEGMENTS)
        complete = self._store.complete_runs(limit=TREND_RUNS)
        complete.reverse()  # oldest first
        latest = complete[-1] if complete else None
        newest = next(iter(self._store.runs(limit=1)), None)
        current = newest if newest and newest.status != "complete" else None
        names: dict[str, tuple[str, str]] = {}
        for tier, label in TIERS.items():
            names[f"tier:{tier}"] = ("tier", f"{label} {tier}")
        for segment in RFM_SEGMENTS:
            names[f"rfm:{segment}"] = ("rfm", segment.replace("_", " "))
        for definition in self._membership.definitions():
            names[definition.name] = ("rule", definition.description or definition.name)
        summaries = []
        for name, (kind, label) in names.items():
            trend = [
                SegmentSize(run_id=r.run_id, finished_at=r.finished_at, size=r.sizes.get(name, 0))
                for r in complete
            ]
            summaries.append(
                SegmentSummary(
                    name=name,
                    kind=kind,
                    label=label,
                    size=latest.sizes.get(name, 0) if latest else None,
                    trend=trend,
                )
            )
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

    def segment_members(
        self, caller: Caller, name: str, limit: int, page_token: str | None
    ) -> SegmentMembers:
        caller.require(Permission.READ_SEGMENTS)
        known = name.startswith(COMPUTED_PREFIXES) or any(
            d.name == name for d in self._membership.definitions()
        )
        if not known:
            raise NotFound(f"no segment {name}")
        ids, next_token = self._store.members(name, limit, page_token)
        return SegmentMembers(name=name, customer_ids=ids, next_token=next_token)

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
        caller.require(Permission.RUN_SEGMENTS)
        self._bus.publish([SegmentRunRequested(requested_by=caller.subject,
                                               occurred_at=self._clock())])  # fmt: skip
        return RunRequested(detail="the planner starts a run within seconds")
