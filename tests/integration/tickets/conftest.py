"""Tickets on moto through API Gateway's event, the handler, the service and DynamoDB, with a
clock the test moves (time travel) and the real timer sweep and SLA function."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from crm.composition import Crm, Settings, reset
from crm_local.harness import Reply, Suite
from crm_local.template import ROOT
from tests.fakes import TestClock

# A Monday, 10:00 in Shanghai (02:00 UTC): inside business hours.
START = datetime(2026, 11, 23, 2, 0, 0, tzinfo=UTC)


@dataclass
class Desk:
    """A service desk: the suite, its clock, and what the bus carried."""

    suite: Suite
    clock: TestClock
    bus_tap: str

    def customer(self, external_id: str = "u-1", **attrs: Any) -> str:
        body = {"identities": [{"channel": "app", "external_id": external_id}],
                "attributes": attrs}  # fmt: skip
        reply = self.suite.call("POST", "/customers", body)
        assert reply.status == 201, reply.body
        return str(reply.body["customer_id"])

    def open(self, customer_id: str, message: str, *, as_customer: bool = True,
             channel: str = "app", **extra: Any) -> Reply:  # fmt: skip
        """Opened by the customer (or an agent); the reply's body is the staff view either way
        (what the desk sees of it: a customer's own reply leaves the team's workings out)."""
        body = {"customer_id": customer_id, "channel": channel, "message": message, **extra}
        if not as_customer:
            return self.suite.call("POST", "/tickets", body, role="support_agent")
        reply = self.suite.call("POST", "/tickets", body, role="customer", customer_id=customer_id)
        if reply.status != 201:
            return reply
        assert reply.body["view"] == "customer", reply.body
        staff = self.suite.call("GET", f"/tickets/{reply.body['ticket_id']}", role="support_agent")
        return dataclasses.replace(reply, body=staff.body)

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        reply = self.suite.call("GET", f"/tickets/{ticket_id}", role="support_agent")
        assert reply.status == 200, reply.body
        body: dict[str, Any] = reply.body
        return body

    def deadline(self, ticket_id: str, metric: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            d for d in self.ticket(ticket_id)["deadlines"] if d["metric"] == metric
        ]
        assert len(found) == 1, f"no {metric} deadline"
        return found[0]

    def sweep(self) -> int:
        """The timer sweep as AWS runs it, then the SLA function on what it queued."""
        sample = json.loads((ROOT / "events" / "schedule_timers_sweep.json").read_text())
        self.suite.invoke("TimerSweepFunction", sample)
        self.suite.drain("TimerShardFunction", "TimerSweepQueue", rounds=50)
        # Wake-ups are queued with a delay up to their due time; moto holds them back by real
        # time, which the test's clock has overtaken, so they are delivered as they arrive.
        return self.suite.drain("TicketSlaFunction", "TicketSlaQueue", rounds=20)

    def travel(self, **delta: float) -> int:
        self.clock.advance(**delta)
        return self.sweep()

    def events(self) -> list[dict[str, Any]]:
        return self.suite.take_all(self.bus_tap)


@pytest.fixture
def desk(suite: Suite) -> Iterator[Desk]:
    tap = suite.tap_bus("tickets-tap", {"source": ["crm"], "detail-type": [
        "TicketEscalated", "TicketSlaWarning", "TicketSlaBreached"]})  # fmt: skip
    clock = TestClock(START)
    reset(Crm(Settings.from_env(), clock=clock))
    yield Desk(suite, clock, tap)
    reset()
