"""The numbers a model scores with: BG/NBD's conditional expectation without scipy (against
scipy's hyp2f1 and against mpmath's values), finite scores for every model in range (a <= 1
included, where the textbook formula divides by zero), and a clear refusal out of range."""

from __future__ import annotations

import itertools
import logging
import warnings
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from scipy.special import hyp2f1

from crm.segments.clv import (
    BgNbd,
    GammaGamma,
    customer_lifetime_value,
    expected_purchases_if_alive,
)
from crm.segments.fitted import BgNbdParams, GammaGammaParams, RfmThresholds, SegmentModel
from crm.segments.scoring import Features, score_page

NOW = datetime(2026, 11, 23, tzinfo=UTC)


# E[X(t) | alive] = (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1;
# t/(alpha+T+t))], as the papers and lifetimes write it.
def scipy_form(t: float, x: float, T: float, r: float, alpha: float, a: float, b: float) -> float:
    z = t / (alpha + T + t)
    head = (a + b + x - 1) / (a - 1)
    return float(head * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)
                         * hyp2f1(r + x, b + x, a + b + x - 1, z)))  # fmt: skip


MODELS = [  # r, alpha (days), a, b
    (0.243, 30.9, 0.793, 2.426),  # CDNOW in days
    (0.243, 4.414, 0.793, 2.426),
    (2.0, 100.0, 0.3, 5.0),
    (0.05, 2.0, 1.5, 0.7),
    (5.0, 400.0, 3.0, 30.0),
    (0.5, 1.0, 0.9, 1.0),
    (0.01, 0.5, 0.05, 50.0),
    (1.0, 10.0, 1.0001, 3.0),  # a a hair above 1
    (0.8, 60.0, 10.0, 100.0),
    (0.3, 20.0, 0.3, 0.4),  # a + b < 1
]


def test_the_expectation_matches_scipys_hyp2f1_over_realistic_and_extreme_models() -> None:
    compared = 0
    for (r, alpha, a, b), t in itertools.product(MODELS, (1.0, 30.0, 90.0, 360.0)):
        x, T = np.meshgrid([0.0, 1, 3, 10, 50], [0.0, 1, 30, 365, 3000])
        ours = expected_purchases_if_alive(t, x, T, r, alpha, a, b)
        for value, xi, Ti in zip(ours.ravel(), x.ravel(), T.ravel(), strict=True):
            with np.errstate(all="ignore"):
                theirs = scipy_form(t, xi, Ti, r, alpha, a, b)
            # scipy's own error (against mpmath: up to 2e-10 here, ours 7e-14), more near
            # a = 1, where its form divides by a - 1.
            rel = max(5e-10, 2e-12 / abs(a - 1))
            assert value == pytest.approx(theirs, rel=rel), (t, xi, Ti, r, alpha, a, b)
            compared += 1
    assert compared == 1000


@pytest.mark.parametrize(
    ("case", "expected"),
    [  # mpmath at 50 digits (the Beta integral, or the limit a -> 1)
        ((360, 0, 0.0, 0.243, 30.9, 1.0, 2.426), 1.2815977125963397),  # a = 1 exactly
        ((90, 3, 10.0, 0.243, 30.9, 1.0, 2.426), 4.4558084229350269),
        ((360, 200, 0.0, 1.0, 10.0, 1.0001, 3.0), 730.9249308542462),  # scipy overflows
        ((360, 0, 0.0, 0.24, 0.01, 0.79, 2.4), 33.480359443408073),  # u = 36,000
        ((360, 5, 0.0, 0.24, 0.001, 0.5, 0.01), 5847.0171951845857),  # u = 360,000
        ((90, 0, 1.0, 0.24, 30.0, 0.3, 0.4), 0.47272343016405591),  # a + b < 1
        ((360, 2, 30.0, 0.5, 20.0, 40.0, 60.0), 2.4929551471362661),  # large a and b
    ],
)
def test_the_expectation_matches_high_precision_values_where_scipy_cannot(
    case: tuple[float, ...], expected: float
) -> None:
    t, x, T, r, alpha, a, b = case
    value = expected_purchases_if_alive(t, np.array([x]), np.array([T]), r, alpha, a, b)[0]
    assert value == pytest.approx(expected, rel=1e-11)


def test_a_model_with_a_at_or_below_one_scores_every_customer_finitely() -> None:
    x = np.array([0.0, 1, 2, 10, 200])
    t_x = np.array([0.0, 0.0, 29, 100, 2990])
    T = np.array([0.0, 400, 30, 365, 3000])
    m = np.array([0.0, 0.0, 10.0, 1e5, 3.0])
    for a in (1.0, 0.999999, 0.5, 1e-6):
        model = BgNbd(0.243, 30.9, a, 2.426)
        expected = model.expected_purchases(90, x, t_x, T)
        clv = customer_lifetime_value(model, GammaGamma(6.25, 3.74, 15.44), x, t_x, T, m)
        assert np.all(np.isfinite(expected))
        assert np.all(expected >= 0)
        assert np.all(np.isfinite(clv))
    # a = 1 is the limit of its neighbours, not a hole.
    at_one = BgNbd(0.243, 30.9, 1.0, 2.426).expected_purchases(90, x, t_x, T)
    near = BgNbd(0.243, 30.9, 1.0 + 1e-7, 2.426).expected_purchases(90, x, t_x, T)
    np.testing.assert_allclose(at_one, near, rtol=1e-6)


