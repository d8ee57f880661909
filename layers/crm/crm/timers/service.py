"""Setting, moving, cancelling and claiming timers: the one timer mechanism every family uses
(campaign waits, ticket SLA deadlines, privacy deadlines). docs/timers.md has the design.

The contract with a family:
- `set` is idempotent: the same (kind, timer_id) set twice is one timer, the first due time
  wins, even after it fired (a fired timer is kept 30 days), so a retried step cannot push its
  own wait back or fire twice. `reschedule` moves a pending timer; `cancel` removes it.
- When a timer is due, one wake-up (ids only) reaches the kind's queue, late after an outage
  but never lost; it may arrive more than once. The consumer claims it (`claim`, or
  `claim_operation` inside the same TransactWriteItems as its own effect): only one claim of a
  setting succeeds, and a wake-up of a cancelled or moved setting claims nothing.
- A wake-up says a time has passed, not what to do: the consumer re-reads the state it acts on
  (is the ticket still open, did the customer already buy) before acting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crm.clock import Clock, IdFactory
from crm.errors import FieldProblem, InvalidInput, NotFound
from crm.queue import Queue
from crm.timers.records import (
    KIND,
    LEAD,
    MAX_DELAY_S,
    MAX_PAYLOAD_BYTES,
    MAX_PAYLOAD_ENTRIES,
    MAX_WAIT,
    PAYLOAD_KEY,
    PAYLOAD_VALUE,
    TIMER_ID,
    Timer,
    WakeUp,
    utc,
)
from crm.timers.store import TimerStore

# Attempts at moving or cancelling a timer that another container moved at the same moment.
MOVE_ATTEMPTS = 3


class UnknownTimerKind(InvalidInput):
    """No queue is configured for this kind (TIMER_QUEUE_<KIND> in template.yaml)."""


class KindQueues:
    """Where each kind's wake-ups go, from the settings."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self._queues = {kind: Queue(url) for kind, url in urls.items()}

    def __contains__(self, kind: object) -> bool:
        return kind in self._queues

    def queue(self, kind: str) -> Queue:
        if kind not in self._queues:
            known = ", ".join(sorted(self._queues)) or "none"
            raise UnknownTimerKind(
                f"no queue for timer kind {kind!r} (kinds: {known}); "
                "set TIMER_QUEUE_<KIND> in template.yaml",
                [FieldProblem("kind", "not a configured timer kind")],
            )
        return self._queues[kind]


def delay_seconds(due_at: datetime, now: datetime) -> int:
    """DelaySeconds that holds a wake-up back until its due time (rounded up: never early)."""
    return max(0, min(MAX_DELAY_S, math.ceil((due_at - now).total_seconds())))


def _check(kind: str, timer_id: str, payload: Mapping[str, str]) -> None:
    problems = []
    if not KIND.match(kind):
        problems.append(FieldProblem("kind", "lower-case letters, digits and _, up to 40"))
    if not TIMER_ID.match(timer_id):
        problems.append(FieldProblem("timer_id", "letters, digits and _.:#=-, up to 200"))
    if len(payload) > MAX_PAYLOAD_ENTRIES:
        problems.append(FieldProblem("payload", f"at most {MAX_PAYLOAD_ENTRIES} entries"))
    for key, value in payload.items():
        # Ids only: a payload travels through queues and sits in the table, where no PII may.
        if not (isinstance(key, str) and PAYLOAD_KEY.match(key)):
            problems.append(FieldProblem("payload", "keys are lower-case names"))
        elif not (isinstance(value, str) and PAYLOAD_VALUE.match(value)):
            problems.append(FieldProblem(f"payload.{key}", "an id (letters, digits, _.:#=-)"))
    if sum(len(k) + len(v) for k, v in payload.items()) > MAX_PAYLOAD_BYTES:
        problems.append(FieldProblem("payload", f"at most {MAX_PAYLOAD_BYTES} bytes"))
    if problems:
        raise InvalidInput("not a timer this mechanism can hold", problems)


