"""Privacy requests on moto through API Gateway's event, the handler, the services and the
worker, with fake stores of customer data in the registry (one fails once, to test resume),
a clock the test moves, and the real timer sweep for deadlines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from crm.composition import Crm, Settings, reset
from crm.personal_data import (
    DataSubject,
    ErasureMethod,
    Holding,
    Remnant,
    StoreErasure,
    StoreExport,
    StoreInventory,
    StoreVerification,
)
from crm.privacy.own_data import own_stores
from crm_local.harness import Reply, Suite
from crm_local.template import ROOT
from tests.fakes import TestClock

# A Monday, 10:00 in Shanghai (02:00 UTC).
START = datetime(2026, 11, 23, 2, 0, 0, tzinfo=UTC)


class StoreDown(Exception):
    """A fake store's outage (its message may quote data: never recorded)."""


@dataclass
class FakeStore:
    """One store of customer data: `rows` per customer id; erase deletes them."""

    name: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: int = 0  # erase and export fail this many times before they work
    calls: dict[str, int] = field(default_factory=dict)
    leaves_remnant: bool = False

    @property
    def claims(self) -> tuple[str, ...]:
        return (f"{self.name}Table",)

    def _count(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1

    def _maybe_fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreDown("secret-phone-13800138000 unreachable")

    def inventory(self, subject: DataSubject) -> StoreInventory:
        self._count("inventory")
        rows = self.rows.get(subject.customer_id, [])
        return StoreInventory(
            store=self.name,
            holdings=(Holding(kind="row", count=len(rows), erasure=ErasureMethod.DELETE),),
        )

    def export(self, subject: DataSubject) -> StoreExport:
        self._count("export")
        self._maybe_fail()
        rows = self.rows.get(subject.customer_id, [])
        return StoreExport(
            store=self.name, sections={"rows": rows}, explanations={"tier": "gold: 3 orders"}
        )

    def erase(self, subject: DataSubject) -> StoreErasure:
        self._count("erase")
        self._maybe_fail()
        rows = self.rows.pop(subject.customer_id, [])
        return StoreErasure(store=self.name, erased={"row": len(rows)})

    def verify(self, subject: DataSubject) -> StoreVerification:
        self._count("verify")
        left = list(self.rows.get(subject.customer_id, []))
        if self.leaves_remnant:
            left.append({"hidden": True})
        return StoreVerification(
            store=self.name,
            checked=1 + len(left),
            remnants=tuple(
                Remnant(kind="row", location=f"{self.name}Table/CUST#x/{n}",
                        identifier_kind="customer_id")
                for n in range(len(left))
            ),
        )  # fmt: skip


@dataclass
class Office:
    """The privacy office: the suite, its clock, the fake stores and what the bus carried."""

    suite: Suite
    clock: TestClock
    root: Crm
    stores: list[FakeStore]
    bus_tap: str

    def customer(self, external_id: str = "u-1") -> str:
        body = {"identities": [{"channel": "app", "external_id": external_id}],
                "attributes": {"city": "Shanghai"}}  # fmt: skip
        reply = self.suite.call("POST", "/customers", body)
        assert reply.status == 201, reply.body
        return str(reply.body["customer_id"])

    def file(self, customer_id: str, kind: str, *, role: str = "customer", **extra: Any) -> Reply:
        body = {"customer_id": customer_id, "kind": kind, **extra}
        as_customer = customer_id if role == "customer" else None
        return self.suite.call("POST", "/privacy/requests", body, role=role,
                               customer_id=as_customer)  # fmt: skip

    def get(self, request_id: str, role: str = "privacy_officer") -> dict[str, Any]:
        reply = self.suite.call("GET", f"/privacy/requests/{request_id}", role=role)
        assert reply.status == 200, reply.body
        body: dict[str, Any] = reply.body
        return body

    def act(self, request_id: str, action: str, body: Any = None, *,
            role: str = "privacy_officer", customer_id: str | None = None) -> Reply:  # fmt: skip
        return self.suite.call("POST", f"/privacy/requests/{request_id}/{action}",
                               {} if body is None and action != "confirm" else body,
                               role=role, customer_id=customer_id)  # fmt: skip

    def work(self, rounds: int = 20) -> int:
        return self.suite.drain("PrivacyWorkerFunction", "PrivacyQueue", rounds=rounds)

    def work_once(self) -> None:
        """One batch delivered, failures left for the next."""
        messages = self.suite.receive("PrivacyQueue")
        self.suite.deliver("PrivacyWorkerFunction", "PrivacyQueue", messages)

    def sweep(self) -> int:
        sample = json.loads((ROOT / "events" / "schedule_timers_sweep.json").read_text())
        self.suite.invoke("TimerSweepFunction", sample)
        self.suite.drain("TimerShardFunction", "TimerSweepQueue", rounds=50)
        return self.work()

    def events(self) -> list[dict[str, Any]]:
        return self.suite.take_all(self.bus_tap)


@pytest.fixture
def office(suite: Suite) -> Iterator[Office]:
    tap = suite.tap_bus("privacy-tap", {"source": ["crm"], "detail-type": [
        "PrivacyRequestCompleted", "PrivacyDeadlineNear", "PrivacyDeadlineMissed",
        "PrivacyDeadlineExtended", "ConsentWithdrawn"]})  # fmt: skip
    clock = TestClock(START)
    root = Crm(Settings.from_env(), clock=clock)
    stores = [FakeStore("orders"), FakeStore("tickets", failures=1)]
    # The registry of this branch holds the privacy family's own store; the fakes stand in
    # for the other families' (crm/<family>/personal_data.py, built on another branch).
    root.__dict__["personal_data_stores"] = (*own_stores(root), *stores)
    reset(root)
    yield Office(suite, clock, root, stores, tap)
    reset()
