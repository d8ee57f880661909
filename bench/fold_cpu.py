"""CPU per event folded: the batch folder against the folder of one event at a time.

Both run in one process against moto, interleaved round by round (A B, B A, ...), on the same
shapes of batch and on customers of the same history, so both see the same machine load. The
folder of one event at a time is the module as it was at BASELINE, loaded from git and run
against today's package (its service, store and codec calls still exist). Reported per event:
the process's CPU time, and the client's share of it, without the time moto spends answering
(in AWS that is DynamoDB's, not the function's). Run: `python -m bench.fold_cpu [ref] [rounds]`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from crm.composition import root
from crm.profiles.event_folding import Folded
from crm.sqs_consumer import QueueMessage, consume, consume_batch
from crm_local.harness import Suite, local_suite
from crm_local.moto_server import install_patches
from crm_local.runtime import LambdaContext
from crm_local.sqs import sqs_event
from crm_local.template import ROOT

BASELINE = "c1d7cdb"  # the last commit that folded one event at a time
QUEUE = "ProfileEventsQueue"
Handler = Callable[[dict[str, Any]], Any]


def _baseline_folding(ref: str) -> ModuleType:
    path = "layers/crm/crm/profiles/event_folding.py"
    source = subprocess.run(
        ["git", "show", f"{ref}:{path}"],  # noqa: S607 - git from PATH, a developer tool
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    module = ModuleType("bench_fold_one_at_a_time")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{ref}:{path}", "exec"), module.__dict__)  # noqa: S102 - our own code
    return module


def _handlers(baseline: ModuleType) -> dict[str, Handler]:
    folding = root().event_folding
    old = baseline.EventFolding(
        root().profile_service, root().profile_identity, root().lake, root().bus,
        root().blind_index, root().event_transit,
    )  # fmt: skip

    def one_at_a_time(event: dict[str, Any]) -> Any:
        folded: list[Any] = []

        def fold(message: QueueMessage) -> None:
            result = old.fold_message(message.body, message.redelivered)
            if result is not None:
                folded.append(result)

        context: Any = LambdaContext("ProfileEventsFunction")
        return consume(event, context, fold, after_batch=lambda: old.publish(folded))

    def batched(event: dict[str, Any]) -> Any:
        folded: list[Folded] = []

        def fold(messages: Sequence[QueueMessage]) -> dict[str, Exception]:
            result = folding.fold_batch(messages)
            folded.extend(result.folded)
            return result.failed

        context: Any = LambdaContext("ProfileEventsFunction")
        return consume_batch(event, context, fold, after_batch=lambda: folding.publish(folded))

    return {"one at a time": one_at_a_time, "batch": batched}


class _MotoClock:
    """CPU time spent inside moto answering requests (AWS's side of the wire)."""

    def __init__(self) -> None:
        self.spent = 0.0

    @contextmanager
    def installed(self) -> Iterator[None]:
        real = BotocoreStubber.__call__

        def timed(stubber: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return real(stubber, *args, **kwargs)
            finally:
                self.spent += time.process_time() - started

        BotocoreStubber.__call__ = timed  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            BotocoreStubber.__call__ = real  # type: ignore[method-assign]


@dataclass(frozen=True)
class Shape:
    name: str
    customers: int
    events: Callable[[list[str], int], list[dict[str, Any]]]


def _paid(cid: str, order: str) -> dict[str, Any]:
    return {"event_id": f"{order}-paid", "type": "order_paid", "order_id": order,
            "customer_id": cid, "amount": "99.00", "occurred_at": "2026-11-01T10:00:00Z",
            "items": [{"sku": "sku-1", "category": "美妆", "quantity": 1,
                       "unit_price": "99.00"}]}  # fmt: skip


def _note(cid: str, event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "type": "after_sales", "case": "complaint",
            "customer_id": cid, "note": "奶粉罐有凹痕，客服三天没回复",
            "occurred_at": "2026-11-20T10:00:00Z"}  # fmt: skip


SHAPES = [
    Shape("10 events of 10 customers", 10,
          lambda cs, r: [_paid(c, f"o-{c}-{r}") for c in cs]),
    Shape("10 events of one customer", 1,
          lambda cs, r: [_paid(cs[0], f"o-{cs[0]}-{r}-{n}") for n in range(10)]),
    Shape("10 after-sales notes of one customer", 1,
          lambda cs, r: [_note(cs[0], f"n-{cs[0]}-{r}-{n}") for n in range(10)]),
]  # fmt: skip


@dataclass(frozen=True)
class Row:
    shape: str
    old_us: float  # per event, median of rounds
    new_us: float
    ratio: float  # old / new, median of the rounds' ratios
    ratio_low: float  # quartiles of the rounds' ratios
    ratio_high: float
    old_client_us: float
    new_client_us: float
    client_ratio: float
    client_low: float
    client_high: float


def _customers(suite: Suite, prefix: str, n: int) -> list[str]:
    found = []
    for i in range(n):
        body = {"identities": [{"channel": "app", "external_id": f"{prefix}-{i}"}],
                "attributes": {"name": "测试"}}  # fmt: skip
        reply = suite.call("POST", "/customers", body)
        assert reply.status == 201, reply.body
        found.append(str(reply.body["customer_id"]))
    return found


def _batch(suite: Suite, events: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    assert suite.call("POST", "/events", {"events": events}).status == 202
    messages = suite.receive(QUEUE)
    assert len(messages) == len(events)
    event = sqs_event(messages, suite.stack.attrs[QUEUE]["Arn"])
    return event, [m["ReceiptHandle"] for m in messages]


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    low, mid, high = statistics.quantiles(values, n=4)
    return low, mid, high


def measure(rounds: int = 20, ref: str = BASELINE) -> list[Row]:
    rows = []
    install_patches()  # as the tests and the emulator run moto: no table copied per transaction
    with mock_aws(), local_suite() as suite:
        handlers = _handlers(_baseline_folding(ref))
        moto = _MotoClock()
        sqs = boto3.client("sqs")
        url = suite.queue_url(QUEUE)
        for shape in SHAPES:
            people = {name: _customers(suite, f"{shape.name}-{name}", shape.customers)
                      for name in handlers}  # fmt: skip
            total: dict[str, list[float]] = {name: [] for name in handlers}
            client: dict[str, list[float]] = {name: [] for name in handlers}
            for r in range(-2, rounds):  # two rounds to warm up, not counted
                order = list(handlers) if r % 2 == 0 else list(reversed(handlers))
                for name in order:
                    events = shape.events(people[name], r + 2)
                    event, receipts = _batch(suite, events)
                    with moto.installed():
                        spent_before, started = moto.spent, time.process_time()
                        response = handlers[name](event)
                        cpu = time.process_time() - started
                        inside = moto.spent - spent_before
                    assert not response.get("batchItemFailures"), response
                    for receipt in receipts:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)
                    if r >= 0:
                        total[name].append(cpu / len(events) * 1e6)
                        client[name].append((cpu - inside) / len(events) * 1e6)
            old, new = total["one at a time"], total["batch"]
            old_c, new_c = client["one at a time"], client["batch"]
            low, mid, high = _quartiles([a / b for a, b in zip(old, new, strict=True)])
            c_low, c_mid, c_high = _quartiles([a / b for a, b in zip(old_c, new_c, strict=True)])
            rows.append(Row(
                shape.name, statistics.median(old), statistics.median(new), mid, low, high,
                statistics.median(old_c), statistics.median(new_c), c_mid, c_low, c_high,
            ))  # fmt: skip
    return rows


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| batch | CPU/event, one at a time | CPU/event, batch | ratio (quartiles) "
        "| client CPU/event, one at a time | batch | ratio (quartiles) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.shape} | {r.old_us:,.0f} µs | {r.new_us:,.0f} µs "
            f"| {r.ratio:.2f}x ({r.ratio_low:.2f}-{r.ratio_high:.2f}) "
            f"| {r.old_client_us:,.0f} µs | {r.new_client_us:,.0f} µs "
            f"| {r.client_ratio:.2f}x ({r.client_low:.2f}-{r.client_high:.2f}) |"
        )
    return lines


if __name__ == "__main__":
    ref = sys.argv[1] if len(sys.argv) > 1 else BASELINE
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    print("\n".join(table(measure(rounds, ref))))
