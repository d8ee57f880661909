"""Stored shapes of the segments family: runs, shard checkpoints, membership changes and stored
definitions this version cannot read (the fitted model a run uses: `crm.segments.fitted`; the
shard tasks a run queues: `crm.segments.transit`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, NamedTuple


class MembershipChange(NamedTuple):
    segment: str
    customer_id: str
    entered: bool


RunStatus = Literal["planned", "running", "complete", "failed"]
ACTIVE: tuple[RunStatus, ...] = ("planned", "running")
_NO_SIZES: Mapping[str, int] = MappingProxyType({})


class UnreadableDefinition(NamedTuple):
    """A stored rule segment this version cannot read (written by an older version, or by
    hand): its members stay as they are until it is redefined or deleted."""

    name: str
    paused: bool
    problems: tuple[str, ...]  # where and what is wrong, never the values


class RunRecord(NamedTuple):
    """One segment run as stored. `planned`: the planner is sampling and fitting (no shards
    yet); `running`: its shards are queued; `complete` and `failed` are final."""

    run_id: str
    status: RunStatus
    started_at: datetime
    total_segments: int = 0  # shards, once planned
    shards_done: int = 0
    scored: int = 0
    written: int = 0
    retried: int = 0  # failed shard attempts that SQS delivers again
    progress_at: datetime | None = None  # shards queued, or the latest shard done
    # When its shards were queued: every rule stored before is one its workers evaluate.
    queued_at: datetime | None = None
    deadline_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    notice: str | None = None  # the planner's word to operators (a run kept in legacy layout)
    sizes: Mapping[str, int] = _NO_SIZES

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class CompleteRun(NamedTuple):
    """What a complete run leaves for the segment list: when, and how large each segment."""

    run_id: str
    finished_at: datetime
    sizes: dict[str, int]


class ShardCheckpoint(NamedTuple):
    """How far an unfinished shard got, stored on its shard item every few pages: a retried
    shard resumes from `resume` (the scan's start key) with the counters it had."""

    resume: dict[str, Any]
    counts: dict[str, int]
    scored: int
    written: int
    skipped: int
    parts: int  # lake snapshot objects written so far
