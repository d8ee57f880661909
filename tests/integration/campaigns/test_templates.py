"""Templates through the API (validated on save) and rendered by dispatch (a failure is that
message's `failed`, never a 500, never another customer's)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from crm.campaigns.models import IssuedCoupon
from crm.composition import root
from tests.integration.campaigns.conftest import TEMPLATE, Shop


def template(body: str, subject: str | None = None, **channels: Any) -> dict[str, Any]:
    bodies = {"zh": {"subject": subject, "body": body}, "en": {"subject": subject, "body": body}}
    return {"channels": {"sms": bodies, **channels}}


def test_a_template_is_stored_and_read_back(shop: Shop) -> None:
    out = shop.suite.call("GET", "/campaigns/templates/welcome", role="analyst")
    assert out.status == 200
    assert out.body["template"]["channels"]["sms"] == TEMPLATE["channels"]["sms"]
    assert out.body["updated_by"] == "marketer-1"
    assert shop.suite.call("GET", "/campaigns/templates/nope").status == 404
    refused = shop.suite.call("PUT", "/campaigns/templates/x", TEMPLATE, role="analyst")
    assert refused.status == 403
    long_id = shop.suite.call("PUT", "/campaigns/templates/" + "x" * 1025, TEMPLATE)
    assert long_id.status == 400


def test_syntax_errors_and_unknown_variables_are_refused_by_name(shop: Shop) -> None:
    broken = shop.suite.call("PUT", "/campaigns/templates/t1", template("Hi {{ name "))
    assert broken.status == 400
    fields = {f["field"]: f["message"] for f in broken.body["error"]["fields"]}
    assert "syntax error" in fields["channels.sms.zh.body"]
    unknown = shop.suite.call("PUT", "/campaigns/templates/t1",
                              template("Hi {{ phone }}", subject="{{ points }}"))  # fmt: skip
    fields = {f["field"]: f["message"] for f in unknown.body["error"]["fields"]}
    assert unknown.status == 400
    assert "unknown variable(s) phone" in fields["channels.sms.en.body"]
    assert "unknown variable(s) points" in fields["channels.sms.zh.subject"]
    one_language = {"channels": {"sms": {"zh": {"body": "你好"}}}}
    missing = shop.suite.call("PUT", "/campaigns/templates/t1", one_language)
    assert missing.status == 400
    assert missing.body["error"]["fields"] == [
        {"field": "channels.sms.en", "message": "Field required"}]  # fmt: skip
    assert shop.suite.call("GET", "/campaigns/templates/t1").status == 404  # nothing stored


@pytest.mark.parametrize(("body", "named"), [
    # jinja folded this constant while compiling the check: the process froze for minutes
    ("{% if (9**(9**9)) > 1 %}!{% endif %}", "`**`"),
    ("{{ 'x' * 100000000 }}", "`*`"),
    ("{{ '%999999999s' % name }}", "`%`"),
    ("{{ name | center(1000000000) }}", "the filter center"),
    ("{% set a = name ~ name %}{% set a = a ~ a %}{{ a }}", "`{% set %}`"),
    ("{% for i in range(100000) %}x{% endfor %}", "calling a function"),
    ("{% for a in products %}{% for b in products %}{% for c in products %}"
     "{% endfor %}{% endfor %}{% endfor %}", "2 deep"),
    ("{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}", "macros"),
    ("{{ name.upper() }}", "calling a function"),
])  # fmt: skip
def test_what_could_make_a_message_of_any_size_is_refused_at_once(
    shop: Shop, body: str, named: str
) -> None:
    # Refused by the grammar, which runs before jinja compiles (and so folds) anything.
    out = shop.suite.call("PUT", "/campaigns/templates/t-big", template(body))
    assert out.status == 400, out.body
    fields = {f["field"]: f["message"] for f in out.body["error"]["fields"]}
    assert named in fields["channels.sms.zh.body"]


def test_what_a_marketer_writes_is_allowed(shop: Shop) -> None:
    body = (
        "{% if coupon %}{{ coupon.code | upper }} {{ coupon.description | default('') }}"
        "{% endif %}{% for p in products %}{{ loop.index }}. {{ p.product | truncate(20) }}"
        "{% for c in p.category %}{{ c }}{% endfor %}{% endfor %} {{ products | length - 1 }}"
        " {{ name ~ '!' if name else '' }}{% if products[0] is defined %}.{% endif %}"
    )
    assert shop.suite.call("PUT", "/campaigns/templates/t-ok", template(body)).status == 200


def test_a_stored_template_the_grammar_refuses_fails_its_message_without_computing() -> None:
    # Stored before the check: the sandbox refuses the operator when it renders (and jinja
    # does not fold it when it compiles).
    from crm.campaigns.models import MessageChannel
    from crm.campaigns.templates import MessageTemplate, RenderFailed, render

    stored = MessageTemplate.model_validate(template("{% if (9**(9**9)) > 1 %}!{% endif %}"))
    with pytest.raises(RenderFailed, match=r"\*\* is not allowed"):
        render(stored, MessageChannel.SMS, "zh", {"name": "张*"})


class FakeCoupons:
    def __init__(self) -> None:
        self.issued: dict[tuple[str, str], IssuedCoupon] = {}

    def issue(self, offer_id: str, customer_id: str, issued_by: str) -> IssuedCoupon:
        key = (offer_id, issued_by)
        if key not in self.issued:
            self.issued[key] = IssuedCoupon(
                code=f"C{len(self.issued) + 1:04d}", offer_id=offer_id, description="满100减20",
                expires_at=datetime(2026, 12, 31, tzinfo=UTC),
            )  # fmt: skip
        return self.issued[key]


def test_coupons_products_and_the_unsubscribe_link_render(shop: Shop) -> None:
    body = (
        "{{ name }}: {{ coupon.code }} ({{ coupon.description }}) "
        "{% for p in products %}[{{ p.product }}]{% endfor %} {{ unsubscribe_url }}"
    )
    assert shop.suite.call("PUT", "/campaigns/templates/promo", template(body)).status == 200
    dispatcher = root().campaign_dispatch
    coupons = FakeCoupons()
    dispatcher._coupons = coupons
    dispatcher._recommender = lambda cid: [{"product": "p-9", "category": "tea", "reason": "r"}]
    cid = shop.customer("marketing_sms")
    request = shop.request(cid, template_id="promo", coupon_offer_id="offer-1")
    assert dispatcher.dispatch(request).status == "sent"
    assert dispatcher.dispatch(request).status == "sent"
    [entry] = shop.outbox(cid)
    assert entry["body"].startswith("张*: C0001 (满100减20) [p-9] https://shop.example/unsub")
    assert f"?c={cid}&p=marketing_sms&t=" in entry["body"]
    assert list(coupons.issued) == [("offer-1", request.dispatch_key)]


def test_a_message_that_shows_no_coupon_issues_none(shop: Shop) -> None:
    # A send's variant whose template prints no coupon took a code, and the offer's budget,
    # for every message it sent.
    plain = template("{{ name }}，新品上架！{{ unsubscribe_url }}")
    assert shop.suite.call("PUT", "/campaigns/templates/plain", plain).status == 200
    dispatcher = root().campaign_dispatch
    coupons = FakeCoupons()
    dispatcher._coupons = coupons
    cid = shop.customer("marketing_sms")
    request = shop.request(cid, template_id="plain", coupon_offer_id="offer-1")
    assert dispatcher.dispatch(request).status == "sent"
    assert coupons.issued == {}
    [entry] = shop.outbox(cid)
    assert entry["body"].startswith("张*，新品上架！")


def test_a_template_that_fails_at_render_fails_that_message_only(shop: Shop) -> None:
    needs_coupon = template("{{ name }}: {{ coupon.code }}")
    assert shop.suite.call("PUT", "/campaigns/templates/promo", needs_coupon).status == 200
    dispatcher = root().campaign_dispatch
    first, second = shop.customer("marketing_sms"), shop.customer("marketing_sms")
    # No offer on the request: `coupon` is None and has no code.
    out = dispatcher.dispatch(shop.request(first, template_id="promo"))
    assert out.status == "failed"
    assert out.reason is not None
    assert "code" in out.reason
    # An offer the coupon issuer (campaigns: S, root().coupons) does not know.
    no_offer = dispatcher.dispatch(shop.request(second, template_id="promo",
                                                coupon_offer_id="offer-1"))  # fmt: skip
    assert (no_offer.status, no_offer.reason) == (
        "failed",
        "coupon not issued: no coupon offer offer-1",
    )
    sandboxed = template("{{ name.__class__.__mro__ }}")
    assert shop.suite.call("PUT", "/campaigns/templates/escape", sandboxed).status == 200
    escaped = dispatcher.dispatch(shop.request(first, step="s-3", template_id="escape"))
    assert escaped.status == "failed"
    ok = dispatcher.dispatch(shop.request(second, step="s-2"))
    assert ok.status == "sent"
    third = shop.customer("marketing_sms")
    unknown = dispatcher.dispatch(shop.request(third, template_id="gone"))
    assert (unknown.status, unknown.reason) == ("failed", "unknown template gone")
    counts = dispatcher.campaign_counts("camp-1")["-"]
    assert (counts.failed, counts.sent) == (4, 1)
    # Failures took no slot under the caps.
    assert sum(shop.caps(second)["weeks"].values()) == 1


def test_the_customers_language_and_real_recommendations(shop: Shop) -> None:
    body = {
        "zh": {"body": "你好 {{ products | length }}"},
        "en": {"body": "Hi {{ products | length }}"},
    }
    assert shop.suite.call("PUT", "/campaigns/templates/lang",
                           {"channels": {"sms": body}}).status == 200  # fmt: skip
    english = shop.customer("marketing_sms", locale="en-US")
    out = root().campaign_dispatch.dispatch(shop.request(english, template_id="lang"))
    assert out.status == "sent"
    # Segments' recommendations, through its public interface: no run yet, none.
    assert [e["body"] for e in shop.outbox(english)] == ["Hi 0"]


def test_a_coupon_prints_its_code_and_nothing_prints_none_or_a_structure(shop: Shop) -> None:
    """A marketer's first try, {{ coupon }}, texted customers the issuer's dict, and 'None'
    where the send had no offer."""
    dispatcher = root().campaign_dispatch
    dispatcher._coupons = FakeCoupons()
    assert shop.suite.call("PUT", "/campaigns/templates/promo",
                           template("券 {{ coupon }}")).status == 200  # fmt: skip
    cid = shop.customer("marketing_sms")
    sent = dispatcher.dispatch(shop.request(cid, template_id="promo", coupon_offer_id="offer-1"))
    assert sent.status == "sent"
    assert [e["body"] for e in shop.outbox(cid)] == ["券 C0001"]
    without = dispatcher.dispatch(shop.request(shop.customer("marketing_sms"), template_id="promo"))
    assert without.status == "failed", without
    assert "printed nothing (None)" in str(without.reason)
    listed = template("{{ products }}")
    assert shop.suite.call("PUT", "/campaigns/templates/listed", listed).status == 200
    fresh = shop.customer("marketing_sms")  # (cid is capped for today)
    structure = dispatcher.dispatch(shop.request(fresh, template_id="listed"))
    assert structure.status == "failed"
    assert "a list or a mapping" in str(structure.reason)