class Timers:
    def __init__(self, store: TimerStore, kinds: KindQueues, clock: Clock, ids: IdFactory) -> None:
        self._store, self._kinds, self._clock, self._ids = store, kinds, clock, ids

    def _due(self, due_at: datetime, now: datetime) -> datetime:
        if due_at.tzinfo is None:
            raise InvalidInput("a due time needs its zone", [FieldProblem("due_at", "no zone")])
        if due_at - now > MAX_WAIT:
            raise InvalidInput(
                "a timer waits at most two years", [FieldProblem("due_at", "too far ahead")]
            )
        # Kept to the millisecond, as stored: the timer `set` returns is the one `get` reads.
        moment = utc(due_at)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def get(self, kind: str, timer_id: str) -> Timer | None:
        return self._store.get(kind, timer_id)

    def set(
        self,
        kind: str,
        timer_id: str,
        due_at: datetime,
        payload: Mapping[str, str] | None = None,
        subject: str | None = None,
    ) -> Timer:
        """The timer (kind, timer_id) due at `due_at`, or the one already set under that id.
        `subject`: the customer id it is about, so an erasure finds it by index (every timer
        about a customer must name them: the privacy registry finds no other)."""
        payload = dict(payload or {})
        _check(kind, timer_id, payload)
        if subject is not None and not PAYLOAD_VALUE.match(subject):
            raise InvalidInput("not a timer's subject", [FieldProblem("subject", "an id")])
        self._kinds.queue(kind)
        existing = self._store.get(kind, timer_id)
        if existing is not None:
            return existing
        now = self._clock()
        timer = Timer(
            kind=kind, timer_id=timer_id, due_at=self._due(due_at, now), state="pending",
            generation=self._ids(), payload=payload, subject=subject,
        )  # fmt: skip
        if not self._store.create(timer, now):  # set by another container meanwhile
            winner = self._store.get(kind, timer_id)
            if winner is None:  # and cancelled since: ours is the timer now
                return self.set(kind, timer_id, due_at, payload, subject)
            return winner
        self._soon(timer, now)
        return timer

    def reschedule(self, kind: str, timer_id: str, due_at: datetime) -> Timer:
        """Move a pending timer; NotFound when there is none (never set, cancelled, fired)."""
        _check(kind, timer_id, {})
        self._kinds.queue(kind)
        for _ in range(MOVE_ATTEMPTS):
            now = self._clock()
            timer = self._store.get(kind, timer_id)
            if timer is None or timer.state != "pending":
                raise NotFound(f"no pending {kind} timer {timer_id}")
            moved = timer.model_copy(
                update={"due_at": self._due(due_at, now), "generation": self._ids()}
            )
            if self._store.move(timer, moved):
                self._soon(moved, now)
                return moved
        raise NotFound(f"{kind} timer {timer_id} kept changing; not moved")

    def cancel(self, kind: str, timer_id: str) -> bool:
        """True when a pending timer was cancelled; False when there was none to cancel."""
        for _ in range(MOVE_ATTEMPTS):
            timer = self._store.get(kind, timer_id)
            if timer is None or timer.state != "pending":
                return False
            if self._store.delete(timer):
                return True
        return False

    def claim(self, wake: WakeUp) -> bool:
        """True for the one consumer that claims this setting of the timer; False for a
        duplicate wake-up, or one of a setting that was cancelled or moved."""
        return self._store.claim(wake, self._clock())

    def claim_operation(self, wake: WakeUp) -> dict[str, Any]:
        """The claim as one item of the family's own TransactWriteItems: the effect and the
        claim commit together, or neither does (TransactionCanceled: claimed already)."""
        return self._store.claim_operation(wake, self._clock())

    def _soon(self, timer: Timer, now: datetime) -> None:
        """A timer due within the sweep's lead is queued now, with a delay to its due time:
        the sweep may have passed its due time already. Its due item stays until the wake-up
        is queued, so a failure here leaves it to the next sweep (late, never lost)."""
        if timer.due_at - now > LEAD:
            return
        wake = WakeUp(
            kind=timer.kind, timer_id=timer.timer_id, generation=timer.generation,
            due_at=timer.due_at, payload=timer.payload,
        )  # fmt: skip
        self._kinds.queue(timer.kind).send([wake.body()], [delay_seconds(timer.due_at, now)])
        self._store.delete_due([self._store.due_key(timer)])
