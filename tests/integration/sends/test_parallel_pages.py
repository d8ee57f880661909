"""A page dispatches its recipients concurrently, no more at once than the channel's
`max_concurrency`, and two workers on one page still send each recipient at most once, with one
cap slot taken per message sent and the page's counts recorded once (the real dispatcher and its
recording provider on moto, one moto request at a time as DynamoDB is atomic per request)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from crm.campaigns.models import DispatchOutcome, DispatchRequest
from crm.campaigns.policy import ContactPolicy
from crm.campaigns.providers import Providers, RecordingProvider
from crm.campaigns.send_models import SendTask
from crm.campaigns.sends import CHUNK
from crm.composition import root
from crm.errors import Unavailable
from tests.integration.sends.conftest import Kit

NO_DEADLINE: Callable[[], int] = lambda: 900_000  # noqa: E731 - a worker with time to spare


class InFlight:
    """The real dispatcher, counting how many of its dispatches run at once."""

    def __init__(self, real: Any, hold_s: float = 0.005) -> None:
        self._real, self._hold = real, hold_s
        self._lock = threading.Lock()
        self.now = self.most = self.calls = 0

    def dispatch(self, request: DispatchRequest) -> DispatchOutcome:
        with self._lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self._hold)  # a provider's round trip: lets the others start meanwhile
            outcome: DispatchOutcome = self._real.dispatch(request)
            return outcome
        finally:
            with self._lock:
                self.now -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def consenting(kit: Kit, n: int, prefix: str) -> list[str]:
    """n customers with SMS consent, outside the global control group (every one is sent)."""
    customers: list[str] = []
    k = 0
    while len(customers) < n:
        k += 1
        body = {"identities": [{"channel": "app", "external_id": f"{prefix}-{k}"}],
                "attributes": {"name": "张三", "phone": f"+86139{k:08d}"}}  # fmt: skip
        cid = kit.suite.call("POST", "/customers", body).body["customer_id"]
        if ContactPolicy().in_global_control(cid):
            continue
        change = {"purpose": "marketing_sms", "granted": True, "source": "app"}
        assert kit.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
        customers.append(cid)
    return customers


def set_concurrency(kit: Kit, max_concurrency: int) -> None:
    stored = kit.suite.call("GET", "/campaigns/policy", role="marketer").body["policy"]
    stored["channels"]["sms"]["max_concurrency"] = max_concurrency
    assert kit.suite.call("PUT", "/campaigns/policy", stored, role="marketer").status == 200


def listed_send(kit: Kit, members: list[str]) -> str:
    kit.members("rfm:champions", members)
    send_id = str(kit.create_send(holdout_percent=0)["send_id"])
    assert kit.act(send_id, "start").status == 200
    kit.deliver(kit.tasks())  # the listing: one page
    pages = kit.tasks()
    assert len(pages) == 1
    return send_id


def sent_to(customers: list[str], send_id: str) -> dict[str, int]:
    store = root().dispatch_store
    return {c: sum(1 for e in store.outbox(c) if e["campaign_id"] == send_id) for c in customers}


def test_a_page_dispatches_concurrently_up_to_the_channel_s_max_concurrency(
    live: Kit, atomic_moto: None
) -> None:
    kit = live
    set_concurrency(kit, 4)
    members = consenting(kit, 2 * CHUNK, "par")
    send_id = listed_send(kit, members)
    tracked = InFlight(root().campaign_dispatch)
    root().__dict__["campaign_dispatch"] = tracked
    out = root().sends.send_page(SendTask(send_id=send_id, kind="page", page=0), NO_DEADLINE)
    assert out == f"page 0 sent ({2 * CHUNK} members)"
    assert 1 < tracked.most <= 4
    assert tracked.calls == 2 * CHUNK
    assert set(sent_to(members, send_id).values()) == {1}
    assert kit.send(send_id)["status"] == "complete"


def test_two_workers_on_one_page_send_each_recipient_once_and_count_it_once(
    live: Kit, atomic_moto: None
) -> None:
    kit = live
    set_concurrency(kit, 8)
    members = consenting(kit, 3 * CHUNK, "two")
    send_id = listed_send(kit, members)
    task = SendTask(send_id=send_id, kind="page", page=0)
    answers: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        try:
            answers.append(root().sends.send_page(task, NO_DEADLINE))
        except Unavailable as exc:  # the other held a message past the wait: SQS retries
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Whatever each worker answered, a redelivery finishes the page.
    while root().send_store.page(send_id, 0)["state"] != "done":  # type: ignore[index]
        answers.append(root().sends.send_page(task, NO_DEADLINE))
    assert len(answers) + len(errors) >= 2
    assert set(sent_to(members, send_id).values()) == {1}  # at most once, and sent
    store = root().dispatch_store
    for customer_id in members:  # one slot for the one message, never two
        caps = store.caps(customer_id)
        assert sum(sum(day.values()) for day in caps.days.values()) == 1, customer_id
        assert sum(caps.weeks.values()) == 1
    counts = root().campaign_dispatch.campaign_counts(send_id)
    assert sum(c.sent for c in counts.values()) == len(members)
    report = kit.suite.call("GET", f"/campaigns/{send_id}/report", role="analyst").body
    assert report["variants"][0]["recipients"] == len(members)  # the page counted once
    assert report["variants"][0]["sent"] == len(members)
    assert kit.send(send_id)["status"] == "complete"


@pytest.mark.parametrize("failing", ["busy", "crash"])
def test_a_failure_in_one_thread_lets_the_others_finish_and_the_page_retries(
    live: Kit, atomic_moto: None, failing: str
) -> None:
    kit = live
    set_concurrency(kit, 5)
    members = consenting(kit, CHUNK, f"f{failing}")
    send_id = listed_send(kit, members)
    real = root().campaign_dispatch
    victim = members[3]

    class Once:
        failed = False

        def dispatch(self, request: DispatchRequest) -> DispatchOutcome:
            if request.customer_id == victim and not self.failed:
                self.failed = True
                raise Unavailable("busy") if failing == "busy" else RuntimeError("crashed")
            outcome: DispatchOutcome = real.dispatch(request)
            return outcome

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    root().__dict__["campaign_dispatch"] = Once()
    task = SendTask(send_id=send_id, kind="page", page=0)
    with pytest.raises(Unavailable if failing == "busy" else RuntimeError):
        root().sends.send_page(task, NO_DEADLINE)
    # Everyone else went out in that attempt; the cursor did not move.
    assert sum(sent_to(members, send_id).values()) == CHUNK - 1
    assert root().send_store.page(send_id, 0)["done"] == 0  # type: ignore[index]
    assert root().sends.send_page(task, NO_DEADLINE) == f"page 0 sent ({CHUNK} members)"
    assert set(sent_to(members, send_id).values()) == {1}
    report = kit.suite.call("GET", f"/campaigns/{send_id}/report", role="analyst").body
    assert report["variants"][0]["recipients"] == CHUNK
    assert report["variants"][0]["sent"] == CHUNK


def test_the_threads_share_the_channel_s_rate(live: Kit, atomic_moto: None) -> None:
    """The worker's one token bucket paces every thread: the k-th message past the one-second
    burst waits (k - rate) / rate seconds, whatever thread sends it (no two threads take the
    same slot)."""
    kit = live
    stored = kit.suite.call("GET", "/campaigns/policy", role="marketer").body["policy"]
    stored["channels"]["sms"].update(rate_per_s=10, max_concurrency=8)
    assert kit.suite.call("PUT", "/campaigns/policy", stored, role="marketer").status == 200
    members = consenting(kit, 2 * CHUNK, "rate")
    send_id = listed_send(kit, members)
    waits: list[float] = []
    dispatcher = root().campaign_dispatch
    # The bucket's clock stands still and its pauses are recorded, not slept: each message
    # past the burst is then told exactly how long after the first it may go.
    dispatcher._buckets._monotonic = lambda: 0.0
    dispatcher._buckets._sleep = waits.append

    class Paced(RecordingProvider):
        rate_limited = True  # as a live provider is: the recording one is never paced

    dispatcher._providers = Providers({}, Paced(root().dispatch_store, kit.clock))
    root().sends.send_page(SendTask(send_id=send_id, kind="page", page=0), NO_DEADLINE)
    assert set(sent_to(members, send_id).values()) == {1}
    # 50 messages at 10 a second: the first 10 are the burst, the 40 others wait their turn.
    assert sorted(waits) == pytest.approx([k / 10 for k in range(1, 2 * CHUNK - 10 + 1)])
