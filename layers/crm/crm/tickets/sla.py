"""SLA policies and clocks.

A policy gives each metric of a ticket a target in a calendar's time; the one that applies is
chosen by category and priority when the ticket opens and copied onto it (pinned): editing the
policies later never moves an open ticket's deadlines.

Each metric has its own clock, an append-only ledger of entries (start, pause, resume, met).
Calendar time counts while it runs; first-response-like metrics never pause; resolution and
closure pause while the ticket waits on the customer or a third party. A pause is written only
by a running clock and a resume only by a paused one, so moving between two waiting states
writes nothing and counts nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from crm.tickets.calendars import ALWAYS, BUSINESS_HOURS, Calendar, Overrun, calendar_named, pinned
from crm.tickets.models import (
    Deadline,
    DeadlineState,
    Priority,
    SlaMetric,
    SlaPolicies,
    TicketCategory,
    TicketStatus,
)
from crm.tickets.records import ClockEntry, ClockMove, PinnedTarget, TicketRecord

POLICY_VERSION = "sla-2026.12"
WARN_AT = 0.75
WAITING = frozenset({TicketStatus.WAITING_CUSTOMER, TicketStatus.WAITING_THIRD_PARTY})

M = SlaMetric
_HUMAN_REPLY = (M.FIRST_RESPONSE, 30, False)
# The metrics whose clocks pause while the ticket waits on the customer or a third party.
PAUSING = frozenset({M.RESOLUTION, M.CLOSURE})


@dataclass(frozen=True)
class SlaPolicy:
    version: str
    calendar: Calendar
    targets: tuple[PinnedTarget, ...]


def _targets(*rows: tuple[SlaMetric, int, bool]) -> tuple[PinnedTarget, ...]:
    return tuple(PinnedTarget(metric=m, minutes=minutes, pauses=p) for m, minutes, p in rows)


# The shop's service standards: a human reply within 30 min everywhere; logistics feedback
# within 2 h and resolved within 24 h; a return request reviewed within 4 h; complaints an
# agent within 1 h, a solution within 24 h, closed within 48 h. Other categories are resolved
# within 72 h (the shop's own choice; the standards name none).
CATEGORY_TARGETS: dict[TicketCategory | None, tuple[PinnedTarget, ...]] = {
    TicketCategory.LOGISTICS: _targets(
        _HUMAN_REPLY, (M.FEEDBACK, 120, False), (M.RESOLUTION, 24 * 60, True)
    ),
    TicketCategory.RETURN_REFUND: _targets(
        _HUMAN_REPLY, (M.REVIEW, 240, False), (M.RESOLUTION, 72 * 60, True)
    ),
    TicketCategory.SERVICE_COMPLAINT: _targets(
        _HUMAN_REPLY,
        (M.ASSIGNED, 60, False),
        (M.RESOLUTION, 24 * 60, True),
        (M.CLOSURE, 48 * 60, True),
    ),
    None: _targets(_HUMAN_REPLY, (M.RESOLUTION, 72 * 60, True)),
}


def default_policies() -> SlaPolicies:
    """The shop's standards above, as the policies a ticket opens under until managers
    replace them: business hours, except urgent tickets (escalated ones), which run 24x7."""

    def minutes(targets: tuple[PinnedTarget, ...]) -> dict[SlaMetric, int]:
        return {t.metric: t.minutes for t in targets}

    return SlaPolicies(
        default=minutes(CATEGORY_TARGETS[None]),
        categories={c: minutes(t) for c, t in CATEGORY_TARGETS.items() if c is not None},
        calendars={Priority.URGENT: ALWAYS.name},
    )


def policy_for(
    category: TicketCategory,
    priority: Priority,
    policies: SlaPolicies | None = None,
    version: str = POLICY_VERSION,
    calendar_of: Callable[[str], Calendar] = calendar_named,
) -> SlaPolicy:
    """The targets of the ticket's category (or the default ones) in the calendar of its
    priority (business hours unless the policies say otherwise), found by `calendar_of` (the
    service's lookup, which knows the shop's calendars; the built-ins alone by default)."""
    policies = policies or default_policies()
    targets = policies.categories.get(category) or policies.default
    calendar = calendar_of(policies.calendars.get(priority, BUSINESS_HOURS.name))
    pinned = tuple(
        PinnedTarget(metric=metric, minutes=minutes, pauses=metric in PAUSING)
        for metric, minutes in sorted(targets.items(), key=lambda kv: list(SlaMetric).index(kv[0]))
    )
    return SlaPolicy(version, calendar, pinned)


def default_priority(category: TicketCategory) -> Priority:
    """Complaints start high; escalation raises any ticket to urgent."""
    return Priority.HIGH if category is TicketCategory.SERVICE_COMPLAINT else Priority.NORMAL


# ------------------------------------------------------------------ what moves a clock
# Which metrics an agent's action meets.
MET_BY_REPLY = frozenset({M.FIRST_RESPONSE, M.FEEDBACK, M.REVIEW})
MET_BY_ASSIGN = frozenset({M.ASSIGNED})
MET_BY_STATUS = {
    TicketStatus.RESOLVED: frozenset({M.RESOLUTION, M.REVIEW}),
    TicketStatus.CLOSED: frozenset(SlaMetric),
}


@dataclass(frozen=True)
class Clock:
    """One metric's clock as its ledger says at `now`."""

    ticket_id: str
    target: PinnedTarget
    entries: tuple[ClockEntry, ...]
    calendar: Calendar
    now: datetime

    @property
    def metric(self) -> SlaMetric:
        return self.target.metric

    @property
    def target_s(self) -> float:
        return self.target.minutes * 60.0

    @property
    def last(self) -> ClockEntry | None:
        return self.entries[-1] if self.entries else None

    @property
    def running(self) -> bool:
        return self.last is not None and self.last.move in ("start", "resume")

    @property
    def paused(self) -> bool:
        return self.last is not None and self.last.move == "pause"

    @property
    def met_at(self) -> datetime | None:
        last = self.last
        return last.at if last is not None and last.move == "met" else None

    def _elapsed(self, until: datetime, running_part: bool = True) -> float:
        total, since = 0.0, None
        for entry in self.entries:
            if entry.at > until:
                break
            if entry.move in ("start", "resume"):
                since = entry.at
            elif since is not None:
                total += self.calendar.seconds_between(since, entry.at)
                since = None
        if since is not None and running_part:
            total += self.calendar.seconds_between(since, until)
        return total

    @property
    def elapsed_s(self) -> float:
        return self._elapsed(self.met_at or self.now)

    @property
    def banked_s(self) -> float:
        """Counted before the current running stretch began."""
        return self._elapsed(self.now, running_part=False)

    def moment(self, fraction: float) -> datetime | None:
        """When the running clock reaches this fraction of its target; None when not running,
        or when the calendar holds too little working time to reach it within MAX_DAYS (a
        shop calendar of a few hours a week and a target of weeks: no due time to show)."""
        last = self.last
        if last is None or not self.running:
            return None
        try:
            return self.calendar.add(last.at, fraction * self.target_s - self.banked_s)
        except Overrun:
            return None

    @property
    def due_at(self) -> datetime | None:
        return self.moment(1.0)

    @property
    def breached(self) -> bool:
        return self.elapsed_s >= self.target_s

    def view(self, warned: bool) -> Deadline:
        met_at = self.met_at
        elapsed = self.elapsed_s
        if self.breached:
            state = DeadlineState.BREACHED
        elif met_at is not None:
            state = DeadlineState.MET
        elif self.paused:
            state = DeadlineState.PAUSED
        else:
            state = DeadlineState.RUNNING
        return Deadline(
            metric=self.metric,
            state=state,
            target_minutes=self.target.minutes,
            due_at=self.due_at,
            seconds_left=None if met_at is not None else int(self.target_s - elapsed),
            elapsed_seconds=int(elapsed),
            warned=warned or self.breached,
            met_at=met_at,
        )

    def move(self, move: ClockMove, at: datetime, reason: str) -> ClockEntry:
        return ClockEntry(
            ticket_id=self.ticket_id,
            metric=self.metric,
            seq=len(self.entries),
            move=move,
            at=at,
            reason=reason,
        )


