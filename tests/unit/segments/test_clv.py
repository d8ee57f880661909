"""BG/NBD and Gamma-Gamma against the published CDNOW fits and against `lifetimes`."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest

from crm.segments.clv import BgNbd, customer_lifetime_value
from crm.segments.fitting import fit_bgnbd, fit_gamma_gamma

DATA = Path(__file__).resolve().parents[2] / "data" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    with DATA.open() as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("x", "t_x", "T", "zbar")}


@pytest.fixture(scope="module")
def bgnbd(cdnow: dict[str, np.ndarray]) -> BgNbd:
    return fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


def test_bgnbd_matches_the_published_cdnow_fit(bgnbd: BgNbd) -> None:
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", section 5.
    assert bgnbd.r == pytest.approx(0.243, abs=0.001)
    assert bgnbd.alpha == pytest.approx(4.414, abs=0.005)
    assert bgnbd.a == pytest.approx(0.793, abs=0.002)
    assert bgnbd.b == pytest.approx(2.426, abs=0.005)
    assert bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_gamma_gamma_matches_the_published_cdnow_fit(cdnow: dict[str, np.ndarray]) -> None:
    # Fader & Hardie (2013), "The Gamma-Gamma model of monetary value".
    gg = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    assert gg.p == pytest.approx(6.25, abs=0.01)
    assert gg.q == pytest.approx(3.74, abs=0.01)
    assert gg.v == pytest.approx(15.44, abs=0.02)


def test_predictions_agree_with_lifetimes(cdnow: dict[str, np.ndarray], bgnbd: BgNbd) -> None:
    warnings.simplefilter("ignore")
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    frame = pd.DataFrame({"frequency": cdnow["x"], "recency": cdnow["t_x"], "T": cdnow["T"],
                          "monetary_value": cdnow["zbar"]})  # fmt: skip
    theirs = BetaGeoFitter().fit(frame["frequency"], frame["recency"], frame["T"])
    for name in ("r", "alpha", "a", "b"):
        assert getattr(bgnbd, name) == pytest.approx(theirs.params_[name], rel=2e-3)
    args = (cdnow["x"], cdnow["t_x"], cdnow["T"])
    np.testing.assert_allclose(
        bgnbd.p_alive(*args), theirs.conditional_probability_alive(*args), atol=2e-3
    )
    np.testing.assert_allclose(
        bgnbd.expected_purchases(39, *args),
        theirs.conditional_expected_number_of_purchases_up_to_time(39, *args),
        rtol=5e-3,
    )
    repeat = frame[frame["frequency"] > 0]
    gg_theirs = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    gg = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    np.testing.assert_allclose(
        gg.expected_order_value(repeat["frequency"], repeat["monetary_value"]),
        gg_theirs.conditional_expected_average_profit(
            repeat["frequency"], repeat["monetary_value"]
        ),
        rtol=2e-3,
    )
    # CLV over 12 months of ~4.35 weeks at 1% a month, as lifetimes computes it.
    ours = customer_lifetime_value(bgnbd, gg, *args, cdnow["zbar"], horizon_periods=12,
                                   period=30 / 7, discount_rate=0.01)  # fmt: skip
    clv_theirs = gg_theirs.customer_lifetime_value(
        theirs, frame["frequency"], frame["recency"], frame["T"], frame["monetary_value"],
        time=12, freq="W", discount_rate=0.01,
    )  # fmt: skip
    np.testing.assert_allclose(ours, clv_theirs, rtol=2e-2)


def test_p_alive_reads_like_the_paper(bgnbd: BgNbd) -> None:
    # Someone who bought often and recently is alive; the same frequency long ago is not.
    recent, lapsed = bgnbd.p_alive([10, 10], [38, 5], [39, 39])
    assert recent > 0.9 > 0.2 > lapsed
    assert bgnbd.p_alive([0], [0], [39])[0] == 1.0  # no repeat purchase: never seen to leave


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="recency"):
        fit_bgnbd([1], [5], [3])
    with pytest.raises(ValueError, match="repeat buyers"):
        fit_gamma_gamma([0, 1], [0, 10])


def test_the_analytic_gradients_match_finite_differences(cdnow: dict[str, np.ndarray]) -> None:
    from scipy.optimize import check_grad

    from crm.segments.fitting import (
        RepeatData,
        SpendData,
        _bgnbd_objective,
        _gamma_gamma_objective,
    )

    data = RepeatData.of(cdnow["x"], cdnow["t_x"], cdnow["T"]).scaled(30.0)
    for point in ([0.1, -0.3, 0.2, 0.5], [-1.2, 1.0, -0.4, 0.9], [0.0, 0.0, 0.0, 0.0]):
        at = np.array(point)
        error = check_grad(lambda p: _bgnbd_objective(p, data)[0],
                           lambda p: _bgnbd_objective(p, data)[1], at)  # fmt: skip
        assert error < 1e-4 * max(1.0, float(np.linalg.norm(_bgnbd_objective(at, data)[1])))
    repeat = cdnow["x"] > 0
    spend = SpendData.of(cdnow["x"][repeat], cdnow["zbar"][repeat]).scaled(30.0)
    for point in ([0.5, 0.2, 0.1], [1.8, 1.3, -0.7]):
        at = np.array(point)
        error = check_grad(lambda p: _gamma_gamma_objective(p, spend)[0],
                           lambda p: _gamma_gamma_objective(p, spend)[1], at)  # fmt: skip
        assert error < 1e-4 * max(1.0, float(np.linalg.norm(_gamma_gamma_objective(at, spend)[1])))


def test_sufficient_statistics_keep_every_customer(cdnow: dict[str, np.ndarray]) -> None:
    from crm.segments.fitting import RepeatData

    data = RepeatData.of(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert data.customers == cdnow["x"].size
    assert data.x.size + data.t_none.size < cdnow["x"].size  # duplicates collapsed


def test_a_fit_on_a_day_grid_matches_the_exact_fit(cdnow: dict[str, np.ndarray]) -> None:
    from crm.segments.fitting import RepeatData, on_grid

    exact = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    daily = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"], grid=1 / 7)  # CDNOW is in weeks
    for name in ("r", "alpha", "a", "b"):
        assert getattr(daily, name) == pytest.approx(getattr(exact, name), rel=5e-3)
    # The packed-key compression finds the same rows as rounding then comparing rows.
    packed = RepeatData.of(cdnow["x"], cdnow["t_x"], cdnow["T"], grid=1 / 7)
    rounded = RepeatData.of(cdnow["x"], on_grid(cdnow["t_x"], 1 / 7), on_grid(cdnow["T"], 1 / 7))
    assert packed.customers == rounded.customers == cdnow["x"].size
    np.testing.assert_allclose(packed.T, rounded.T)
    np.testing.assert_allclose(packed.weight, rounded.weight)
