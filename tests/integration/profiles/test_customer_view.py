"""A customer's token reads the customer's own projection: no staff tags, segments, scores,
behaviour counters or merged profile ids. Staff keep the 360° view."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from crm.composition import root
from crm.profiles import CustomerScores, ScoresWrite
from crm_local.harness import Suite

INTERNAL = ("tags", "segments", "scores", "merged_from", "behaviour", "pii")


@pytest.fixture
def marketed(suite: Suite) -> str:
    """A customer staff have tagged, merged, scored and segmented."""

    def upsert(*identities: tuple[str, str], **attrs: Any) -> str:
        body = {"identities": [{"channel": c, "external_id": x} for c, x in identities],
                "attributes": attrs}  # fmt: skip
        return str(suite.call("POST", "/customers", body).body["customer_id"])

    cid = upsert(("app", "cv-me"), name="陈一", phone="13912340000")
    young = upsert(("wechat", "cv-openid"))
    assert suite.call(
        "POST", "/customers", {"identities": [{"channel": "app", "external_id": "cv-me"},
                                              {"channel": "wechat", "external_id": "cv-openid"}]},
    ).body["merged"] == [young]  # fmt: skip
    tags = {"add": [{"name": "宝妈-奶粉敏感期", "kind": "scene"}, {"name": "price-sensitive"}]}
    assert suite.call("POST", f"/customers/{cid}/tags", tags, role="marketer").status == 200
    scores = CustomerScores(
        recency_score=5, frequency_score=4, monetary_score=5, rfm_segment="champions",
        tier="high_value", p_alive=0.93, expected_orders_90d=1.7, clv_12m=Decimal("1288.00"),
        churn_warning=False, scored_at=datetime(2026, 11, 20, tzinfo=UTC),
    )  # fmt: skip
    # As a segment run writes them: on the scores item, which profile saves never touch.
    root().profile_service.store.put_scores([ScoresWrite(cid, "run-1", scores,
                                                         ("rfm:champions",))])  # fmt: skip
    return cid


def test_a_customer_sees_none_of_the_internal_data(suite: Suite, marketed: str) -> None:
    mine = suite.call("GET", f"/customers/{marketed}", role="customer", customer_id=marketed)
    assert mine.status == 200
    body = mine.body
    assert body["view"] == "customer"
    for field in INTERNAL:
        assert field not in body, field
    text = repr(body)
    for internal in ("宝妈-奶粉敏感期", "marketer-1", "added_by", "champions", "high_value",
                     "clv_12m", "churn_warning"):  # fmt: skip
        assert internal not in text, internal
    # What is theirs they see in full.
    assert body["attributes"]["name"] == "陈一"
    assert body["attributes"]["phone"] == "+8613912340000"
    assert {i["channel"] for i in body["identities"]} == {"app", "phone", "wechat"}
    assert body["points_balance"] == 0
    assert "orders" in body
    assert "timeline" in body


def test_staff_see_every_internal_field(suite: Suite, marketed: str) -> None:
    for role in ("admin", "support_agent", "marketer"):
        body = suite.call("GET", f"/customers/{marketed}", role=role).body
        assert body["view"] == "staff"
        for field in INTERNAL:
            assert field in body, (role, field)
        assert body["tags"]["宝妈-奶粉敏感期"]["added_by"] == "marketer-1"
        assert body["segments"] == ["rfm:champions"]
        assert body["scores"]["tier"] == "high_value"
        assert len(body["merged_from"]) == 1


def test_a_customers_edit_answers_with_their_own_view(suite: Suite, marketed: str) -> None:
    version = suite.call("GET", f"/customers/{marketed}").body["version"]
    out = suite.call(
        "PATCH", f"/customers/{marketed}", {"version": version, "attributes": {"city": "宁波"}},
        role="customer", customer_id=marketed,
    )  # fmt: skip
    assert out.status == 200
    assert out.body["view"] == "customer"
    assert out.body["attributes"]["city"] == "宁波"
    for field in INTERNAL:
        assert field not in out.body, field


def test_the_openapi_document_says_which_view_comes_back(suite: Suite) -> None:
    doc = suite.call("GET", "/openapi.json", role=None).body
    schemas = doc["components"]["schemas"]
    for method in ("get", "patch"):
        schema = doc["paths"]["/customers/{customer_id}"][method]["responses"]["200"]["content"][
            "application/json"
        ]["schema"]
        assert schema["oneOf"] == [
            {"$ref": "#/components/schemas/Customer360"},
            {"$ref": "#/components/schemas/CustomerSelfView"},
        ]
        assert schema["discriminator"]["mapping"] == {
            "staff": "#/components/schemas/Customer360",
            "customer": "#/components/schemas/CustomerSelfView",
        }
    own = set(schemas["CustomerSelfView"]["properties"])
    assert not own & set(INTERNAL)
    assert set(INTERNAL) <= set(schemas["Customer360"]["properties"])