def clocks(ticket: TicketRecord, entries: Sequence[ClockEntry], now: datetime) -> list[Clock]:
    calendar = pinned(ticket.calendar, ticket.calendar_definition)
    by_metric: dict[SlaMetric, list[ClockEntry]] = {}
    for entry in sorted(entries, key=lambda e: (e.metric, e.seq)):
        by_metric.setdefault(entry.metric, []).append(entry)
    return [
        Clock(ticket.ticket_id, target, tuple(by_metric.get(target.metric, ())), calendar, now)
        for target in ticket.targets
    ]


def deadlines(ticket: TicketRecord, entries: Sequence[ClockEntry], now: datetime) -> list[Deadline]:
    return [c.view(c.metric in ticket.warned) for c in clocks(ticket, entries, now)]


def opening_entries(ticket: TicketRecord) -> list[ClockEntry]:
    return [
        ClockEntry(
            ticket_id=ticket.ticket_id, metric=t.metric, seq=0, move="start",
            at=ticket.opened_at, reason="opened",
        )
        for t in ticket.targets
    ]  # fmt: skip


def moves(
    ticket: TicketRecord,
    entries: Sequence[ClockEntry],
    at: datetime,
    *,
    status: TicketStatus | None = None,
    replied: bool = False,
    assigned: bool = False,
) -> list[ClockEntry]:
    """The entries an action appends: metrics it meets, and pauses or resumes of the clocks
    that pause when the status moves into or out of waiting."""
    meets: set[SlaMetric] = set()
    if replied:
        meets |= MET_BY_REPLY
    if assigned:
        meets |= MET_BY_ASSIGN
    if status is not None:
        meets |= MET_BY_STATUS.get(status, frozenset())
    added = []
    for clock in clocks(ticket, entries, at):
        if clock.met_at is not None or clock.last is None:
            continue
        if clock.metric in meets:
            added.append(clock.move("met", at, _why(status, replied, assigned)))
        elif clock.target.pauses and status in WAITING and clock.running:
            added.append(clock.move("pause", at, status.value))
        elif clock.target.pauses and status is not None and status not in WAITING and clock.paused:
            added.append(clock.move("resume", at, status.value))
    return added


