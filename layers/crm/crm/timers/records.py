"""Stored shapes of the timers, the wake-up message, and the keys of `TimersTable`.

timer      PK=TIMER#<kind>#<timer_id>  SK=TIMER
           state (pending | fired), due_at, generation, shard, payload, set_at;
           fired: fired_at, expires_at (TTL: kept 30 days so a late second `set` stays one timer);
           SUBJ: the customer the timer is about, when there is one (sparse GSI `subject`,
           keys only: a customer's timers for the privacy registry, without a scan)
due item   PK=DUE#<shard>              SK=<due_at>#<kind>#<timer_id>#<generation>
           kind, timer_id, generation, due_at, payload: what the sweep needs to send the wake-up
           without reading the timer; deleted once its wake-up is queued
"""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Literal, Self

from pydantic import ConfigDict, Field, ValidationError

from crm.clock import iso
from crm.models import Record, UtcDatetime
from crm.sqs_consumer import PoisonMessage

# Pending due items are spread over this many partitions by a hash of the timer, so that a
# minute when a million timers fall due (09:00, the end of quiet hours) is not one partition
# (1,000 writes/s, 3,000 reads/s each), and the sweep fans out one worker per shard. Raising it
# later is safe (the sweep reads every shard below SHARDS); lowering it would strand timers.
SHARDS = 32
# How far ahead of now the sweep queues wake-ups, each with DelaySeconds up to its due time:
# the sweep runs every minute, and EventBridge may start it some seconds late, so 90 s leaves
# no gap between one sweep's horizon and the next. A timer due sooner than this when it is set
# is queued at once, for the same precision.
LEAD = timedelta(seconds=90)
# SQS holds a message back at most 15 minutes.
MAX_DELAY_S = 900
# A fired timer is kept this long, so that a `set` retried after it fired is still one timer.
FIRED_RETENTION = timedelta(days=30)
# Waits of seconds to months; a due time further out than this is a mistake in the caller.
MAX_WAIT = timedelta(days=2 * 366)

KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TIMER_ID = re.compile(r"^[A-Za-z0-9_.:#=-]{1,200}$")
PAYLOAD_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
PAYLOAD_VALUE = re.compile(r"^[A-Za-z0-9_.:#=-]{1,200}$")
MAX_PAYLOAD_ENTRIES = 10
MAX_PAYLOAD_BYTES = 1024

TimerState = Literal["pending", "fired"]
# The sparse index of the timers that name a customer (`SUBJ`), for erasure and export.
SUBJECT_INDEX = "subject"


class Timer(Record):
    """A timer as its family sees it."""

    model_config = ConfigDict(frozen=True)

    kind: str
    timer_id: str
    due_at: datetime
    state: TimerState
    generation: str
    payload: dict[str, str] = Field(default={})
    fired_at: datetime | None = None
    subject: str | None = Field(
        default=None, description="the customer id the timer is about (indexed), if any"
    )


class WakeUp(Record):
    """The message a kind's queue receives when its timer is due: ids only, never PII.

    `generation` names one setting of the timer: a wake-up queued before the timer was
    rescheduled or cancelled carries the old one, and its claim fails."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    timer_id: str
    generation: str
    due_at: UtcDatetime
    payload: dict[str, str] = Field(default={})

    def body(self) -> str:
        return json.dumps(
            {"kind": self.kind, "timer_id": self.timer_id, "generation": self.generation,
             "due_at": iso(self.due_at), "payload": self.payload},
            separators=(",", ":"), sort_keys=True,
        )  # fmt: skip

    @classmethod
    def parse(cls, body: str) -> Self:
        """A queued wake-up, or PoisonMessage naming what is wrong (fields, never values)."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
            raise PoisonMessage(f"not a timer wake-up: {', '.join(fields)}") from None


def shard_of(kind: str, timer_id: str) -> int:
    digest = hashlib.blake2b(f"{kind}#{timer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SHARDS


def timer_key(kind: str, timer_id: str) -> dict[str, str]:
    return {"PK": f"TIMER#{kind}#{timer_id}", "SK": "TIMER"}


def due_partition(shard: int) -> str:
    return f"DUE#{shard:02d}"


def due_sort_key(due_at: datetime, kind: str, timer_id: str, generation: str) -> str:
    # The generation makes each setting its own item: a sweep deleting what it queued can never
    # delete the due item of a later setting at the same time.
    return f"{iso(due_at)}#{kind}#{timer_id}#{generation}"


def due_upper_bound(horizon: datetime) -> str:
    """Sort keys below this are due at or before `horizon` ('~' sorts after '#')."""
    return iso(horizon) + "~"


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
