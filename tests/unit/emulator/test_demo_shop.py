from __future__ import annotations

import statistics
from collections import Counter

from crm.profiles.customer_events import CUSTOMER_EVENT
from crm.profiles.models import UpsertCustomer
from crm_local.seed import CATALOG, EVENTS_PER_REQUEST, Shop, customer_batches


def test_the_same_seed_gives_the_same_shop() -> None:
    a = Shop(seed=3).customers(20)
    b = Shop(seed=3, now=Shop(seed=3).now).customers(20)
    assert [c.identities for c in a] == [c.identities for c in b]


def test_the_shop_looks_like_a_shop() -> None:
    customers = Shop(seed=7).customers(400)
    orders = [sum(e["type"] == "order_paid" for e in c.events) for c in customers]
    # BG/NBD: most buy once or twice, a loyal few buy often.
    assert statistics.median(orders) <= 3
    assert max(orders) >= 10
    channels = Counter(i["channel"] for c in customers for i in c.identities)
    assert {"app", "mini_program", "wechat", "douyin", "offline_store"} <= set(channels)
    names = [c.attributes["name"] for c in customers]
    assert any(n.isascii() for n in names)
    assert any(not n.isascii() for n in names)
    kinds = Counter(e["type"] for c in customers for e in c.events)
    assert kinds["order_refunded"] > 0
    assert kinds["product_viewed"] > 0
    notes = [e["note"] for c in customers for e in c.events if e.get("note")]
    assert any(n.isascii() for n in notes)  # English
    assert any(not n.isascii() for n in notes)  # and Chinese
    cases = Counter(e.get("case") for c in customers for e in c.events)
    assert cases["complaint"] > 0
    assert cases["return"] > 0
    categories = {e["items"][0]["category"] for c in customers for e in c.events if "items" in e}
    assert categories == set(CATALOG)


def test_every_generated_record_passes_the_api_validation() -> None:
    for customer in Shop(seed=11).customers(60):
        UpsertCustomer.model_validate(
            {"identities": customer.identities, "attributes": customer.attributes}
        )
        for event in customer.events:
            CUSTOMER_EVENT.validate_python({**event, "customer_id": "c"})


def test_each_customers_events_go_together_in_order_and_once() -> None:
    customers = Shop(seed=7).customers(300)
    for n, customer in enumerate(customers):
        customer.customer_id = f"c{n}"
    batches = list(customer_batches(customers))
    assert all(0 < len(batch) <= EVENTS_PER_REQUEST for batch in batches)
    sent = [event for batch in batches for event in batch]
    assert sorted(e["event_id"] for e in sent) == sorted(
        e["event_id"] for c in customers for e in c.events
    )
    # A customer's events are side by side, in the order they happened, and split only
    # where one customer has more than a request holds.
    order = [e["customer_id"] for e in sent]
    runs = [c for n, c in enumerate(order) if n == 0 or order[n - 1] != c]
    assert len(runs) == len(set(runs)) == 300
    for customer in customers:
        times = [str(e["occurred_at"]) for e in sent if e["customer_id"] == customer.customer_id]
        assert times == sorted(times)
    assert len(batches) < len(sent) / 50  # full requests, not one per customer


def test_a_customer_with_more_events_than_a_request_holds_is_split() -> None:
    (customer,) = Shop(seed=7).customers(1)
    customer.customer_id = "c"
    customer.events = [{**customer.events[0], "event_id": f"e{n}"} for n in range(25)]
    assert [len(b) for b in customer_batches([customer], size=10)] == [10, 10, 5]
