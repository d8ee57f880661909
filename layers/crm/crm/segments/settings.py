"""The segments family's resources, from the environment template.yaml sets."""

from __future__ import annotations

from typing import NamedTuple

from crm.config import env


class SegmentsSettings(NamedTuple):
    segments_table: str
    segment_shards_queue_url: str

    @classmethod
    def from_env(cls) -> SegmentsSettings:
        return cls(
            segments_table=env("SEGMENTS_TABLE"),
            segment_shards_queue_url=env("SEGMENT_SHARDS_QUEUE_URL"),
        )