def test_every_model_in_range_gives_finite_scores_without_warnings() -> None:
    x = np.array([0.0, 0, 1, 2, 10, 200])
    T = np.array([0.0, 400, 0.5, 30, 365, 3000])
    t_x = np.array([0.0, 0, 0.2, 29, 100, 2990])
    m = np.array([0.0, 0, 50, 10, 1e5, 3])
    spend = GammaGamma(6.0, 3.7, 15.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow or 0/0 anywhere fails the test
        for r, alpha, a, b in itertools.product((1e-12, 1.0, 1e12), repeat=4):
            model = BgNbd(r, alpha, a, b)
            alive = model.p_alive(x, t_x, T)
            expected = model.expected_purchases(90, x, t_x, T)
            clv = customer_lifetime_value(model, spend, x, t_x, T, m)
            assert np.all((alive >= 0) & (alive <= 1)), (r, alpha, a, b)
            assert np.all(np.isfinite(expected) & (expected >= 0)), (r, alpha, a, b)
            assert np.all(np.isfinite(clv)), (r, alpha, a, b)


def test_p_alive_of_a_long_lapsed_heavy_buyer_is_zero_not_an_overflow() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alive = BgNbd(0.243, 0.01, 0.793, 2.426).p_alive([5000], [1], [3000])
    assert alive[0] == 0.0


@pytest.mark.parametrize(
    "params",
    [
        (1e308, 1e-308, 1e308, 1e-308),
        (0.2, 30.0, 0.0, 2.0),
        (0.2, float("nan"), 0.8, 2.0),
        (0.2, 30.0, -1.0, 2.0),
        (1e13, 30.0, 0.8, 2.0),
    ],
)
def test_a_model_out_of_range_is_refused(params: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match="out of range"):
        BgNbd(*params)


def test_gamma_gamma_without_a_finite_mean_gives_no_value_rather_than_inf() -> None:
    heavy = GammaGamma(p=0.1, q=0.8, v=10.0)  # q <= 1: the population's mean is infinite
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = heavy.expected_order_value([0, 1, 5], [0.0, 20.0, 30.0])
    assert np.isnan(values[0])  # a non-buyer: only the population's mean would do
    assert np.isnan(values[1])  # p x + q <= 1: no finite mean for this buyer either
    assert values[2] == pytest.approx(0.1 * (10.0 + 5 * 30.0) / (0.5 + 0.8 - 1))


def customer(name: str, orders: int, first_days: float, last_days: float) -> Features:
    return Features(customer_id=name, order_count=orders, frequency=float(orders - 1),
                    recency=first_days - last_days, age=first_days, days_since_last=last_days,
                    monetary=40.0, total_spend=40.0 * orders, recent_orders=0,
                    baseline_rate=0.0)  # fmt: skip


def model(bgnbd: BgNbdParams | None, gamma_gamma: GammaGammaParams | None) -> SegmentModel:
    cuts = [1.0, 2.0, 3.0, 4.0]
    rfm = RfmThresholds(recency_days=cuts, frequency=cuts, monetary=cuts)
    return SegmentModel(run_id="r", fitted_at=NOW, sample_size=100, rfm=rfm, bgnbd=bgnbd,
                        gamma_gamma=gamma_gamma)  # fmt: skip


def test_a_stored_model_with_a_below_one_scores_every_customer() -> None:
    stored = model(BgNbdParams(r=0.24, alpha=30.0, a=0.6, b=2.4, log_likelihood=-1,
                               sample_size=100),
                   GammaGammaParams(p=6.25, q=3.74, v=15.44, sample_size=50))  # fmt: skip
    page = [customer("new", 1, 0.0, 0.0), customer("loyal", 12, 700, 3),
            customer("gone", 4, 900, 800)]  # fmt: skip
    scores = score_page(page, stored, NOW)
    values = {}
    for name in ("new", "loyal", "gone"):
        assert scores[name].p_alive is not None
        assert scores[name].expected_orders_90d is not None
        value = scores[name].clv_12m
        assert value is not None
        assert value >= Decimal(0)
        values[name] = value
    assert values["loyal"] > values["gone"]


def test_a_stored_model_out_of_range_is_refused_once_and_scoring_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored = model(BgNbdParams(r=1e308, alpha=1e-308, a=1e308, b=1e-308, log_likelihood=-1,
                               sample_size=1),
                   GammaGammaParams(p=6.25, q=3.74, v=15.44, sample_size=50))  # fmt: skip
    with caplog.at_level(logging.WARNING):
        first = score_page([customer("a", 3, 100, 10)], stored, NOW)["a"]
        score_page([customer("b", 2, 50, 10)], stored, NOW)
    assert first.p_alive is None
    assert first.clv_12m is None
    assert first.rfm_segment  # RFM still scores
    refusals = [r for r in caplog.records if "BG/NBD model refused" in r.getMessage()]
    assert len(refusals) == 1


def test_scores_are_finite_for_a_first_order_this_second_and_a_heavy_buyer() -> None:
    stored = model(BgNbdParams(r=0.24, alpha=0.05, a=1.0, b=2.4, log_likelihood=-1,
                               sample_size=100),
                   GammaGammaParams(p=6.25, q=3.74, v=15.44, sample_size=50))  # fmt: skip
    page = [customer("now", 1, 0.0, 0.0), customer("heavy", 400, 30.0, 0.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score_page(page, stored, NOW)
    assert scores["now"].expected_orders_90d is not None
    assert scores["heavy"].clv_12m is not None
