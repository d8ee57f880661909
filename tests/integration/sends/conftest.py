"""Segment sends, coupons and reports on moto, with a clock the test moves and a dispatcher
that behaves as part D's contract says (first outcome per dispatch key, the global control
group suppressed, coupons issued through the CouponIssuer, touches and counts recorded)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from crm.campaigns.models import (
    DispatchCounts,
    DispatchOutcome,
    DispatchRequest,
    IssuedCoupon,
    Touch,
)
from crm.composition import Crm, Settings, reset, root
from crm.profiles import ScoresWrite
from crm.profiles.models import CustomerScores
from crm.segments.records import MembershipChange
from crm_local.harness import Suite
from tests.integration.campaigns.conftest import START as DISPATCH_START
from tests.integration.campaigns.conftest import TEMPLATE

START = datetime(2026, 11, 23, 1, 0, 0, tzinfo=UTC)
LIVE_START = DISPATCH_START  # a Tuesday, 10:00 in Shanghai: outside the policy's quiet hours
SHARDS = "SendShardsQueue"
WORKER = "SendWorkerFunction"
COST_MICROS = 50_000  # what the fake provider charges a message: 0.05


@dataclass
class MovingClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **span: float) -> datetime:
        self.now += timedelta(**span)
        return self.now


@dataclass
class FakeDispatch:
    """Stands for root().campaign_dispatch until part D is merged."""

    clock: MovingClock
    control: set[str] = field(default_factory=set)
    fail_after: int | None = None  # raise on the n-th provider call (a crash mid-page)
    outcomes: dict[str, DispatchOutcome] = field(default_factory=dict)
    provider_calls: list[str] = field(default_factory=list)
    requests: list[DispatchRequest] = field(default_factory=list)
    coupons: dict[str, IssuedCoupon] = field(default_factory=dict)
    touches: dict[str, Touch] = field(default_factory=dict)

    def dispatch(self, request: DispatchRequest) -> DispatchOutcome:
        self.requests.append(request)
        key = request.dispatch_key
        if key in self.outcomes:
            return self.outcomes[key]
        if request.customer_id in self.control:
            outcome = DispatchOutcome(dispatch_key=key, status="suppressed",
                                      reason="global_control")  # fmt: skip
            self.outcomes[key] = outcome
            return outcome
        if self.fail_after is not None and len(self.provider_calls) >= self.fail_after:
            self.fail_after = None
            raise RuntimeError("the worker crashed")
        if request.coupon_offer_id:
            self.coupons[key] = root().coupons.issue(request.coupon_offer_id,
                                                     request.customer_id, key)  # fmt: skip
        self.provider_calls.append(key)
        outcome = DispatchOutcome(dispatch_key=key, status="sent", message_id=f"m-{key}")
        self.outcomes[key] = outcome
        self.touches[request.customer_id] = Touch(
            campaign_id=request.campaign_id, variant=request.variant, channel=request.channel,
            dispatch_key=key, sent_at=self.clock(),
        )  # fmt: skip
        return outcome

    def campaign_counts(self, campaign_id: str) -> dict[str, DispatchCounts]:
        counts: dict[str, dict[str, int]] = {}
        for request in {r.dispatch_key: r for r in self.requests}.values():
            outcome = self.outcomes.get(request.dispatch_key)
            if request.campaign_id != campaign_id or outcome is None:
                continue
            into = counts.setdefault(request.variant or "A", {})
            into[outcome.status] = into.get(outcome.status, 0) + 1
            if outcome.status == "sent":
                into["cost_micros"] = into.get("cost_micros", 0) + COST_MICROS
        return {v: DispatchCounts(**c) for v, c in counts.items()}

    def last_touches(self, customer_id: str) -> list[Touch]:
        touch = self.touches.get(customer_id)
        return [touch] if touch else []

    def policy(self) -> FakePolicy:
        return FakePolicy(self.control)


@dataclass
class FakePolicy:
    """The part of the contact policy a send's worker asks (its holdout's control group, the
    channel's concurrency: one at a time, as the fake's crash counting needs a fixed order)."""

    control: set[str]
    max_concurrency: int = 1

    def in_global_control(self, customer_id: str) -> bool:
        return customer_id in self.control

    def channel(self, channel: object) -> FakePolicy:
        return self


@dataclass
class Kit:
    suite: Suite
    clock: MovingClock
    dispatch: FakeDispatch

    def members(self, segment: str, customer_ids: list[str]) -> None:
        """Put these customers in the segment as a run or a profile change would: an RFM cell
        through the scores items (its member index), a rule segment as membership items."""
        if not segment.startswith("rfm:"):
            root().segment_store.apply([MembershipChange(segment, c, True) for c in customer_ids])
            return
        scores = CustomerScores(recency_score=5, frequency_score=5, monetary_score=5,
                                rfm_segment=segment.removeprefix("rfm:"), tier="regular",
                                scored_at=datetime(2026, 11, 1, tzinfo=UTC))  # fmt: skip
        root().profile_service.store.put_scores(
            [ScoresWrite(c, "run-seed", scores, (segment, "tier:regular")) for c in customer_ids]
        )
        root().segment_store.mark_computed_members_indexed("run-seed", datetime.now(UTC))

    def create_send(self, **overrides: Any) -> dict[str, Any]:
        body = {"name": "双十二 预热", "segment": "rfm:champions", "channel": "sms",
                "template_id": "t-1", **overrides}  # fmt: skip
        out = self.suite.call("POST", "/campaigns/sends", body, role="marketer")
        assert out.status == 201, out.body
        return dict(out.body)

    def act(self, send_id: str, action: str) -> Any:
        return self.suite.call("POST", f"/campaigns/sends/{send_id}/actions",
                               {"action": action}, role="marketer")  # fmt: skip

    def send(self, send_id: str) -> dict[str, Any]:
        out = self.suite.call("GET", f"/campaigns/sends/{send_id}", role="analyst")
        assert out.status == 200, out.body
        return dict(out.body)

    def tasks(self) -> list[dict[str, Any]]:
        """Every task waiting in the send queue, received (hand them to `deliver`)."""
        found: list[dict[str, Any]] = []
        while batch := self.suite.receive(SHARDS):
            found += batch
        return found

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:  # BatchSize 1, as the event source mapping hands them over
            self.suite.deliver(WORKER, SHARDS, [message])

    def run(self, rounds: int = 200) -> int:
        """Deliver tasks until the queue is empty; the number delivered."""
        for delivered in range(rounds):
            messages = self.suite.receive(SHARDS, 1)
            if not messages:
                return delivered
            self.suite.deliver(WORKER, SHARDS, messages)
        raise AssertionError("the send queue never emptied")

    def requeue(self, body: dict[str, Any]) -> None:
        boto3.client("sqs").send_message(QueueUrl=self.suite.queue_url(SHARDS),
                                         MessageBody=json.dumps(body))  # fmt: skip


@pytest.fixture
def live(suite: Suite) -> Iterator[Kit]:
    """The real dispatcher (part D) with its recording provider; `dispatch` records nothing."""
    clock = MovingClock(LIVE_START)
    reset(Crm(Settings.from_env(), clock=clock, sleep=lambda _: None))
    out = suite.call("PUT", "/campaigns/templates/t-1", TEMPLATE, role="marketer")
    assert out.status == 200, out.body
    yield Kit(suite, clock, FakeDispatch(clock))
    reset()


@pytest.fixture
def kit(suite: Suite) -> Iterator[Kit]:
    clock = MovingClock()
    crm = Crm(Settings.from_env(), clock=clock)
    fake = FakeDispatch(clock)
    # Part D's property; a test installs its stand-in on the root as D's would be built.
    crm.__dict__["campaign_dispatch"] = fake
    reset(crm)
    for template_id in ("t-1", "t-2", "t"):  # a send names templates that exist
        assert suite.call("PUT", f"/campaigns/templates/{template_id}", TEMPLATE).status == 200
    yield Kit(suite, clock, fake)
    reset()
