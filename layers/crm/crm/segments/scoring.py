"""Scores of one customer: RFM quintiles, the classic RFM segments, churn warning, tiers.

Time is measured in days. BG/NBD and Gamma-Gamma inputs come from the order aggregates:
frequency = paid orders - 1, recency = last order - first order, T = now - first order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

import numpy as np
from aws_lambda_powertools import Logger

from crm.profiles import CustomerScores, ProfileRecord
from crm.segments.clv import BgNbd, GammaGamma, customer_lifetime_value
from crm.segments.fitted import RfmThresholds, SegmentModel

logger = Logger(child=True)

DAY = 86400.0
NEW_CUSTOMER_DAYS = 30
DORMANT_DAYS = 180
CHURN_WINDOW_MONTHS = 2  # "order frequency fell over the last two months"


@dataclass(frozen=True)
class Features:
    customer_id: str
    order_count: int
    frequency: float
    recency: float
    age: float
    days_since_last: float
    monetary: float
    total_spend: float
    recent_orders: int  # in the last two months
    baseline_rate: float  # orders per two months over the twelve before them


def _months_back(now: datetime, count: int) -> list[str]:
    year, month = now.year, now.month
    keys = []
    for _ in range(count):
        keys.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return keys


def features_of(record: ProfileRecord, now: datetime) -> Features | None:
    """None for a customer who never paid for an order (nothing to score on)."""
    orders = record.aggregates.orders
    if not orders.order_count or orders.first_order_at is None or orders.last_order_at is None:
        return None
    first, last = orders.first_order_at, orders.last_order_at
    months = _months_back(now, 14)
    recent = sum(orders.orders_by_month.get(m, 0) for m in months[:CHURN_WINDOW_MONTHS])
    before = sum(orders.orders_by_month.get(m, 0) for m in months[CHURN_WINDOW_MONTHS:])
    return Features(
        customer_id=record.customer_id,
        order_count=orders.order_count,
        frequency=float(orders.order_count - 1),
        recency=max((last - first).total_seconds() / DAY, 0.0),
        age=max((now - first).total_seconds() / DAY, (last - first).total_seconds() / DAY),
        days_since_last=max((now - last).total_seconds() / DAY, 0.0),
        monetary=float(orders.average_order_value),
        total_spend=float(orders.total_spend),
        recent_orders=recent,
        baseline_rate=before / 6.0,
    )


def rfm_thresholds(features: list[Features]) -> RfmThresholds:
    quantiles = [0.2, 0.4, 0.6, 0.8]

    def cuts(values: list[float]) -> list[float]:
        return [float(v) for v in np.quantile(np.asarray(values), quantiles)]

    return RfmThresholds(
        recency_days=cuts([f.days_since_last for f in features]),
        frequency=cuts([float(f.order_count) for f in features]),
        monetary=cuts([f.total_spend for f in features]),
    )


def _score(value: float, cuts: list[float], lower_is_better: bool = False) -> int:
    above = sum(value > c for c in cuts)  # 0..4
    return 5 - above if lower_is_better else 1 + above


def rfm_segment(r: int, f: int, m: int) -> str:
    if r >= 4 and f >= 4 and m >= 4:
        return "champions"
    if r >= 3 and f >= 4:
        return "loyal"
    if r >= 4 and f == 1:
        return "new"
    if r >= 4:
        return "potential_loyalists"
    if r == 3:
        return "promising" if f <= 2 else "need_attention"
    if r == 1 and f >= 4 and m >= 4:
        return "cant_lose"
    if f >= 3:
        return "at_risk"
    return "hibernating" if r == 2 else "lost"


def tier_of(f: Features, segment: str, m: int, p_alive: float | None, churn: bool) -> str:
    if f.order_count == 1 and f.age <= NEW_CUSTOMER_DAYS:
        return "new"
    if f.days_since_last > DORMANT_DAYS:
        return "dormant"
    if churn:
        return "churn_risk"
    if segment in ("champions", "loyal") or (m == 5 and (p_alive or 1.0) >= 0.5):
        return "high_value"
    if segment in ("potential_loyalists", "promising", "need_attention"):
        return "potential"
    return "regular"


@lru_cache(maxsize=4)
def _bgnbd(r: float, alpha: float, a: float, b: float) -> BgNbd | None:
    """The stored model, or None (no P(alive), expected orders or CLV) when its parameters are
    outside what scoring is tested on: refused once per model, not once per page."""
    try:
        return BgNbd(r, alpha, a, b)
    except ValueError as exc:
        logger.warning("BG/NBD model refused, scoring without it", extra={"reason": str(exc)})
        return None


@lru_cache(maxsize=4)
def _gamma_gamma(p: float, q: float, v: float) -> GammaGamma | None:
    try:
        return GammaGamma(p, q, v)
    except ValueError as exc:
        logger.warning("Gamma-Gamma model refused, no CLV", extra={"reason": str(exc)})
        return None


def score_page(
    features: list[Features], model: SegmentModel, now: datetime
) -> dict[str, CustomerScores]:
    """Scores of a page of customers, the probabilistic parts computed as arrays."""
    if not features:
        return {}
    x = np.array([f.frequency for f in features])
    t_x = np.array([f.recency for f in features])
    age = np.array([f.age for f in features])
    monetary = np.array([f.monetary for f in features])
    p_alive = expected = clv = None
    bgnbd = (
        _bgnbd(model.bgnbd.r, model.bgnbd.alpha, model.bgnbd.a, model.bgnbd.b)
        if model.bgnbd
        else None
    )
    if bgnbd:
        p_alive = bgnbd.p_alive(x, t_x, age)
        expected = bgnbd.expected_purchases(90, x, t_x, age)
        g = model.gamma_gamma
        spend = _gamma_gamma(g.p, g.q, g.v) if g else None
        if spend:
            clv = customer_lifetime_value(bgnbd, spend, x, t_x, age, monetary)
    out = {}

    def finite(values: np.ndarray | None, i: int, digits: int) -> float | None:
        """A model that fits a small or odd sample badly may give inf or nan: no score then."""
        if values is None or not np.isfinite(values[i]):
            return None
        return round(float(values[i]), digits)

    for i, f in enumerate(features):
        r = _score(f.days_since_last, model.rfm.recency_days, lower_is_better=True)
        fs = _score(float(f.order_count), model.rfm.frequency)
        m = _score(f.total_spend, model.rfm.monetary)
        alive = finite(p_alive, i, 3)
        value = finite(clv, i, 2)
        fell = f.baseline_rate >= 0.5 and f.recent_orders < f.baseline_rate / 2
        churn = fell or (alive is not None and alive < model.p_alive_threshold)
        segment = rfm_segment(r, fs, m)
        out[f.customer_id] = CustomerScores(
            recency_score=r,
            frequency_score=fs,
            monetary_score=m,
            rfm_segment=segment,
            tier=tier_of(f, segment, m, alive, churn),
            p_alive=alive,
            expected_orders_90d=finite(expected, i, 3),
            clv_12m=None if value is None else Decimal(str(value)),
            churn_warning=churn,
            scored_at=now,
        )
    return out


def materially_changed(old: CustomerScores | None, new: CustomerScores) -> bool:
    """Worth a write: another segment, tier or score, or a probability or value that moved
    by more than noise (they drift a little every night as customers age)."""
    if old is None:
        return True
    if (old.rfm_segment, old.tier, old.churn_warning) != (new.rfm_segment, new.tier,
                                                          new.churn_warning):  # fmt: skip
        return True
    if (old.recency_score, old.frequency_score, old.monetary_score) != (
        new.recency_score, new.frequency_score, new.monetary_score,
    ):  # fmt: skip
        return True
    if old.p_alive is None or new.p_alive is None:
        if (old.p_alive is None) != (new.p_alive is None):
            return True
    elif abs(old.p_alive - new.p_alive) >= 0.05:
        return True
    if old.clv_12m is not None and new.clv_12m is not None:
        base = max(abs(old.clv_12m), Decimal(1))
        return abs(new.clv_12m - old.clv_12m) / base >= Decimal("0.1")
    return False
