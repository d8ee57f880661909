"""Publishing the CRM's domain events on its EventBridge bus."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from crm import aws
from crm.calls import grouped_calls

if TYPE_CHECKING:
    from crm.events import BusEvent

MAX_ENTRIES_PER_CALL = 10  # PutEvents limits: entries and bytes per call
MAX_BYTES_PER_CALL = 256 * 1024

logger = Logger(child=True)


class PublishFailed(Exception):
    pass


class Bus:
    def __init__(self, bus_name: str) -> None:
        self._bus_name = bus_name

    def publish(self, events: Sequence[BusEvent]) -> None:
        # The events' module is loaded by what builds them, not by a bus built for a write
        # that may announce nothing (a customer's creation with no rule segment it enters).
        from crm.events import SOURCE

        for chunk in _calls(
            [
                {
                    "EventBusName": self._bus_name,
                    "Source": SOURCE,
                    "DetailType": event.detail_type,
                    "Detail": event.model_dump_json(),
                }
                for event in events
            ]
        ):
            out = aws.events().put_events(Entries=chunk)  # type: ignore[arg-type]
            if out.get("FailedEntryCount"):
                codes = {e.get("ErrorCode") for e in out["Entries"] if e.get("ErrorCode")}
                raise PublishFailed(f"{out['FailedEntryCount']} bus entries failed: {codes}")


def entry_bytes(entry: dict[str, str]) -> int:
    """An entry's size as PutEvents counts it: its Source, DetailType and Detail in UTF-8 (no
    Resources, no Time)."""
    return sum(len(entry[k].encode()) for k in ("Source", "DetailType", "Detail"))


def _calls(entries: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """The entries in PutEvents calls, in order: at most 10 entries and 256 KiB a call."""
    sizes = [entry_bytes(entry) for entry in entries]
    return [
        [entries[n] for n in call]
        for call in grouped_calls(sizes, MAX_ENTRIES_PER_CALL, MAX_BYTES_PER_CALL)
    ]
