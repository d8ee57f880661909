"""Rule-segment membership: which rule segments a profile is in, and announcing who entered or
left a segment (membership items of rule segments, then one bus event per transition). The
profiles family calls it through its `RuleSegments` Protocol on every change; segment runs use
it too. Computed segments (tiers, RFM cells) have no membership items: the scores item a run
writes is their membership (CustomersTable's `tier_members` / `rfm_members` indexes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from crm import metrics
from crm.clock import Clock
from crm.profiles import ProfileRecord, SegmentShift, member_index
from crm.segments.records import MembershipChange, UnreadableDefinition
from crm.segments.rules import matches
from crm.segments.store import SegmentStore

logger = Logger(child=True)

DEFINITIONS_TTL_S = 60.0  # a new rule segment reaches every function within a minute
FAILURE_METRIC_INTERVAL_S = 60.0


def is_computed(segment: str) -> bool:
    """A tier or an RFM cell: the families a run computes, each with its member index."""
    return member_index(segment) is not None


def legacy_deletes(customer_id: str, segments: Iterable[str]) -> list[MembershipChange]:
    """Deletes of the SEG# items an older version wrote for the customer's computed
    segments (deleting one that is not there costs a write unit and changes nothing)."""
    return [MembershipChange(s, customer_id, False) for s in sorted(segments) if is_computed(s)]


def computed_segments(tier: str, rfm_segment: str) -> set[str]:
    return {f"tier:{tier}", f"rfm:{rfm_segment}"}


def transitions(
    customer_id: str, before: Iterable[str], after: Iterable[str]
) -> list[MembershipChange]:
    old, new = set(before), set(after)
    return [MembershipChange(s, customer_id, True) for s in sorted(new - old)] + [
        MembershipChange(s, customer_id, False) for s in sorted(old - new)
    ]


if TYPE_CHECKING:
    # Types only here. The definitions come from the store, which loads the rule grammar when
    # it reads the first one (a profile write with no rule segments never does); the bus's
    # events module is loaded by the first transition announced.
    from typing import TypeAlias

    from crm.bus import Bus
    from crm.segments.models import StoredDefinition

    Definition: TypeAlias = StoredDefinition | UnreadableDefinition


class RuleFailures:
    """Rule segments that could not be read or evaluated for a customer. Each is skipped for
    that customer (its membership stays as it was) and reported: logged once per segment and
    kind of error in this container (the segment's name and the error's type, never the
    customer or values), and counted as the metric RuleSegmentFailed (dimension Segment),
    flushed at the first failure and then at most once a minute per segment."""

    def __init__(
        self, namespace: str | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._namespace = namespace
        self._monotonic = monotonic
        self._logged: set[tuple[str, str]] = set()
        self._pending: dict[str, int] = {}
        self._flushed_at: dict[str, float] = {}

    def record(self, segment: str, stage: str, error: str, problems: Sequence[str] = ()) -> None:
        if (segment, error) not in self._logged:
            self._logged.add((segment, error))
            logger.warning(
                "rule segment skipped",
                extra={"segment": segment, "stage": stage, "error": error,
                       "problems": list(problems)},
            )  # fmt: skip
        self._pending[segment] = self._pending.get(segment, 0) + 1
        now = self._monotonic()
        last = self._flushed_at.get(segment)
        if last is None or now - last >= FAILURE_METRIC_INTERVAL_S:
            self._flush(segment, now)

    def _flush(self, segment: str, now: float) -> None:
        count = self._pending.pop(segment, 0)
        self._flushed_at[segment] = now
        metrics.count("RuleSegmentFailed", count, {"Segment": segment}, self._namespace)


class RuleMembership:
    def __init__(
        self, store: SegmentStore, bus: Bus, clock: Clock, failures: RuleFailures | None = None
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._failures = failures or RuleFailures()
        self._definitions: tuple[float, list[Definition]] | None = None
        self._read_at: datetime | None = None  # the clock's time of the cached read

    def definitions(self, fresh_since: datetime | None = None) -> list[Definition]:
        """The stored definitions, read at most once a minute per container: a change made
        elsewhere (defined, paused, deleted) reaches every function within that minute.
        `fresh_since`: read afresh unless the cached read is at least that recent (a segment
        run's shards see every rule stored before the run was requested)."""
        now = time.monotonic()
        stale = fresh_since is not None and (self._read_at is None or self._read_at < fresh_since)
        if self._definitions is None or stale or now - self._definitions[0] > DEFINITIONS_TTL_S:
            self._read_at = self._clock()
            self._definitions = (now, self._store.definitions())
        return self._definitions[1]

    def forget_definitions(self) -> None:
        """After a definition changed in this process: read them afresh next time."""
        self._definitions = None

    def rule_segments(self, record: ProfileRecord, now: datetime) -> set[str]:
        """The rule segments the customer is in now. A paused segment, or one that cannot
        be read or evaluated, keeps the customer where the record has them: one bad rule
        never moves members, nor stops the others from being evaluated."""
        inside = set()
        for definition in self.definitions():
            member = self._holds(definition, record, now)
            if member or (member is None and definition.name in record.segments):
                inside.add(definition.name)
        return inside

    def _holds(self, definition: Definition, record: ProfileRecord, now: datetime) -> bool | None:
        """Whether the customer meets the rule; None when it is not evaluated."""
        if definition.paused:
            return None
        if isinstance(definition, UnreadableDefinition):
            self._failures.record(definition.name, "read", "UnreadableDefinition",
                                  definition.problems)  # fmt: skip
            return None
        try:
            return matches(record, definition.rule, now)
        except Exception as exc:  # one rule must never stop the others, whatever it raises
            self._failures.record(definition.name, "evaluate", type(exc).__name__)
            return None

    # ------------------------------------------------------------ profiles' RuleSegments
    def evaluate(self, record: ProfileRecord, now: datetime) -> list[str]:
        """The record's segments with its rule segments evaluated afresh (tiers and RFM
        segments are the runs' to change)."""
        kept = {s for s in record.segments if is_computed(s)}
        return sorted(kept | self.rule_segments(record, now))

    def announce(self, shifts: Sequence[SegmentShift]) -> None:
        changes = [c for s in shifts for c in transitions(s.customer_id, s.before, s.after)]
        # Only a merge moves computed segments here (the absorbed customer leaves them, and its
        # scores item goes in the merge's transaction): its legacy items go as well.
        legacy = [c for c in changes if is_computed(c.segment) and not c.entered]
        self.apply(changes, run_id=None, legacy=legacy)

    # ------------------------------------------------------------ writing transitions
    def apply(
        self,
        changes: list[MembershipChange],
        run_id: str | None,
        legacy: Sequence[MembershipChange] = (),
    ) -> None:
        """Write the rule segments' membership items and the `legacy` writes (computed
        segments' SEG# items, the layout before the member indexes: an upgrade run's or a
        merge's deletes, a legacy-layout run's transitions) in one batch, then announce each
        transition (computed ones too) on the bus."""
        writes = [c for c in changes if not is_computed(c.segment)] + list(legacy)
        if writes:
            self._store.apply(writes)
        if not changes:
            return
        # Customers drop out of a deleted segment as they are next evaluated; that is
        # tidying, not news: no campaign should react to it.
        from crm.events import CustomerSegmentChanged  # loaded by the first transition

        defined = {d.name for d in self.definitions()}
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
                if is_computed(c.segment) or c.segment in defined
            ]
        )
