"""Journeys on moto: the suite built from template.yaml, a clock the test moves, and a
recording dispatcher standing in for dispatch (part D) until it is merged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm.campaigns import DispatchOutcome, DispatchRequest
from crm.campaigns.policy import ContactPolicy
from crm.composition import Crm, Settings, reset
from crm_local.harness import Suite
from crm_local.template import ROOT
from tests.integration.campaigns.conftest import TEMPLATE

START = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)
SWEEP = json.loads((ROOT / "events" / "schedule_timers_sweep.json").read_text())


@dataclass
class TestClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordingDispatcher:
    """Dispatch's contract: one outcome per dispatch key, the first one answered again."""

    answer: str = "sent"
    sent: dict[str, DispatchRequest] = field(default_factory=dict)
    calls: int = 0

    def dispatch(self, request: DispatchRequest) -> DispatchOutcome:
        self.calls += 1
        if self.answer == "sent":
            self.sent.setdefault(request.dispatch_key, request)
        return DispatchOutcome(dispatch_key=request.dispatch_key, status=self.answer)

    def steps(self) -> list[tuple[str, str]]:
        return sorted((r.customer_id, r.step) for r in self.sent.values())


@dataclass
class Shop:
    suite: Suite
    clock: TestClock
    dispatcher: RecordingDispatcher
    serial: int = 0

    def customer(self, key: str, **attributes: Any) -> str:
        body: dict[str, Any] = {"identities": [{"channel": "app", "external_id": key}]}
        if attributes:
            body["attributes"] = attributes
        out = self.suite.call("POST", "/customers", body)
        assert out.status in (200, 201), out.body
        return str(out.body["customer_id"])

    def event(self, customer_id: str, kind: str, **extra: Any) -> None:
        self.serial += 1
        at = self.clock.now.isoformat().replace("+00:00", "Z")
        event: dict[str, Any] = {"event_id": f"e-{self.serial}", "type": kind,
                                 "customer_id": customer_id, "occurred_at": at}  # fmt: skip
        if kind.startswith("order_"):
            event.update(order_id=f"o-{self.serial}", amount="100.00")
        if kind == "cart_added":
            event.update(sku="tea-1")
        event.update(extra)
        out = self.suite.call("POST", "/events", {"events": [event]})
        assert out.status == 202, out.body
        self.suite.drain()  # folded; CustomerProfileUpdated goes on the bus
        self.triggers()

    def triggers(self) -> int:
        return self.suite.drain("JourneyTriggersFunction", "JourneyTriggersQueue")

    def journey(self, definition: dict[str, Any], activate: bool = True) -> str:
        out = self.suite.call("POST", "/campaigns/journeys", definition, role="marketer")
        assert out.status == 201, out.body
        journey_id = str(out.body["journey_id"])
        if activate:
            done = self.suite.call("POST", f"/campaigns/journeys/{journey_id}/activate",
                                   role="marketer")  # fmt: skip
            assert done.status == 200, done.body
        return journey_id

    def example(self, name_starts: str) -> dict[str, Any]:
        out = self.suite.call("GET", "/campaigns/journeys/examples", role="marketer")
        found = [e for e in out.body["examples"] if e["name"].startswith(name_starts)]
        assert len(found) == 1
        return dict(found[0])

    def advance(self, **delta: float) -> None:
        """Time passes; the timer sweep runs and the journey wake-ups are consumed."""
        self.clock.now += timedelta(**delta)
        self.suite.invoke("TimerSweepFunction", SWEEP)
        self.suite.drain("TimerShardFunction", "TimerSweepQueue", rounds=50)
        self.suite.drain("JourneyStepsFunction", "JourneyStepsQueue", rounds=20)

    def instances(self, journey_id: str, customer_id: str) -> list[dict[str, Any]]:
        out = self.suite.call(
            "GET", f"/campaigns/journeys/{journey_id}/customers/{customer_id}", role="marketer"
        )
        assert out.status == 200, out.body
        return list(out.body["instances"])

    def report(self, journey_id: str) -> dict[str, Any]:
        out = self.suite.call("GET", f"/campaigns/journeys/{journey_id}/report", role="analyst")
        assert out.status == 200, out.body
        return dict(out.body)


# Every template the tests' journeys name (a journey naming a missing template is refused).
TEMPLATE_IDS = (
    "cart_reminder", "cross_sell_copurchase", "dormant_coupon", "dormant_coupon_reminder",
    "birthday_double_points", "winback_miss_you", "t", "variant_a", "t_buyer", "t_browser",
    "points_thanks", "vip_welcome", "aftersales_refunded", "apology_coupon",
)  # fmt: skip


def store_templates(suite: Suite) -> None:
    for template_id in TEMPLATE_IDS:
        out = suite.call("PUT", f"/campaigns/templates/{template_id}", TEMPLATE, role="marketer")
        assert out.status == 200, out.body


@pytest.fixture
def shop(suite: Suite) -> Iterator[Shop]:
    """Journeys with a recording dispatcher in dispatch's place: what the engine asked to send,
    whatever consent, caps or quiet hours would say."""
    clock = TestClock()
    dispatcher = RecordingDispatcher()
    crm = Crm(Settings.from_env(), clock=clock)
    crm.__dict__["journey_dispatcher"] = dispatcher
    reset(crm)
    store_templates(suite)
    yield Shop(suite, clock, dispatcher)
    reset()


@dataclass
class RealShop(Shop):
    """The journeys with dispatch (part D) as the composition root builds it: the contact
    policy, the claim and the recording provider, whose outbox shows what was sent."""

    def consenting(self, key: str) -> str:
        policy = ContactPolicy()
        n = 0
        while True:  # a customer outside the global control group
            n += 1
            cid = self.customer(f"{key}-{n}", name="张三", phone=f"+86139{n:08d}")
            if not policy.in_global_control(cid):
                break
        change = {"purpose": "marketing_sms", "granted": True, "source": "app"}
        assert self.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
        return cid

    def outbox(self, customer_id: str) -> list[dict[str, Any]]:
        out = self.suite.call("GET", "/campaigns/outbox", role="marketer",
                              query={"customer_id": customer_id})  # fmt: skip
        assert out.status == 200, out.body
        return list(out.body["entries"])


@pytest.fixture
def real_shop(suite: Suite) -> Iterator[RealShop]:
    clock = TestClock()
    reset(Crm(Settings.from_env(), clock=clock, sleep=lambda _: None))
    shop = RealShop(suite, clock, RecordingDispatcher())
    store_templates(suite)
    yield shop
    reset()
