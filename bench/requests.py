"""AWS requests per unit of work, counted exactly on moto (the same code paths as in AWS)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from moto import mock_aws

from crm.profiles.history_import import CHUNK_CUSTOMERS
from crm_local.harness import Suite, count_requests, local_suite

QUEUE = "ProfileEventsQueue"
AUDIT = "AuditQueue"


@dataclass(frozen=True)
class RequestCount:
    work: str
    counts: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# Real-time events (two hours ago): an event older than yesterday also leaves a late-day marker
# for the nightly compaction (crm.lake.Lake.write_events), which is not what a fold costs.
_NOW = (datetime.now(UTC) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")


def _paid(cid: str, n: int) -> dict[str, object]:
    return {
        "event_id": f"e-{cid}-{n}", "type": "order_paid", "order_id": f"o-{cid}-{n}",
        "customer_id": cid, "amount": "99.00", "occurred_at": _NOW,
        "items": [{"sku": "sku-1", "category": "美妆", "quantity": 1, "unit_price": "99.00"}],
    }  # fmt: skip


def _note(cid: str, n: int) -> dict[str, object]:
    return {
        "event_id": f"n-{cid}-{n}", "type": "after_sales", "case": "complaint",
        "customer_id": cid, "note": "奶粉罐有凹痕，客服三天没回复",
        "occurred_at": _NOW,
    }  # fmt: skip


def _customer(suite: Suite, n: int, phone: bool = False) -> str:
    attrs = {"phone": f"1380000{n:04d}", "name": "测试"} if phone else {}
    body = {"identities": [{"channel": "app", "external_id": f"u-{n}"}], "attributes": attrs}
    reply = suite.call("POST", "/customers", body)
    assert reply.status in (200, 201), reply.body
    return str(reply.body["customer_id"])


def _import(suite: Suite, prefix: str, customers: int) -> str:
    """Stage an import of `customers` customers (known by app ids u-imp-<n>), each with an order
    paid and partly refunded a year ago; its id."""
    when = (datetime.now(UTC) - timedelta(days=365)).isoformat().replace("+00:00", "Z")
    body = {"customers": [
        {"ref": f"r{n}", "identities": [{"channel": "app", "external_id": f"u-imp-{n}"}],
         "events": [
             {"event_id": f"{prefix}{n}-paid", "type": "order_paid", "order_id": f"{prefix}{n}",
              "amount": "99.00", "occurred_at": when},
             {"event_id": f"{prefix}{n}-refund", "type": "order_refunded",
              "order_id": f"{prefix}{n}", "amount": "9.00", "occurred_at": when}]}
        for n in range(customers)
    ]}  # fmt: skip
    reply = suite.call("POST", "/imports", body)
    assert reply.status == 202, reply.body
    return str(reply.body["import_id"])


def _run_import(suite: Suite) -> None:
    for message in suite.receive("ImportQueue"):
        suite.deliver("HistoryImportFunction", "ImportQueue", [message])


def _measure(work: str, action: Callable[[], object]) -> RequestCount:
    with count_requests() as counts:
        action()
    return RequestCount(work, Counter(counts))


def count_requests_per_unit() -> list[RequestCount]:
    results = []
    with mock_aws(), local_suite() as suite:
        cid = _customer(suite, 0, phone=True)
        suite.call("POST", "/events", {"events": [_paid(cid, 0)]})
        suite.drain()  # warm the container: the blind-index key is fetched once

        def read_as(role: str) -> Callable[[], object]:
            return lambda: suite.call("GET", f"/customers/{cid}", role=role)

        def fold(messages: list[dict[str, object]]) -> Callable[[], object]:
            return lambda: suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)

        work = "create a customer with PII (POST /customers)"
        results.append(_measure(work, lambda: _customer(suite, 1, phone=True)))
        results.append(_measure("read one 360° view, masked (marketer)", read_as("marketer")))
        work = "read one 360° view, full PII (support agent)"
        results.append(_measure(work, read_as("support_agent")))

        # Staff's unmasked reads reach the audit chain in batches (crm.privacy.reads).
        for _ in range(49):
            read_as("support_agent")()
        reads = suite.receive(AUDIT, max_messages=10)
        while len(reads) < 50 and (more := suite.receive(AUDIT, max_messages=10)):
            reads += more
        work = f"append {len(reads)} staff PII reads to the audit chain (SQS batch)"
        results.append(_measure(work, lambda: suite.deliver("PrivacyAuditFunction", AUDIT, reads)))

        suite.call("POST", "/events", {"events": [_paid(cid, 1)]})
        results.append(_measure("fold one event (SQS batch of 1)", fold(suite.receive(QUEUE))))

        # One BatchGetItem reads the batch; each customer's events are one transaction.
        others = [_customer(suite, 100 + n) for n in range(10)]
        suite.call("POST", "/events", {"events": [_paid(c, 2) for c in others]})
        ten = suite.receive(QUEUE)
        work = f"fold a batch of {len(ten)} events of {len(ten)} customers"
        results.append(_measure(work, fold(ten)))

        suite.call("POST", "/events", {"events": [_paid(cid, 200 + n) for n in range(10)]})
        ten = suite.receive(QUEUE)
        work = f"fold a batch of {len(ten)} events of one customer"
        results.append(_measure(work, fold(ten)))

        hundred = {"events": [_paid(cid, 10 + n) for n in range(100)]}
        work = "accept 100 events (POST /events)"
        results.append(_measure(work, lambda: suite.call("POST", "/events", hundred)))
        suite.drain(rounds=20)

        # Free text travels sealed under one data key per request (crm.profiles.transit).
        notes = {"events": [_note(cid, n) for n in range(100)]}
        work = "accept 100 after-sales notes (POST /events)"
        results.append(_measure(work, lambda: suite.call("POST", "/events", notes)))
        ten = suite.receive(QUEUE)
        work = f"fold a batch of {len(ten)} notes of one customer, sent in one request"
        results.append(_measure(work, fold(ten)))

        # A historical import against a known base: a chunk of 100 reads its matched
        # customers' profiles (and refunded payments) in one batch, for resolution and fold.
        # One chunk: a chunk's requests are the unit (an import of 1,000 is ten of them plus
        # its status), and 1,000 customers take minutes in the emulator.
        _import(suite, "imp-a-", CHUNK_CUSTOMERS)
        _run_import(suite)
        _import(suite, "imp-b-", CHUNK_CUSTOMERS)
        work = (f"import {CHUNK_CUSTOMERS} known customers (one chunk), an order and a refund "
                "each (HistoryImportFunction)")  # fmt: skip
        results.append(_measure(work, lambda: _run_import(suite)))
    return results
