"""A customer's timers are found by the sparse `subject` index (keys only), never by a scan:
an erasure of the timers store is one Query per id of the customer's (paged), one BatchGetItem
per 100 timers and BatchWriteItems of 25, and leaves every other customer's timers and the
timers that name nobody as they were."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest

from crm.composition import root
from crm.errors import InvalidInput
from crm.personal_data import DataSubject
from crm.timers import TimersPersonalData
from crm_local.harness import count_requests
from tests.integration.timers.conftest import Kit


def _items(kit: Kit) -> list[dict[str, Any]]:
    table = str(kit.suite.stack.refs["TimersTable"])
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    return [item for page in pages for item in page["Items"]]


def test_erasing_a_customers_130_timers_takes_exact_requests_and_spares_the_rest(
    kit: Kit,
) -> None:
    timers = root().timers
    due = kit.clock.now + timedelta(days=3)
    for n in range(120):
        timers.set("ping", f"c-1-wait-{n}", due, {"n": str(n)}, subject="c-1")
    for n in range(10):  # a profile since merged into c-1's
        timers.set("ping", f"c-0-wait-{n}", due, subject="c-0")
    kept = [timers.set("ping", f"c-2-wait-{n}", due, subject="c-2") for n in range(3)]
    timers.set("ping", "nobody", due)  # a timer about no customer (a send's start)
    fired = timers.set("ping", "c-1-fired", kit.clock.now + timedelta(minutes=10), subject="c-1")
    kit.clock.advance(minutes=11)
    kit.sweep()
    kit.consume_pings()
    assert timers.get("ping", "c-1-fired").state == "fired"  # type: ignore[union-attr]
    assert fired.subject == "c-1"

    subject = DataSubject(customer_id="c-1", pseudonym="p" * 32, merged_ids=("c-0",))
    store = TimersPersonalData(str(kit.suite.stack.refs["TimersTable"]))
    assert [h.count for h in store.inventory(subject).holdings] == [131]
    with count_requests() as counts:
        erased = store.erase(subject)
    assert erased.erased == {"timer": 131}
    assert dict(counts) == {
        "dynamodb.Query": 2,  # the index, once per id (a page holds them all here)
        "dynamodb.BatchGetItem": 2,  # 131 timers: 100 + 31 keys
        # 130 pending due items, then 131 timers, 25 a batch
        "dynamodb.BatchWriteItem": 6 + 6,
    }
    assert not any(op == "dynamodb.Scan" for op in counts)
    left = _items(kit)
    assert not [i for i in left if "c-1-" in str(i) or "c-0-" in str(i)]
    assert {t.timer_id for t in kept} <= {i["timer_id"]["S"] for i in left if "timer_id" in i}
    assert timers.get("ping", "nobody") is not None
    assert all(timers.get("ping", t.timer_id) == t for t in kept)
    proof = store.verify(subject)
    assert proof.clean
    assert proof.checked == 2
    again = store.erase(subject)
    assert again.erased == {}


def test_a_timer_names_its_subject_once_and_a_bad_one_is_refused(kit: Kit) -> None:
    timers = root().timers
    due = kit.clock.now + timedelta(hours=1)
    first = timers.set("ping", "same", due, subject="c-9")
    assert timers.set("ping", "same", due + timedelta(hours=1), subject="c-9") == first
    moved = timers.reschedule("ping", "same", due + timedelta(hours=2))
    assert timers.get("ping", "same") == moved
    assert moved.subject == "c-9"  # a move keeps whom the timer is about
    with pytest.raises(InvalidInput, match="subject"):
        timers.set("ping", "bad", due, subject="张三")
