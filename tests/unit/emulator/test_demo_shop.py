from __future__ import annotations

import statistics
from collections import Counter

from crm.profiles.change_models import ConsentChange
from crm.profiles.customer_events import CUSTOMER_EVENT
from crm.profiles.import_models import HistoryImport
from crm.profiles.models import UpsertCustomer
from crm_local.seed import CATALOG, CONSENT_SHARES, Shop, import_bodies


def test_the_same_seed_gives_the_same_shop() -> None:
    a = Shop(seed=3).customers(20)
    b = Shop(seed=3, now=Shop(seed=3).now).customers(20)
    assert [c.identities for c in a] == [c.identities for c in b]
    assert [c.consent for c in a] == [c.consent for c in b]


def test_the_shop_records_realistic_consent_push_only_with_an_app_identity() -> None:
    shop = Shop(seed=7)
    customers = shop.customers(2000)
    granted = Counter(d["purpose"] for c in customers for d in c.consent)
    with_app = [c for c in customers if any(i["channel"] == "app" for i in c.identities)]
    assert 0.55 < granted["marketing_sms"] / len(customers) < 0.65
    assert 0.35 < granted["marketing_email"] / len(customers) < 0.45
    assert 0.25 < granted["marketing_push"] / len(with_app) < 0.35
    assert 0.25 < len(with_app) / len(customers) < 0.5  # a share of the shop uses the app
    for customer in customers:
        purposes = [d["purpose"] for d in customer.consent]
        assert len(purposes) == len(set(purposes))
        assert set(purposes) <= set(CONSENT_SHARES)
        if "marketing_push" in purposes:
            assert customer in with_app
        for decision in customer.consent:  # what PUT /customers/{id}/consent accepts
            change = ConsentChange.model_validate(decision)
            assert change.granted
            assert change.decided_at is not None
            assert change.decided_at <= shop.now


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


def test_every_online_channel_has_viewers_who_did_not_buy_there() -> None:
    # The dashboard's conversion by channel: viewers of a channel who paid an order on it. The
    # demo's browsing had no WeChat views, so WeChat's viewers were its buyers (100%).
    customers = Shop(seed=7).customers(400)
    for channel in ("app", "mini_program", "wechat", "douyin"):
        viewers = {c.key for c in customers for e in c.events
                   if e["type"] == "product_viewed" and e["channel"] == channel}  # fmt: skip
        buyers = {c.key for c in customers for e in c.events
                  if e["type"] == "order_paid" and e["channel"] == channel}  # fmt: skip
        assert 0.1 < len(viewers & buyers) / len(viewers) < 0.9, channel


def test_every_generated_record_passes_the_api_validation() -> None:
    for customer in Shop(seed=11).customers(60):
        UpsertCustomer.model_validate(
            {"identities": customer.identities, "attributes": customer.attributes}
        )
        for event in customer.events:
            CUSTOMER_EVENT.validate_python({**event, "customer_id": "c"})


def test_the_shop_goes_as_imports_each_customer_with_its_history_in_order() -> None:
    customers = Shop(seed=7).customers(300)
    bodies = list(import_bodies(customers, size=128))
    assert [len(b["customers"]) for b in bodies] == [128, 128, 44]
    for body in bodies:
        parsed = HistoryImport.model_validate(body)  # what POST /imports accepts
        assert all(e.customer_id is None for c in parsed.customers for e in c.events)
    sent = [c for body in bodies for c in body["customers"]]
    assert [c["ref"] for c in sent] == [c.key for c in customers]
    for shop_customer, imported in zip(customers, sent, strict=True):
        times = [str(e["occurred_at"]) for e in imported["events"]]
        assert times == sorted(times)
        assert sorted(e["event_id"] for e in imported["events"]) == sorted(
            e["event_id"] for e in shop_customer.events
        )
