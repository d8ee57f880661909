"""Sending messages to SQS within its real limits (moto does not enforce them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm import aws

MAX_MESSAGES_PER_CALL = 10
MAX_MESSAGE_BYTES = 256 * 1024


class SendFailed(Exception):
    pass


class Queue:
    def __init__(self, url: str) -> None:
        self._url = url

    def send(self, bodies: Sequence[str]) -> None:
        for body in bodies:
            if len(body.encode()) > MAX_MESSAGE_BYTES:
                raise ValueError("an SQS message holds at most 256 KiB")
        for start in range(0, len(bodies), MAX_MESSAGES_PER_CALL):
            chunk = bodies[start : start + MAX_MESSAGES_PER_CALL]
            entries: list[Any] = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
            out = aws.sqs().send_message_batch(QueueUrl=self._url, Entries=entries)
            failed = out.get("Failed", [])
            if failed:
                # Retry once the entries SQS refused (throttling); then give up loudly.
                retry = [entries[int(f["Id"])] for f in failed]
                again = aws.sqs().send_message_batch(QueueUrl=self._url, Entries=retry)
                if again.get("Failed"):
                    raise SendFailed(f"{len(again['Failed'])} messages could not be queued")
