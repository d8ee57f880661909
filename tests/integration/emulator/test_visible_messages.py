"""The emulator's moto answers, in one request, how many visible messages each queue holds
(crm_local.sqs.VISIBLE_MESSAGES_PATH), and the pump's watcher wakes the pollers of those with
messages: whoever sent them, and when they become visible again after a visibility timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from crm_local.moto_server import LocalMotoServer
from crm_local.pump import Poller, QueueWatcher


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    server = LocalMotoServer()
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


def test_the_counts_of_every_queue_in_one_request(moto: str) -> None:
    sqs: Any = boto3.client("sqs", endpoint_url=moto)
    busy = sqs.create_queue(QueueName="busy", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.create_queue(QueueName="idle")
    sqs.send_message_batch(QueueUrl=busy, Entries=[{"Id": str(n), "MessageBody": "x"}
                                                   for n in range(3)])  # fmt: skip
    watcher = QueueWatcher(moto, threading.Event())
    time.sleep(0.15)  # moto's counts are kept for a tenth of a second (approximate, as in AWS)
    assert watcher.visible() == {"busy": 3, "idle": 0}
    taken = sqs.receive_message(QueueUrl=busy, MaxNumberOfMessages=2)["Messages"]
    assert len(taken) == 2
    time.sleep(0.15)
    assert watcher.visible() == {"busy": 1, "idle": 0}  # in flight: not visible
    time.sleep(1.1)
    assert watcher.visible() == {"busy": 3, "idle": 0}  # back after the visibility timeout
    assert watcher.visible() == {"busy": 3, "idle": 0}  # the connection is kept and reused


def test_the_watcher_wakes_the_pollers_of_the_queues_with_messages(moto: str) -> None:
    sqs: Any = boto3.client("sqs", endpoint_url=moto)
    urls = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("a", "b", "c")}
    stop = threading.Event()
    watcher = QueueWatcher(moto, stop)
    pollers = {name: Poller(f"poller-{name}", stop) for name in urls}
    for name, url in urls.items():
        watcher.watch(url, pollers[name])
    watcher.start()
    try:
        sqs.send_message(QueueUrl=urls["b"], MessageBody="from another process, say")
        assert pollers["b"].wake.wait(5)
        assert not pollers["a"].wake.is_set()
        assert not pollers["c"].wake.is_set()
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert not watcher.is_alive()
