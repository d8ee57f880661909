"""Publishing the CRM's domain events on its EventBridge bus."""

from __future__ import annotations

from collections.abc import Sequence

from aws_lambda_powertools import Logger

from crm import aws
from crm.events import SOURCE, BusEvent

MAX_ENTRIES_PER_CALL = 10  # PutEvents limit

logger = Logger(child=True)


class PublishFailed(Exception):
    pass


class Bus:
    def __init__(self, bus_name: str) -> None:
        self._bus_name = bus_name

    def publish(self, events: Sequence[BusEvent]) -> None:
        for start in range(0, len(events), MAX_ENTRIES_PER_CALL):
            chunk = events[start : start + MAX_ENTRIES_PER_CALL]
            entries = [
                {
                    "EventBusName": self._bus_name,
                    "Source": SOURCE,
                    "DetailType": event.detail_type,
                    "Detail": event.model_dump_json(),
                }
                for event in chunk
            ]
            out = aws.events().put_events(Entries=entries)  # type: ignore[arg-type]
            if out.get("FailedEntryCount"):
                codes = {e.get("ErrorCode") for e in out["Entries"] if e.get("ErrorCode")}
                raise PublishFailed(f"{out['FailedEntryCount']} bus entries failed: {codes}")
