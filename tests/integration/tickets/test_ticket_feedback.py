"""Complaint and after-sales tickets about a product reach product feedback: their category
and risk keywords, by SKU and by product category, counted once with the ticket."""

from __future__ import annotations

from typing import Any

from crm.tickets.feedback import FEEDBACK_CATEGORIES
from tests.integration.tickets.conftest import Desk

PERIOD = "2026-11"  # the desk's clock: tickets open in November 2026


def feedback(desk: Desk, **query: str) -> dict[str, Any]:
    reply = desk.suite.call("GET", "/feedback/products", query={**query, "period": PERIOD},
                            role="analyst")  # fmt: skip
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def test_complaints_about_a_sku_count_their_category_and_risk_keywords(desk: Desk) -> None:
    cid = desk.customer("fb-1")
    dress: dict[str, Any] = {
        "sku": "SKU-DRESS-9",
        "product_category": "dresses",
        "order_id": "o-77",
    }
    opened = [
        desk.open(cid, "尺码偏小，能换大一号吗", **dress),
        desk.open(cid, "尺码偏小，穿不上", **dress),
        desk.open(cid, "衣服质量太差，洗一次就开线了，我要打12315投诉", **dress),
        # A question about the same dress is no feedback on it.
        desk.open(cid, "这款连衣裙什么时候补货？还有M码吗", **dress),
        # A complaint about another product of the category.
        desk.open(cid, "尺码偏小，退货", sku="SKU-DRESS-3", product_category="dresses"),
        # A complaint without a product counts nowhere.
        desk.open(cid, "尺码偏小，穿不上"),
    ]
    assert [r.status for r in opened] == [201] * 6, [r.body for r in opened]
    categories = [r.body["category"] for r in opened]
    assert categories[:3] == ["size_fit", "size_fit", "quality"]
    assert categories[3] not in FEEDBACK_CATEGORIES
    assert opened[0].body["sku"] == "SKU-DRESS-9"
    assert desk.ticket(opened[0].body["ticket_id"])["product_category"] == "dresses"

    by_sku = feedback(desk, sku="SKU-DRESS-9")
    assert by_sku["total"] == 3
    assert by_sku["complaint_categories"] == [
        {"name": "size_fit", "count": 2}, {"name": "quality", "count": 1},
    ]  # fmt: skip
    assert by_sku["risk_keywords"] == [{"name": "12315", "count": 1}]
    by_category = feedback(desk, category="dresses")
    assert by_category["total"] == 4
    assert by_category["complaint_categories"][0] == {"name": "size_fit", "count": 3}


def test_after_sales_cases_and_tickets_add_up_for_the_sku(desk: Desk) -> None:
    cid = desk.customer("fb-2")
    case = {"kind": "return", "order_id": "o-88", "customer_id": cid, "reason": "size_too_small",
            "amount": "199.00", "sku": "SKU-COAT-1", "product_category": "coats"}  # fmt: skip
    out = desk.suite.call("POST", "/aftersales", case, role="customer", customer_id=cid)
    assert out.status == 201, out.body
    ticket = desk.open(cid, "退货退款什么时候到账？", sku="SKU-COAT-1", product_category="coats",
                       order_id="o-88")  # fmt: skip
    assert ticket.status == 201
    assert ticket.body["category"] in FEEDBACK_CATEGORIES
    coat = feedback(desk, sku="SKU-COAT-1")
    assert coat["total"] == 2
    assert coat["return_reasons"] == [{"name": "size_too_small", "count": 1}]
    assert coat["complaint_categories"] == [{"name": ticket.body["category"], "count": 1}]


def test_a_bad_sku_is_a_400_and_counts_nothing(desk: Desk) -> None:
    cid = desk.customer("fb-3")
    bad = desk.open(cid, "尺码偏小", sku="SKU with spaces", product_category="dresses")
    assert bad.status == 400
    assert "sku" in str(bad.body)
    assert feedback(desk, category="dresses")["total"] == 0


def test_a_category_is_named_as_the_order_events_name_it(desk: Desk) -> None:
    """A shop's categories are Chinese as often as not: after-sales cases, tickets and the
    feedback read take the events' Category, so 母婴 is counted and asked for as tea is."""
    cid = desk.customer("fb-4")
    case = {"kind": "return", "order_id": "o-99", "customer_id": cid, "reason": "defective",
            "amount": "89.00", "sku": "SKU-MILK-1", "product_category": " 母婴 "}  # fmt: skip
    out = desk.suite.call("POST", "/aftersales", case, role="customer", customer_id=cid)
    assert out.status == 201, out.body
    assert out.body["product_category"] == "母婴"  # trimmed as the events' categories are
    ticket = desk.open(cid, "奶粉罐子漏了，质量太差", sku="SKU-MILK-1", product_category="母婴")
    assert ticket.status == 201, ticket.body
    assert desk.ticket(ticket.body["ticket_id"])["product_category"] == "母婴"

    baby = feedback(desk, category="母婴")
    assert (baby["scope"], baby["value"]) == ("category", "母婴")
    assert baby["total"] == 2
    assert baby["return_reasons"] == [{"name": "defective", "count": 1}]
    assert feedback(desk, category="Home & Garden")["total"] == 0  # a name with spaces is asked

    # The same limits everywhere: 64 characters, no control characters, not only spaces.
    for bad in ("x" * 65, "母\x01婴", " 母婴", "   "):
        query = {"category": bad, "period": PERIOD}
        reply = desk.suite.call("GET", "/feedback/products", query=query, role="analyst")
        assert reply.status == 400, bad
        assert [f["field"] for f in reply.body["error"]["fields"]] == ["category"]
    # 64 as sent, spaces around included, as the document's maxLength counts them.
    for bad in ("x" * 65, "母\x01婴", "   ", " " + "x" * 64):
        refused = desk.suite.call("POST", "/aftersales", {**case, "product_category": bad},
                                  role="customer", customer_id=cid)  # fmt: skip
        assert refused.status == 400, bad
        assert desk.open(cid, "质量太差", sku="SKU-MILK-1", product_category=bad).status == 400
    assert feedback(desk, category="母婴")["total"] == 2  # the refused ones counted nothing
