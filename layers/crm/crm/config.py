"""Where each function finds its resources: environment variables set by template.yaml."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    customers_table: str
    profile_events_queue_url: str
    lake_bucket: str
    event_bus_name: str
    pii_key_id: str
    blind_index_secret_arn: str
    segments_table: str
    segment_shards_queue_url: str


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set (see template.yaml Globals)")
    return value


@cache
def settings() -> Settings:
    return Settings(
        customers_table=_env("CUSTOMERS_TABLE"),
        profile_events_queue_url=_env("PROFILE_EVENTS_QUEUE_URL"),
        lake_bucket=_env("LAKE_BUCKET"),
        event_bus_name=_env("EVENT_BUS_NAME"),
        pii_key_id=_env("PII_KEY_ID"),
        blind_index_secret_arn=_env("BLIND_INDEX_SECRET_ARN"),
        segments_table=_env("SEGMENTS_TABLE"),
        segment_shards_queue_url=_env("SEGMENT_SHARDS_QUEUE_URL"),
    )
