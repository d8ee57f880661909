"""Segments as the API sees them: definitions, sizes, members, recommendations, runs on
request. No numerical libraries here: the API function does not carry the analytics layer."""

from __future__ import annotations

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
    SegmentSize,
    SegmentSummary,
    StoredDefinition,
)
from crm.segments.store import ModelStore, SegmentStore

TREND_RUNS = 7


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
        caller.require(Permission.READ_SEGMENTS)
        runs = self._store.runs(limit=TREND_RUNS * 2)
        complete = [r for r in runs if r.status == "complete"][:TREND_RUNS]
        complete.reverse()  # oldest first
        latest = complete[-1] if complete else None
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
        return SegmentList(latest_run=latest.run_id if latest else None, segments=summaries)

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
        latest = next((r for r in self._store.runs(limit=TREND_RUNS) if r.status == "complete"),
                      None)  # fmt: skip
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
