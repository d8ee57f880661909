"""Event sources on 127.0.0.1: SQS event source mappings and EventBridge -> Lambda deliveries.

An SQS mapping polls its queue, gathers a batch (what the queue holds, up to the template's batch
size, within its window), invokes the function, deletes what succeeded and leaves what failed to
come back after the visibility timeout, so it reaches the DLQ after maxReceiveCount, as in AWS.
Schedules and bus rules reach functions through a tap queue each (moto delivers rule matches to
it, the clock puts scheduled events in it), invoked one event at a time like EventBridge's async
invoke.

An idle queue is not polled: a watcher asks moto, once for all queues and ten times a second,
which queues hold visible messages, and wakes their pollers (whoever sent them, and whenever
they became visible: a retry after a visibility timeout, a delay's end).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import boto3

from crm_local.sqs import VISIBLE_MESSAGES_PATH, sqs_event
from crm_local.triggers import QueueTrigger

log = logging.getLogger("crm_local.pump")

Invoker = Callable[[str, dict[str, Any]], Any]
ASYNC_ATTEMPTS = 3  # Lambda tries an asynchronous event three times
# How often the watcher asks moto which queues hold visible messages: how late, at most, a poller
# hears of a message (one request for every queue: a receive of each idle queue, four times a
# second, was some 30 requests a second to moto's one-at-a-time server, on both of the
# emulator's processes, a third of the requests of the demo's segment run).
WATCH_S = 0.1
# How long an idle poller waits before it looks by itself, should the watcher miss its queue.
FALLBACK_POLL_S = 10.0
# How long a queue's other pollers wait between two empty receives while its lead still finds
# messages.
IDLE_POLL_S = 0.25


class Demand:
    """Whether a queue's lead poller found messages at its last poll, shared by the queue's
    pollers: the others poll only while it finds messages, so a queue's backlog is worked by
    all of its pollers and an empty queue by none."""

    def __init__(self) -> None:
        self.busy = threading.Event()


class Poller(threading.Thread):
    def __init__(self, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.stop_event = stop
        self.sqs = boto3.client("sqs")
        # set: look again now (the watcher saw messages, a schedule fired, or stopping)
        self.wake = threading.Event()

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
        """The queue was empty: wait until the watcher sees messages in it."""
        self.wake.wait(FALLBACK_POLL_S)
        self.wake.clear()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("%s failed; retrying", self.name)
                self.stop_event.wait(1)

    def poll_once(self) -> None:
        raise NotImplementedError


class QueueWatcher(threading.Thread):
    """Wakes the pollers of the queues that hold visible messages, asking moto for every
    queue's count in one request (crm_local.sqs.VISIBLE_MESSAGES_PATH) every WATCH_S."""

    def __init__(
        self,
        endpoint: str,
        stop: threading.Event,
        visible: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        super().__init__(name="queue-watcher", daemon=True)
        self.endpoint, self.stop_event = urllib.parse.urlsplit(endpoint), stop
        self.visible = visible or self._ask
        self.pollers: dict[str, list[Poller]] = {}  # by queue name
        self._connection: http.client.HTTPConnection | None = None

    def watch(self, url: str, poller: Poller) -> None:
        self.pollers.setdefault(url.rstrip("/").rsplit("/", 1)[-1], []).append(poller)

    def run(self) -> None:
        while not self.stop_event.wait(WATCH_S):
            try:
                self.wake_pollers()
            except Exception:
                if self.stop_event.is_set():
                    return  # moto stopped first
                log.warning("the queue watcher could not ask moto; retrying", exc_info=True)
                self.stop_event.wait(1)

    def wake_pollers(self) -> None:
        for name, count in self.visible().items():
            if count:
                for poller in self.pollers.get(name, ()):
                    poller.wake.set()

    def _ask(self) -> dict[str, int]:
        """One GET over a kept-alive connection (a request every tenth of a second: a new
        connection each time would cost moto's server a thread and a handshake each)."""
        if self._connection is None:
            host, port = self.endpoint.hostname or "127.0.0.1", self.endpoint.port
            self._connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            self._connection.request("GET", VISIBLE_MESSAGES_PATH)
            answer = self._connection.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException):
            self._connection.close()
            self._connection = None
            raise
        if answer.status != 200:
            raise RuntimeError(f"moto answered {answer.status} for {VISIBLE_MESSAGES_PATH}")
        counts: dict[str, int] = json.loads(body)
        return counts


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
        if self.lead:
            super().idle()
            return
        # Not the lead: paced while the lead still finds messages, asleep while it finds none.
        self.wake.wait(IDLE_POLL_S)
        self.wake.clear()
        self.demand.busy.wait(FALLBACK_POLL_S)

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
        # A batch takes what the queue holds now, up to its size, within the batching window.
        # Lambda's window waits for more to trickle in, trading latency for fewer invocations
        # (each billed); here it made every batch of a trickle wait the whole window (one
        # second for most mappings), polling the queue twenty times meanwhile.
        deadline = time.monotonic() + self.trigger.window_s
        while len(batch) < self.trigger.batch_size and time.monotonic() < deadline:
            more = self.receive(self.url, min(10, self.trigger.batch_size - len(batch)))
            if not more:
                break
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
