"""Segments as the API and the event folder see them: definitions, sizes, members, and rule
segments evaluated on one profile. No numerical libraries here: the API function does not
carry the analytics layer."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from functools import cache

from crm.auth import Caller, Permission
from crm.bus import Bus
from crm.clock import Clock, utc_now
from crm.config import settings
from crm.errors import NotFound
from crm.events import CustomerSegmentChanged, SegmentRunRequested
from crm.profiles.record import ProfileRecord
from crm.profiles.service import ProfileService, profile_service
from crm.segments.baskets import recommend
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
from crm.segments.rules import matches
from crm.segments.store import MembershipChange, ModelStore, SegmentStore

DEFINITIONS_TTL_S = 60.0  # a new rule segment reaches the event folders within a minute
TREND_RUNS = 7
COMPUTED_PREFIXES = ("tier:", "rfm:")


def computed_segments(tier: str, rfm_segment: str) -> set[str]:
    return {f"tier:{tier}", f"rfm:{rfm_segment}"}


class SegmentCatalog:
    def __init__(
        self,
        store: SegmentStore,
        bus: Bus,
        models: ModelStore,
        profiles: ProfileService,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._bus = bus
        self._models = models
        self._profiles = profiles
        self._clock = clock
        self._definitions: tuple[float, list[StoredDefinition]] | None = None

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
        self._definitions = None
        return stored

    def definitions(self) -> list[StoredDefinition]:
        now = time.monotonic()
        if self._definitions is None or now - self._definitions[0] > DEFINITIONS_TTL_S:
            self._definitions = (now, self._store.definitions())
        return self._definitions[1]

    def rule_segments(self, record: ProfileRecord, now: datetime) -> set[str]:
        return {d.name for d in self.definitions() if matches(record, d.rule, now)}

    def with_rule_segments(self, record: ProfileRecord, now: datetime) -> set[str]:
        """The record's segments with its rule segments evaluated afresh."""
        kept = {s for s in record.segments if s.startswith(COMPUTED_PREFIXES)}
        return kept | self.rule_segments(record, now)

    # ------------------------------------------------------------ membership changes
    def transitions(
        self, customer_id: str, before: Iterable[str], after: Iterable[str]
    ) -> list[MembershipChange]:
        old, new = set(before), set(after)
        return [MembershipChange(s, customer_id, True) for s in sorted(new - old)] + [
            MembershipChange(s, customer_id, False) for s in sorted(old - new)
        ]

    def apply(self, changes: list[MembershipChange], run_id: str | None) -> None:
        """Write the membership items, then announce each transition on the bus."""
        if not changes:
            return
        self._store.apply(changes)
        now = self._clock()
        self._bus.publish(
            [
                CustomerSegmentChanged(
                    customer_id=c.customer_id,
                    segment=c.segment,
                    change="entered" if c.entered else "left",
                    run_id=run_id,
                    occurred_at=now,
                )
                for c in changes
            ]
        )

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
        for definition in self.definitions():
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
            d.name == name for d in self.definitions()
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


@cache
def segment_catalog() -> SegmentCatalog:
    config = settings()
    return SegmentCatalog(
        SegmentStore(config.segments_table),
        Bus(config.event_bus_name),
        ModelStore(config.lake_bucket),
        profile_service(),
    )
