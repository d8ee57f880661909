"""A queue's pollers: its lead polls an idle queue; the others join in once it finds messages."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from crm_local import pump
from crm_local.pump import Demand, QueuePoller
from crm_local.triggers import QueueTrigger

TRIGGER = QueueTrigger("Fold", "Events", batch_size=10, window_s=0.0, partial_failures=True)


class FakeQueue:
    """receive_message / delete_message_batch of one queue, counting receives per poller."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.receives: dict[str, int] = {}
        self.deleted = 0

    def put(self, count: int) -> None:
        with self.lock:
            start = len(self.messages) + self.deleted
            self.messages += [{"MessageId": f"m{start + n}", "ReceiptHandle": f"r{start + n}",
                               "Body": "{}"} for n in range(count)]  # fmt: skip

    def client(self, name: str) -> Any:
        queue = self

        class Client:
            def receive_message(self, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
                with queue.lock:
                    queue.receives[name] = queue.receives.get(name, 0) + 1
                    taken = queue.messages[:MaxNumberOfMessages]
                    del queue.messages[:MaxNumberOfMessages]
                return {"Messages": taken}

            def delete_message_batch(self, Entries: list[Any], **_: Any) -> None:
                with queue.lock:
                    queue.deleted += len(Entries)

        return Client()


def pollers(queue: FakeQueue, stop: threading.Event, invoked: list[int]) -> list[QueuePoller]:
    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        invoked.append(len(event["Records"]))
        time.sleep(0.05)  # a function's work: the other pollers take the next batches
        return {"batchItemFailures": []}

    demand = Demand()
    made = []
    for n in range(4):
        poller = QueuePoller(TRIGGER, "url", "arn", invoke, stop, demand, lead=n == 0)
        poller.name = f"p{n}"
        poller.sqs = queue.client(poller.name)
        made.append(poller)
    return made


def test_an_idle_queue_is_polled_by_its_lead_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pump, "IDLE_POLL_S", 0.02)
    queue, stop, invoked = FakeQueue(), threading.Event(), list[int]()
    threads = pollers(queue, stop, invoked)
    for thread in threads:
        thread.start()
    time.sleep(0.6)
    stop.set()
    threads[0].demand.busy.set()
    for thread in threads:
        thread.join(timeout=5)
    assert queue.receives["p0"] >= 10  # the lead keeps looking
    assert all(queue.receives.get(f"p{n}", 0) <= 2 for n in (1, 2, 3))  # the others wait
    assert not invoked


def test_the_other_pollers_join_when_the_lead_finds_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pump, "IDLE_POLL_S", 0.02)
    queue, stop, invoked = FakeQueue(), threading.Event(), list[int]()
    threads = pollers(queue, stop, invoked)
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # idle first: the helpers wait
    queue.put(200)
    deadline = time.monotonic() + 5
    while queue.deleted < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    threads[0].demand.busy.set()
    for thread in threads:
        thread.join(timeout=5)
    assert queue.deleted == 200  # every message delivered once
    assert sum(invoked) == 200
    helpers = [queue.receives.get(f"p{n}", 0) for n in (1, 2, 3)]
    assert sum(1 for r in helpers if r >= 2) >= 2  # woken, not left asleep for HELPER_IDLE_S


def test_a_quiet_queue_is_polled_less_until_woken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pump, "IDLE_POLL_S", 0.01)
    monkeypatch.setattr(pump, "QUIET_AFTER", 5)
    monkeypatch.setattr(pump, "QUIET_POLL_S", 30.0)
    queue, stop, invoked = FakeQueue(), threading.Event(), list[int]()
    lead = pollers(queue, stop, invoked)[0]
    lead.start()
    time.sleep(0.5)
    assert queue.receives["p0"] == 5  # quiet after five empty polls: the next in 30 s
    queue.put(3)
    lead.wake.set()  # as the clock does when it puts a scheduled event in a tap
    deadline = time.monotonic() + 5
    while queue.deleted < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert invoked == [3]
    time.sleep(0.2)
    assert queue.receives["p0"] >= 6 + 5  # busy again: polled at the short interval
    stop.set()
    lead.wake.set()
    lead.join(timeout=5)
    assert not lead.is_alive()
