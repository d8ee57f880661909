"""The rule grammar: fields from one catalogue, operators and values checked against each
field's kind, event types from the real set; and evaluation that never raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from crm.errors import validation_problems
from crm.profiles import EVENT_TYPES, Aggregates, CustomerScores, ProfileRecord
from crm.profiles.models import BehaviourAggregates, OrderAggregates, TagState
from crm.segments.fields import FIELDS, OPS_BY_KIND, FieldKind
from crm.segments.models import Rule, SegmentDefinition
from crm.segments.rules import matches

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def problems(rule: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        SegmentDefinition.model_validate({"name": "s1", "rule": rule})
    return {p.field: p.message for p in validation_problems(caught.value)}


def test_an_operator_that_does_not_fit_the_field_is_named_with_what_fits() -> None:
    found = problems({"all": [{"has_tag": "vip"},
                              {"field": "orders.categories", "op": "gt", "value": 1}]})  # fmt: skip
    assert found == {
        "rule.all.1.op": "op gt does not apply to orders.categories (a list of texts): use contains"
    }
    text = problems({"any": [{"field": "attributes.city", "op": "gte", "value": "杭州"}]})
    assert text == {"rule.any.0.op": "op gte does not apply to attributes.city (a text): use "
                                     "eq or ne or in"}  # fmt: skip
    flag = problems({"all": [{"field": "scores.churn_warning", "op": "lt", "value": True}]})
    assert list(flag) == ["rule.all.0.op"]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"field": "orders.total_spend", "op": "gte", "value": "lots"},
         "orders.total_spend is an amount of money: the value must be a number"),
        ({"field": "orders.total_spend", "op": "gte", "value": 1e-308},
         "orders.total_spend is an amount of money: the value takes at most 2 decimal places"),
        ({"field": "orders.total_spend", "op": "gte", "value": 1e300},
         "orders.total_spend takes values from 0 to 1000000000000"),
        ({"field": "scores.p_alive", "op": "lt", "value": 2},
         "scores.p_alive takes values from 0 to 1"),
        ({"field": "orders.order_count", "op": "gt", "value": 2.5},
         "orders.order_count is a count: the value takes a whole number"),
        ({"field": "orders.order_count", "op": "gt", "value": True},
         "orders.order_count is a count: the value must be a number"),
        ({"field": "scores.tier", "op": "eq", "value": "vip"},
         "scores.tier is one of: high_value, potential, new, dormant, churn_risk, regular"),
        ({"field": "scores.tier", "op": "in", "value": "dormant"},
         "in takes a list of 1 to 100 texts"),
        ({"field": "attributes.city", "op": "eq", "value": "x" * 101},
         "compare attributes.city with a text of 1 to 100 characters"),
        ({"field": "attributes.city", "op": "in", "value": ["a"] * 101},
         "in takes a list of 1 to 100 texts"),
        ({"field": "scores.churn_warning", "op": "eq", "value": "yes"},
         "scores.churn_warning is a flag: the value is true or false"),
        ({"field": "orders.days_since_last_order", "op": "gt", "value": -1},
         "orders.days_since_last_order takes values from 0 to 36500"),
    ],
)  # fmt: skip
def test_a_value_that_does_not_fit_the_field_is_refused(
    condition: dict[str, Any], message: str
) -> None:
    assert problems({"all": [condition]}) == {"rule.all.0.value": message}


def test_unknown_fields_and_event_types_and_empty_rules_are_refused() -> None:
    assert problems({"all": [{"field": "points", "op": "gt", "value": 1}]}) == {
        "rule.all.0.field": "not a field a rule can name (did you mean points_balance?): see "
        "the catalogue"
    }
    found = problems({"all": [{"no_event": "teleported", "days": 30}]})
    assert found == {"rule.all.0.no_event": "no_event is one of: " + ", ".join(sorted(EVENT_TYPES))}
    assert problems({}) == {"rule": "a rule needs at least one condition in all or any"}
    assert problems({"all": [], "any": []}) == {
        "rule": "a rule needs at least one condition in all or any"
    }
    assert list(problems({"all": [{"field": "orders.total_spend", "op": "between",
                                   "value": 1}]})) == ["rule.all.0.op"]  # fmt: skip
    assert list(problems({"all": [{}] * 21})) == ["rule.all"]


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "orders.total_spend", "op": "gte"},
        {"field": "orders.total_spend", "value": 1},
        {"field": "orders.total_spend", "op": "gte", "value": 1, "days": 3},
        {"has_tag": "vip", "op": "eq"},
        {"has_tag": "vip", "no_event": "order_paid", "days": 3},
        {"no_event": "order_paid"},
        {"no_event": "order_paid", "days": 3, "value": 1},
        {},
    ],
)
def test_a_condition_holds_one_form(condition: dict[str, Any]) -> None:
    found = problems({"any": [{"has_tag": "ok"}, condition]})
    assert list(found) == ["rule.any.1"]
    assert found["rule.any.1"].startswith("a ")


def test_a_stored_rule_reads_back_the_same_with_json_numbers_and_no_empty_keys() -> None:
    rule = Rule.model_validate({
        "all": [{"field": "orders.total_spend", "op": "gte", "value": 999.99},
                {"field": "scores.p_alive", "op": "lt", "value": 0.123456},
                {"field": "orders.order_count", "op": "gte", "value": 3.0},
                {"field": "points_balance", "op": "gte", "value": 1000},
                {"field": "scores.tier", "op": "in", "value": ["dormant", "churn_risk"]},
                {"has_tag": "vip"}],
        "any": [{"no_event": "order_paid", "days": 30},
                {"field": "scores.churn_warning", "op": "eq", "value": True}],
    })  # fmt: skip
    dumped = rule.model_dump(mode="json")
    assert dumped["all"][0] == {"field": "orders.total_spend", "op": "gte", "value": 999.99}
    assert dumped["all"][2]["value"] == 3
    assert dumped["all"][5] == {"has_tag": "vip"}
    assert Rule.model_validate(json.loads(json.dumps(dumped))) == rule
    # DynamoDB hands numbers back as Decimal.
    assert Rule.model_validate({"all": [{"field": "orders.total_spend", "op": "gte",
                                         "value": Decimal("999.99")}]}).all[0].value == Decimal(
        "999.99")  # fmt: skip


def profile(**extra: Any) -> ProfileRecord:
    return ProfileRecord(customer_id="c", created_at=NOW, updated_at=NOW, **extra)


def full_profile() -> ProfileRecord:
    orders = OrderAggregates(
        order_count=3, total_spend=Decimal("1200.50"), refund_count=1,
        refunded_amount=Decimal("30"), first_order_at=NOW - timedelta(days=200),
        last_order_at=NOW - timedelta(days=40), category_items={"tea": 2, "snacks": 1},
        products={"sku-1": "tea"},
    )  # fmt: skip
    behaviour = BehaviourAggregates(
        view_count=9, complaint_count=1, last_seen_at=NOW - timedelta(days=2),
        last_complaint_at=NOW - timedelta(days=5),
        last_event_at={"order_paid": NOW - timedelta(days=40)},
    )  # fmt: skip
    scores = CustomerScores(
        recency_score=3, frequency_score=4, monetary_score=5, rfm_segment="loyal",
        tier="potential", p_alive=0.8, expected_orders_90d=1.2, clv_12m=Decimal("800.00"),
        churn_warning=True, scored_at=NOW,
    )  # fmt: skip
    return profile(
        attributes={"city": "杭州", "gender": "female", "locale": "zh-CN",
                    "birthday": "1990-11-02", "preferred_store_id": "s1"},
        tags={"vip": TagState(kind="manual", added_at=NOW, added_by="m")},
        points_balance=1500, aggregates=Aggregates(orders=orders, behaviour=behaviour),
        scores=scores,
    )  # fmt: skip


SAMPLE_VALUES: dict[FieldKind, Any] = {
    FieldKind.NUMBER: 0.5, FieldKind.MONEY: 100, FieldKind.COUNT: 1, FieldKind.DAYS: 30,
    FieldKind.TEXT: "x", FieldKind.TEXT_LIST: "tea", FieldKind.FLAG: True,
}  # fmt: skip


def every_condition() -> list[dict[str, Any]]:
    out = []
    for name, spec in FIELDS.items():
        for op in OPS_BY_KIND[spec.kind]:
            value = SAMPLE_VALUES[spec.kind]
            if spec.choices:
                value = spec.choices[0]
            if op == "in":
                value = [value]
            low, high = spec.bounds
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = min(max(value, low), high)
            out.append({"field": name, "op": op, "value": value})
    return out


def test_every_field_with_every_operator_evaluates_on_any_profile() -> None:
    odd = profile(attributes={"city": 7, "birthday": "not a date", "gender": None},
                  scores=full_profile().scores.model_copy(  # type: ignore[union-attr]
                      update={"p_alive": float("nan"), "clv_12m": None}))  # fmt: skip
    conditions = every_condition()
    assert len(conditions) > 3 * len(FIELDS)
    outcomes = set()
    for condition in conditions:
        rule = Rule.model_validate({"all": [condition]})
        for record in (profile(), full_profile(), odd):
            outcomes.add(matches(record, rule, NOW))
    assert outcomes == {True, False}


def test_the_catalogue_reads_what_the_profile_holds() -> None:
    record = full_profile()

    def check(condition: dict[str, Any]) -> bool:
        return matches(record, Rule.model_validate({"all": [condition]}), NOW)

    assert check({"field": "points_balance", "op": "gte", "value": 1000})
    assert not check({"field": "points_balance", "op": "gte", "value": 1501})
    assert check({"field": "orders.categories", "op": "contains", "value": "tea"})
    assert not check({"field": "orders.categories", "op": "contains", "value": "shoes"})
    assert check({"field": "orders.products", "op": "contains", "value": "sku-1"})
    assert check({"field": "tags", "op": "contains", "value": "vip"})
    assert check({"field": "orders.total_spend", "op": "eq", "value": 1200.5})
    assert check({"field": "orders.average_order_value", "op": "gt", "value": 400})
    assert check({"field": "orders.days_since_last_order", "op": "gte", "value": 40})
    assert not check({"field": "orders.days_since_last_order", "op": "gt", "value": 40})
    assert check({"field": "attributes.birthday_month", "op": "eq", "value": 11})
    assert check({"field": "attributes.city", "op": "in", "value": ["上海", "杭州"]})
    assert check({"field": "attributes.gender", "op": "ne", "value": "male"})
    assert check({"field": "scores.churn_warning", "op": "eq", "value": True})
    assert not check({"field": "scores.churn_warning", "op": "ne", "value": True})
    assert check({"field": "scores.p_alive", "op": "gte", "value": 0.8})
    assert check({"field": "scores.clv_12m", "op": "lt", "value": 800.01})
    assert check({"field": "behaviour.days_since_last_complaint", "op": "lte", "value": 5})
    assert check({"no_event": "search", "days": 1})
    assert not check({"no_event": "order_paid", "days": 60})
    # No value is no match, whatever the operator: a customer never scored has no tier.
    assert not matches(profile(), Rule.model_validate(
        {"all": [{"field": "scores.tier", "op": "ne", "value": "dormant"}]}), NOW)  # fmt: skip
