from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from crm.profiles.models import Aggregates, BehaviourAggregates, OrderAggregates, TagState
from crm.profiles.records import ProfileRecord
from crm.segments.fitted import BgNbdParams, RfmThresholds, SegmentModel
from crm.segments.models import Rule
from crm.segments.rules import matches
from crm.segments.scoring import features_of, rfm_segment, score_page

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def customer(orders: int, first_days: float, last_days: float, spend: str,
             months: dict[str, int] | None = None, **extra: object) -> ProfileRecord:  # fmt: skip
    aggregates = Aggregates(
        orders=OrderAggregates(
            order_count=orders, total_spend=Decimal(spend),
            first_order_at=NOW - timedelta(days=first_days),
            last_order_at=NOW - timedelta(days=last_days), orders_by_month=months or {},
        )
    )  # fmt: skip
    return ProfileRecord(customer_id="c", created_at=NOW, updated_at=NOW, aggregates=aggregates,
                         **extra)  # fmt: skip


MODEL = SegmentModel(
    run_id="r", fitted_at=NOW, sample_size=100,
    rfm=RfmThresholds(recency_days=[10, 30, 90, 180], frequency=[1, 2, 3, 5],
                      monetary=[100, 300, 800, 2000]),
    bgnbd=BgNbdParams(r=0.24, alpha=30.0, a=0.79, b=2.43, log_likelihood=-1, sample_size=100),
)  # fmt: skip


def test_features_follow_the_paper_in_days() -> None:
    f = features_of(customer(4, 300, 20, "1000"), NOW)
    assert f is not None
    assert (f.frequency, round(f.recency), round(f.age), round(f.days_since_last)) == (
        3.0, 280, 300, 20)  # fmt: skip
    assert features_of(customer(0, 0, 0, "0"), NOW) is None


def test_a_recent_frequent_big_spender_is_a_champion_and_high_value() -> None:
    f = features_of(customer(8, 400, 3, "5000"), NOW)
    assert f is not None
    scores = score_page([f], MODEL, NOW)["c"]
    assert (scores.recency_score, scores.frequency_score, scores.monetary_score) == (5, 5, 5)
    assert scores.rfm_segment == "champions"
    assert scores.tier == "high_value"
    assert scores.p_alive is not None
    assert scores.p_alive > 0.9


def test_new_dormant_and_churn_tiers() -> None:
    new = features_of(customer(1, 10, 10, "80"), NOW)
    dormant = features_of(customer(3, 700, 300, "500"), NOW)
    # Bought every month for a year, nothing in the last two.
    months = {f"2026-{m:02d}": 1 for m in range(1, 10)} | {"2025-12": 1, "2025-11": 1}
    slipping = features_of(customer(11, 390, 70, "900", months), NOW)
    assert new
    assert dormant
    assert slipping
    scores = score_page([new], MODEL, NOW)["c"]
    assert scores.tier == "new"
    assert score_page([dormant], MODEL, NOW)["c"].tier == "dormant"
    slipping_scores = score_page([slipping], MODEL, NOW)["c"]
    assert slipping_scores.churn_warning
    assert slipping_scores.tier == "churn_risk"


def test_rfm_segment_table() -> None:
    assert rfm_segment(5, 1, 1) == "new"
    assert rfm_segment(1, 5, 5) == "cant_lose"
    assert rfm_segment(2, 4, 2) == "at_risk"
    assert rfm_segment(1, 1, 1) == "lost"


def test_a_model_that_gives_no_finite_value_gives_no_score() -> None:
    odd = MODEL.model_copy(update={"bgnbd": BgNbdParams(
        r=1e308, alpha=1e-308, a=1e308, b=1e-308, log_likelihood=-1, sample_size=1)})  # fmt: skip
    f = features_of(customer(3, 100, 10, "100"), NOW)
    assert f is not None
    scores = score_page([f], odd, NOW)["c"]  # no RuntimeWarning either (pyproject.toml)
    assert scores.p_alive is None or 0 <= scores.p_alive <= 1


def test_rules() -> None:
    tagged = customer(2, 100, 40, "1200", tags={"vip": TagState(kind="manual", added_at=NOW,
                                                                  added_by="m")})  # fmt: skip
    tagged.aggregates = tagged.aggregates.model_copy(update={"behaviour": BehaviourAggregates(
        last_event_at={"order_paid": NOW - timedelta(days=40)})})  # fmt: skip
    dormant_30 = Rule.model_validate({"all": [{"no_event": "order_paid", "days": 30}]})
    big = Rule.model_validate({"all": [{"field": "orders.total_spend", "op": "gte", "value": 1000},
                                       {"has_tag": "vip"}]})  # fmt: skip
    city = {"field": "attributes.city", "op": "eq", "value": "杭州"}
    few = {"field": "orders.order_count", "op": "lt", "value": 3}
    either = Rule.model_validate({"any": [city, few]})
    assert matches(tagged, dormant_30, NOW)
    assert not matches(tagged, dormant_30, NOW - timedelta(days=20))
    assert matches(tagged, big, NOW)
    assert matches(tagged, either, NOW)
