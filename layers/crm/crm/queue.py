"""Sending messages to SQS within its real limits (moto does not enforce them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm import aws
from crm.calls import grouped_calls

MAX_MESSAGES_PER_CALL = 10
MAX_MESSAGE_BYTES = 256 * 1024
MAX_DELAY_S = 900


def _calls(sizes: Sequence[int]) -> list[list[int]]:
    """Message positions grouped into SendMessageBatch calls: 10 messages and 256 KiB (the sum
    of the bodies) at most per call."""
    return grouped_calls(sizes, MAX_MESSAGES_PER_CALL, MAX_MESSAGE_BYTES)


class SendFailed(Exception):
    pass


class Queue:
    def __init__(self, url: str) -> None:
        self._url = url

    def send(self, bodies: Sequence[str], delays: Sequence[int] | None = None) -> None:
        """Queue every body, 10 to a call and at most 256 KiB to a call; `delays` (seconds,
        0-900, one per body) holds messages back, as DelaySeconds does."""
        if delays is not None and len(delays) != len(bodies):
            raise ValueError("one delay per message")
        sizes = [len(body.encode()) for body in bodies]
        if any(size > MAX_MESSAGE_BYTES for size in sizes):
            raise ValueError("an SQS message holds at most 256 KiB")
        if delays is not None and any(not 0 <= d <= MAX_DELAY_S for d in delays):
            raise ValueError("SQS delays a message 0 to 900 seconds")
        for chunk in _calls(sizes):
            entries: list[Any] = []
            for i, n in enumerate(chunk):
                entry: dict[str, Any] = {"Id": str(i), "MessageBody": bodies[n]}
                if delays is not None:
                    entry["DelaySeconds"] = delays[n]
                entries.append(entry)
            out = aws.sqs().send_message_batch(QueueUrl=self._url, Entries=entries)
            failed = out.get("Failed", [])
            if failed:
                # Retry once the entries SQS refused (throttling); then give up loudly.
                retry = [entries[int(f["Id"])] for f in failed]
                again = aws.sqs().send_message_batch(QueueUrl=self._url, Entries=retry)
                if again.get("Failed"):
                    raise SendFailed(f"{len(again['Failed'])} messages could not be queued")