def _why(status: TicketStatus | None, replied: bool, assigned: bool) -> str:
    if status is not None:
        return status.value
    return "replied" if replied else "assigned" if assigned else "moved"


def met_in_time(
    ticket: TicketRecord, before: Sequence[ClockEntry], added: Sequence[ClockEntry], now: datetime
) -> list[SlaMetric]:
    """The metrics an action met before their deadline: the denominator of the breach rate
    (a clock met late was counted when its breach wake-up fired, and only then)."""
    met = {e.metric for e in added if e.move == "met"}
    if not met:
        return []
    return [
        c.metric
        for c in clocks(ticket, [*before, *added], now)
        if c.metric in met and not c.breached
    ]


# ------------------------------------------------------------------ timers
SLA_KIND = "sla"


def timer_id(ticket_id: str, metric: SlaMetric, seq: int, stage: str) -> str:
    """One timer per running stretch of a clock and stage: a new stretch (after a resume) is a
    new timer, since the same id set again is the same timer."""
    return f"{ticket_id}#{metric.value}#{seq}#{stage}"


@dataclass(frozen=True)
class TimerPlan:
    """Timers to set (id, due, payload) and to cancel after an action."""

    set: list[tuple[str, datetime, dict[str, str]]]
    cancel: list[str]


def plan_timers(
    ticket: TicketRecord, before: Sequence[ClockEntry], added: Sequence[ClockEntry], now: datetime
) -> TimerPlan:
    to_set: list[tuple[str, datetime, dict[str, str]]] = []
    to_cancel: list[str] = []
    after = clocks(ticket, [*before, *added], now)
    for clock in after:
        moved = [e for e in added if e.metric == clock.metric]
        if not moved:
            continue
        previous = [e for e in before if e.metric == clock.metric]
        if previous and previous[-1].move in ("start", "resume"):
            for stage in ("warn", "breach"):
                to_cancel.append(timer_id(ticket.ticket_id, clock.metric, previous[-1].seq, stage))
        last = clock.last
        if last is None or not clock.running:
            continue
        payload = {"ticket_id": ticket.ticket_id, "metric": clock.metric.value}
        stages = [("breach", 1.0)]
        if clock.metric not in ticket.warned:
            stages.insert(0, ("warn", WARN_AT))
        for stage, fraction in stages:
            due = clock.moment(fraction)
            if due is None:
                continue  # not within MAX_DAYS of calendar time: no wake-up to set
            to_set.append(
                (
                    timer_id(ticket.ticket_id, clock.metric, last.seq, stage),
                    max(due, now),
                    {**payload, "stage": stage},
                )
            )
    return TimerPlan(to_set, to_cancel)
