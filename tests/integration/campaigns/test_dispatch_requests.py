"""AWS requests per dispatched message, exactly as bench/dispatch.py reports them."""

from __future__ import annotations

from collections import Counter

from bench.dispatch import requests_per_message
from crm.composition import root
from crm_local.harness import count_requests
from tests.integration.campaigns.conftest import Shop


def test_one_message_costs_six_requests_and_a_redelivery_one(shop: Shop) -> None:
    from bench.dispatch import TEMPLATE
    from crm.auth import Caller, Role
    from crm.campaigns.templates import MessageTemplate

    admin = Caller(subject="t", roles=frozenset({Role.ADMIN}))
    root().campaign_templates.save(admin, "bench", MessageTemplate.model_validate(TEMPLATE))
    sent, again = requests_per_message(shop.suite)
    assert sent == Counter({
        "dynamodb.BatchGetItem": 1,  # the ledger item and the caps, strongly consistent
        "dynamodb.Query": 1,  # the profile (consent, masked name, address)
        "dynamodb.TransactWriteItems": 2,  # the claim (MSG# + CAP#), the outcome (MSG# + STATS#)
        "dynamodb.PutItem": 2,  # the recording provider's outbox item, the last touch
    })  # fmt: skip
    assert again == Counter({"dynamodb.BatchGetItem": 1})


def test_suppressed_and_transactional_messages_cost_less(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer()  # no consent at all
    dispatcher.dispatch(shop.request(cid, step="warm", transactional=True))
    with count_requests() as suppressed:
        assert dispatcher.dispatch(shop.request(cid)).status == "suppressed"
    assert suppressed == Counter({"dynamodb.BatchGetItem": 1, "dynamodb.Query": 1,
                                  "dynamodb.TransactWriteItems": 1})  # fmt: skip
    with count_requests() as transactional:
        out = dispatcher.dispatch(shop.request(cid, step="receipt", transactional=True))
        assert out.status == "sent"
    # No caps to write, no touch: the claim carries the ledger item alone.
    assert transactional == Counter({
        "dynamodb.BatchGetItem": 1, "dynamodb.Query": 1,
        "dynamodb.TransactWriteItems": 2, "dynamodb.PutItem": 1,
    })  # fmt: skip
