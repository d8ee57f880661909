"""A queue's pollers: an idle queue is not polled until the watcher sees messages in it; its lead
then polls, and the others join in once it finds messages; a batch takes what the queue holds."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from crm_local import pump
from crm_local.pump import Demand, QueuePoller, QueueWatcher
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


def pollers(
    queue: FakeQueue,
    stop: threading.Event,
    invoked: list[int],
    trigger: QueueTrigger = TRIGGER,
    count: int = 4,
) -> list[QueuePoller]:
    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        invoked.append(len(event["Records"]))
        time.sleep(0.05)  # a function's work: the other pollers take the next batches
        return {"batchItemFailures": []}

    demand = Demand()
    made = []
    for n in range(count):
        poller = QueuePoller(trigger, "url", "arn", invoke, stop, demand, lead=n == 0)
        poller.name = f"p{n}"
        poller.sqs = queue.client(poller.name)
        made.append(poller)
    return made


def stopped(threads: list[QueuePoller], stop: threading.Event) -> None:
    stop.set()
    threads[0].demand.busy.set()
    for thread in threads:
        thread.wake.set()
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in threads)


def delivered(queue: FakeQueue, count: int) -> bool:
    deadline = time.monotonic() + 5
    while queue.deleted < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return queue.deleted == count


def test_an_idle_queue_is_not_polled_until_woken() -> None:
    queue, stop, invoked = FakeQueue(), threading.Event(), list[int]()
    threads = pollers(queue, stop, invoked)
    for thread in threads:
        thread.start()
    time.sleep(0.6)
    assert queue.receives == {"p0": 1, "p1": 1, "p2": 1, "p3": 1}  # one look each, at start
    queue.put(3)
    time.sleep(0.3)
    assert queue.deleted == 0  # nobody looks by itself (until FALLBACK_POLL_S)
    threads[0].wake.set()  # as the watcher does when moto counts messages in the queue
    assert delivered(queue, 3)
    assert invoked == [3]
    stopped(threads, stop)


def test_the_other_pollers_join_when_the_lead_finds_messages() -> None:
    queue, stop, invoked = FakeQueue(), threading.Event(), list[int]()
    threads = pollers(queue, stop, invoked)
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # idle first: the helpers wait
    queue.put(200)
    threads[0].wake.set()  # the watcher saw them
    assert delivered(queue, 200)  # every message delivered once
    stopped(threads, stop)
    assert sum(invoked) == 200
    helpers = [queue.receives.get(f"p{n}", 0) for n in (1, 2, 3)]
    assert sum(1 for r in helpers if r >= 2) >= 2  # woken, not left asleep for HELPER_IDLE_S


def test_the_watcher_wakes_the_pollers_of_queues_with_visible_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pump, "WATCH_S", 0.02)
    queue, stop, invoked = FakeQueue(), threading.Event(), list[int]()
    threads = pollers(queue, stop, invoked)
    asked = list[int]()

    def visible() -> dict[str, int]:  # what moto answers: every queue's visible messages
        asked.append(1)
        with queue.lock:
            return {"events": len(queue.messages), "other": 5}

    watcher = QueueWatcher("http://127.0.0.1:1", stop, visible)
    watcher.watch("http://127.0.0.1:1/123456789012/events", threads[0])
    for thread in [watcher, *threads]:
        thread.start()
    time.sleep(0.3)
    assert queue.receives["p0"] == 1  # "other" has messages: not this queue's pollers' business
    queue.put(25)
    assert delivered(queue, 25)
    assert sum(invoked) == 25
    assert len(asked) >= 5  # asked again and again, one request for every queue
    stopped(threads, stop)
    watcher.join(timeout=5)
    assert not watcher.is_alive()


def test_a_batch_takes_what_the_queue_holds_without_waiting_out_the_window() -> None:
    """Lambda's batching window waits for a trickle to fill the batch; here a batch is what the
    queue holds when it is found (the window would have made it wait a second, polling)."""
    windowed = QueueTrigger("Fold", "Events", batch_size=10, window_s=30.0, partial_failures=True)
    queue, stop, invoked = FakeQueue(), threading.Event(), list[int]()
    threads = pollers(queue, stop, invoked, windowed, count=1)
    threads[0].start()
    time.sleep(0.1)
    queue.put(3)
    started = time.monotonic()
    threads[0].wake.set()
    assert delivered(queue, 3)
    assert time.monotonic() - started < 2
    assert invoked == [3]
    # at start, the batch, one that found the queue empty (and one after delivering, perhaps)
    assert queue.receives["p0"] <= 4
    queue.put(25)  # a backlog still fills batches of the template's size
    threads[0].wake.set()
    assert delivered(queue, 28)
    assert invoked == [3, 10, 10, 5]
    stopped(threads, stop)
