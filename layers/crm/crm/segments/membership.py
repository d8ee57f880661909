"""Rule-segment membership: which rule segments a profile is in, and announcing who entered or
left a segment (membership items, then one bus event per transition). The profiles family
calls it through its `RuleSegments` Protocol on every change; segment runs use it too."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from crm.bus import Bus
from crm.clock import Clock
from crm.events import CustomerSegmentChanged
from crm.profiles import ProfileRecord, SegmentShift
from crm.segments.models import StoredDefinition
from crm.segments.records import MembershipChange
from crm.segments.rules import matches
from crm.segments.store import SegmentStore

DEFINITIONS_TTL_S = 60.0  # a new rule segment reaches every function within a minute
COMPUTED_PREFIXES = ("tier:", "rfm:")


def computed_segments(tier: str, rfm_segment: str) -> set[str]:
    return {f"tier:{tier}", f"rfm:{rfm_segment}"}


def transitions(
    customer_id: str, before: Iterable[str], after: Iterable[str]
) -> list[MembershipChange]:
    old, new = set(before), set(after)
    return [MembershipChange(s, customer_id, True) for s in sorted(new - old)] + [
        MembershipChange(s, customer_id, False) for s in sorted(old - new)
    ]


class RuleMembership:
    def __init__(self, store: SegmentStore, bus: Bus, clock: Clock) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._definitions: tuple[float, list[StoredDefinition]] | None = None

    def definitions(self) -> list[StoredDefinition]:
        now = time.monotonic()
        if self._definitions is None or now - self._definitions[0] > DEFINITIONS_TTL_S:
            self._definitions = (now, self._store.definitions())
        return self._definitions[1]

    def forget_definitions(self) -> None:
        """After a definition changed in this process: read them afresh next time."""
        self._definitions = None

    def rule_segments(self, record: ProfileRecord, now: datetime) -> set[str]:
        return {d.name for d in self.definitions() if matches(record, d.rule, now)}

    # ------------------------------------------------------------ profiles' RuleSegments
    def evaluate(self, record: ProfileRecord, now: datetime) -> list[str]:
        """The record's segments with its rule segments evaluated afresh (tiers and RFM
        segments are the runs' to change)."""
        kept = {s for s in record.segments if s.startswith(COMPUTED_PREFIXES)}
        return sorted(kept | self.rule_segments(record, now))

    def announce(self, shifts: Sequence[SegmentShift]) -> None:
        changes = [c for s in shifts for c in transitions(s.customer_id, s.before, s.after)]
        self.apply(changes, run_id=None)

    # ------------------------------------------------------------ writing transitions
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
