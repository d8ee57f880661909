"""The demo shop's consent, imported with its customers (`POST /imports`, as the loader sends
them), is what a send's preview screens: consenting customers with an address on the channel
are the audience, consenting ones without are `no_address` (docs/local.md, "The demo shop")."""

from __future__ import annotations

from typing import Any

import pytest

from crm.campaigns.policy import ContactPolicy
from crm_local.seed import Shop, import_bodies
from tests.integration.profiles.test_history_import import run
from tests.integration.sends.conftest import Kit


@pytest.mark.parametrize(("channel", "purpose", "address"), [
    ("sms", "marketing_sms", "phone"),
    ("push", "marketing_push", "app"),
])  # fmt: skip
def test_the_demo_consent_gives_sends_an_audience_and_names_who_is_unreachable(
    live: Kit, channel: str, purpose: str, address: str
) -> None:
    kit = live
    shop = Shop(seed=7, now=kit.clock()).customers(30)
    assert sum(len(c.consent) for c in shop) > 0
    for body in import_bodies(shop):
        assert kit.suite.call("POST", "/imports", body).status == 202
    run(kit.suite)
    for customer in shop:
        found = kit.suite.call("POST", "/customers/search", {"identity": customer.identities[0]})
        (match,) = found.body["matches"]
        customer.customer_id = str(match["customer_id"])
    kit.members("rfm:champions", [c.customer_id for c in shop])
    policy = ContactPolicy()

    def reached(customer: Any) -> bool:
        if address == "phone":
            return "phone" in customer.attributes
        return any(i["channel"] == "app" for i in customer.identities)

    expected = {"audience": 0, "no_consent": 0, "no_address": 0, "global_control": 0}
    for customer in shop:
        consents = purpose in {d["purpose"] for d in customer.consent}
        expected[
            "no_consent" if not consents  # as dispatch decides: consent first
            else "global_control" if policy.in_global_control(customer.customer_id)
            else "audience" if reached(customer)
            else "no_address"
        ] += 1  # fmt: skip
    send = kit.create_send(holdout_percent=0, channel=channel)
    out = kit.suite.call("POST", f"/campaigns/sends/{send['send_id']}/preview", role="analyst")
    assert out.status == 200, out.body
    assert {k: out.body[k] for k in expected} == expected
    assert expected["audience"] > 0  # the demo has customers a campaign reaches
    if channel == "sms":
        assert expected["no_address"] > 0  # consent without a phone: said apart
