"""Event sources on 127.0.0.1: SQS event source mappings and EventBridge -> Lambda deliveries.

An SQS mapping long-polls its queue, gathers a batch (batch size and window from the template),
invokes the function, deletes what succeeded and leaves what failed to come back after the
visibility timeout, so it reaches the DLQ after maxReceiveCount, as in AWS. Schedules and bus
rules reach functions through a tap queue each (moto delivers rule matches to it, the clock
puts scheduled events in it), invoked one event at a time like EventBridge's async invoke.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

from crm_local.sqs import sqs_event
from crm_local.triggers import QueueTrigger

log = logging.getLogger("crm_local.pump")

Invoker = Callable[[str, dict[str, Any]], Any]
ASYNC_ATTEMPTS = 3  # Lambda tries an asynchronous event three times
IDLE_POLL_S = 0.25
# A queue found empty this many times in a row (5 s) is quiet: polled once a second until it has
# messages again. Schedules the clock fires wake their tap's poller at once (Poller.wake).
QUIET_AFTER = 20
QUIET_POLL_S = 1.0
# How long a queue's other pollers wait, while its lead finds it empty, before they look again
# themselves (the lead wakes them as soon as it finds messages).
HELPER_IDLE_S = 2.0


class Demand:
    """Whether a queue's lead poller found messages at its last poll, shared by the queue's
    pollers. Its lead polls four times a second; the others poll only while it finds messages
    (and now and then). A quiet queue then costs one short poll a quarter second instead of one
    per poller: with every mapping of the template polled four times over, idle queues took
    some 180 requests a second, each a botocore call on the functions' side and a turn of
    moto's one-at-a-time server, while the demo shop loaded into one of them."""

    def __init__(self) -> None:
        self.busy = threading.Event()


class Poller(threading.Thread):
    def __init__(self, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.stop_event = stop
        self.sqs = boto3.client("sqs")
        self.wake = threading.Event()  # set: look again now (a message was sent, or stopping)
        self.empty_polls = 0

    def receive(self, url: str, count: int) -> list[dict[str, Any]]:
        """Short polls: moto serves one request at a time, so a long poll would hold every
        other client up for its whole wait."""
        out = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [dict(m) for m in out.get("Messages", [])]

    def idle(self) -> None:
        self.empty_polls += 1
        self.wake.wait(IDLE_POLL_S if self.empty_polls < QUIET_AFTER else QUIET_POLL_S)
        self.wake.clear()

    def busy(self) -> None:
        self.empty_polls = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("%s failed; retrying", self.name)
                self.stop_event.wait(1)

    def poll_once(self) -> None:
        raise NotImplementedError


class QueuePoller(Poller):
    def __init__(
        self,
        trigger: QueueTrigger,
        url: str,
        arn: str,
        invoke: Invoker,
        stop: threading.Event,
        demand: Demand | None = None,
        lead: bool = True,
    ) -> None:
        super().__init__(f"pump-{trigger.function}-{trigger.queue}", stop)
        self.trigger, self.url, self.arn, self.invoke = trigger, url, arn, invoke
        self.demand = demand or Demand()
        self.lead = lead

    def idle(self) -> None:
        super().idle()
        if not self.lead:
            self.demand.busy.wait(HELPER_IDLE_S)

    def poll_once(self) -> None:
        batch = self.receive(self.url, min(10, self.trigger.batch_size))
        if self.lead:
            if batch:
                self.demand.busy.set()
            else:
                self.demand.busy.clear()
        if not batch:
            self.idle()
            return
        self.busy()
        deadline = time.monotonic() + self.trigger.window_s
        while len(batch) < self.trigger.batch_size and time.monotonic() < deadline:
            more = self.receive(self.url, min(10, self.trigger.batch_size - len(batch)))
            if not more:
                time.sleep(0.05)
            batch.extend(more)
        self.deliver(batch)

    def deliver(self, batch: list[dict[str, Any]]) -> None:
        try:
            response = self.invoke(self.trigger.function, sqs_event(batch, self.arn))
        except Exception:
            log.warning(
                "%s failed a batch of %d; SQS will redeliver it", self.name, len(batch),
                exc_info=True,
            )  # fmt: skip
            return  # nothing deleted: every message comes back after its visibility timeout
        failed: set[str] = set()
        if self.trigger.partial_failures and isinstance(response, dict):
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures") or []}
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ]
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)  # type: ignore[arg-type]


class TapPoller(Poller):
    """Delivers EventBridge events (rule matches, scheduled events) to one function."""

    def __init__(self, function: str, url: str, invoke: Invoker, stop: threading.Event) -> None:
        super().__init__(f"events-{function}", stop)
        self.function, self.url, self.invoke = function, url, invoke

    def poll_once(self) -> None:
        messages = self.receive(self.url, 10)
        if not messages:
            self.idle()
        else:
            self.busy()
        for message in messages:
            event = json.loads(message["Body"])
            attempts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            try:
                self.invoke(self.function, event)
            except Exception:
                log.exception("%s failed (attempt %d)", self.name, attempts)
                if attempts < ASYNC_ATTEMPTS:
                    continue  # comes back after the tap queue's visibility timeout
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
