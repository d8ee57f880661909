"""What travels through the segment shards queue: one task per shard of a run, queued by the
planner and read by a worker. Apart from the stored records, which a profile write's rule-segment
check loads (a pydantic class costs its definition to every process that imports it)."""

from typing import Self

from pydantic import Field, model_validator

from crm.models import Record


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
    def _segment_within(self) -> Self:
        if self.segment >= self.total_segments:
            raise ValueError("segment must be below total_segments")
        if self.upgrade and self.legacy:
            raise ValueError("a run upgrades the layout or keeps the legacy one, not both")
        return self
