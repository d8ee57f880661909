"""The pieces of erasure that need no AWS: how identifiers are recognised in stored values,
what an anonymised order keeps, how the lake's JSON Lines are rewritten, and the words an
automated decision is explained in."""

from __future__ import annotations

from crm.erasure import Identifiers
from crm.lake_personal_data import JsonLines
from crm.personal_data import DataSubject
from crm.profiles.personal_data import RETAINED_ORDERS, anonymised_order
from crm.segments.personal_data import explain

SUBJECT = DataSubject(
    customer_id="c0ffee",
    pseudonym="9" * 32,
    blind_indexes=("ab" * 32,),
    external_ids=("u-1",),
    merged_ids=("dead01",),
)


def test_identifiers_are_found_as_whole_tokens_anywhere_in_a_value() -> None:
    ids = Identifiers.of(SUBJECT)
    assert ids.find("CUST#c0ffee") == "customer_id"
    assert ids.find({"instance": "j-1#dead01#3"}) == "customer_id"  # a merged-away id
    assert ids.find(["x", {"nested": {"customer_pid": "9" * 32}}]) == "pseudonym"
    assert ids.find({f"ID#phone#{'ab' * 32}": 1}) == "blind_index"  # keys count too
    assert ids.find("order:u-1:order_paid") == "external_id"
    # Another customer whose id merely contains hers is not her.
    assert ids.find("u-10") is None
    assert ids.find("menu-1") is None
    assert ids.find("c0ffee1") is None
    assert ids.find({"n": 5, "ok": True}) is None


def test_customer_ids_only_leaves_channel_ids_aside() -> None:
    ids = Identifiers.of(SUBJECT, customer_ids_only=True)
    assert ids.find("u-1") is None
    assert ids.find("CAP#c0ffee") == "customer_id"


def test_an_anonymised_order_keeps_amounts_dates_and_items_and_nothing_of_her() -> None:
    item = {
        "PK": {"S": "LEDGER#order:o-9:order_paid"},
        "SK": {"S": "LEDGER"},
        "TPK": {"S": "EVT#c0ffee"},
        "TSK": {"S": "2026-11-23T08:00:00.000Z#order:o-9:order_paid"},
        "key": {"S": "order:o-9:order_paid"},
        "kind": {"S": "EVT"},
        "customer_id": {"S": "c0ffee"},
        "at": {"S": "2026-11-23T08:00:00Z"},
        "refunded": {"S": "0.00"},
        "body": {"M": {"type": {"S": "order_paid"}, "amount": {"S": "100.00"},
                       "order_id": {"S": "o-9"}, "channel": {"S": "app"},
                       "event_id": {"S": "e-1"}, "occurred_at": {"S": "2026-11-23"}}},
    }  # fmt: skip
    kept = anonymised_order(item, "anon-1")
    assert kept["customer_id"] == {"S": "anon-1"}
    assert "TPK" not in kept
    assert "TSK" not in kept
    assert set(kept["body"]["M"]) == {"type", "amount", "order_id", "occurred_at"}
    assert kept["retained_because"] == {"S": RETAINED_ORDERS}
    assert kept["PK"] == item["PK"]  # a redelivered order event still finds it
    assert Identifiers.of(SUBJECT).find(kept) is None


def test_json_lines_read_and_rewrite() -> None:
    fmt = JsonLines()
    assert fmt.handles("events/type=order_paid/dt=2026-11-23/part-1.jsonl")
    assert not fmt.handles("models/segments/run-1.json")
    body = b'{"a": 1}\n\n{"b": "\xe5\xbc\xa0"}\n{"c": 3}\n'
    assert fmt.rows(body) == [{"a": 1}, {"b": "张"}, {"c": 3}]
    assert fmt.rows(fmt.without(body, {0, 2})) == [{"b": "张"}]
    assert fmt.without(body, {0, 1, 2}) == b""


def test_each_automated_decision_is_explained_with_its_figures() -> None:
    scores = {"tier": "gold", "rfm_segment": "champions", "recency_score": 5,
              "frequency_score": 4, "monetary_score": 5, "p_alive": 0.93,
              "expected_orders_90d": 1.7, "clv_12m": "812.40", "churn_warning": False}  # fmt: skip
    words = explain(scores)
    assert set(words) == {"tier", "rfm", "churn", "clv"}
    assert "gold" in words["tier"]
    assert "champions" in words["rfm"]
    assert "recency 5" in words["rfm"]
    assert "0.93" in words["churn"]
    assert "not raised" in words["churn"]
    assert "812.40" in words["clv"]
    assert explain({}) == {}
