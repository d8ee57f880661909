"""Stored shapes of the segments family: shard tasks, runs, membership changes and stored
definitions this version cannot read (the fitted model a run uses: `crm.segments.fitted`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import Field, model_validator

from crm.models import Record


class MembershipChange(NamedTuple):
    segment: str
    customer_id: str
    entered: bool


RunStatus = Literal["planned", "running", "complete", "failed"]
ACTIVE: tuple[RunStatus, ...] = ("planned", "running")


class UnreadableDefinition(NamedTuple):
    """A stored rule segment this version cannot read (written by an older version, or by
    hand): its members stay as they are until it is redefined or deleted."""

    name: str
    paused: bool
    problems: tuple[str, ...]  # where and what is wrong, never the values


@dataclass(frozen=True)
class RunRecord:
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
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class CompleteRun(NamedTuple):
    """What a complete run leaves for the segment list: when, and how large each segment."""

    run_id: str
    finished_at: datetime
    sizes: dict[str, int]


class ShardTask(Record):
    run_id: str
    segment: int = Field(ge=0)
    total_segments: int = Field(ge=1, le=1_000_000)
    # The run moves the computed segments' membership onto the scores items: no run of this
    # version has completed yet (SegmentStore.computed_members_indexed) and both member
    # indexes are ACTIVE.
    upgrade: bool = False
    # The run keeps the computed segments' membership as SEG# items, as versions before the
    # member indexes did: no run of this version has completed and a member index is missing
    # or still being built (an upgrade deploy under way), so listings stay on those items.
    legacy: bool = False

    @model_validator(mode="after")
    def _segment_within(self) -> ShardTask:
        if self.segment >= self.total_segments:
            raise ValueError("segment must be below total_segments")
        if self.upgrade and self.legacy:
            raise ValueError("a run upgrades the layout or keeps the legacy one, not both")
        return self


class ShardCheckpoint(NamedTuple):
    """How far an unfinished shard got, stored on its shard item every few pages: a retried
    shard resumes from `resume` (the scan's start key) with the counters it had."""

    resume: dict[str, Any]
    counts: dict[str, int]
    scored: int
    written: int
    skipped: int
    parts: int  # lake snapshot objects written so far
