"""The planner's fit: every customer it is given (no sample), on sufficient statistics whose
fast likelihood is the textbook one, and a Gamma-Gamma without a finite mean refused."""

from __future__ import annotations

import csv
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from crm.segments.fitting import (
    DAY_GRID,
    RepeatData,
    SpendData,
    _bgnbd_objective,
    _gamma_gamma_objective,
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_segment_model,
    gamma_gamma_log_likelihood,
)
from crm.segments.scoring import Features

NOW = datetime(2026, 11, 23, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[2] / "data" / "cdnow_summary.csv"


def cdnow() -> dict[str, np.ndarray]:
    with DATA.open() as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("x", "t_x", "T", "zbar")}


def base(size: int, seed: int = 3) -> list[Features]:
    """Customers in days: BG/NBD's story with CDNOW's parameters, spend ~ Gamma-Gamma."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(0.24, 1 / 30.0, size), rng.beta(0.8, 2.4, size)
    age = rng.uniform(30, 700, size)
    x, t_x, t = np.zeros(size), np.zeros(size), np.zeros(size)
    alive = np.ones(size, dtype=bool)
    for _ in range(60):
        t = t + rng.exponential(1 / lam)
        buying = alive & (t < age)
        x[buying] += 1
        t_x[buying] = t[buying]
        alive &= ~(buying & (rng.random(size) < p))
    spend = rng.gamma(
        6.0 * np.maximum(x, 1), 1 / (rng.gamma(3.7, 1 / 15.0, size) * np.maximum(x, 1))
    )
    return [Features(customer_id=f"c{i:05d}", order_count=int(x[i]) + 1, frequency=float(x[i]),
                     recency=float(t_x[i]), age=float(age[i]),
                     days_since_last=float(age[i] - t_x[i]),
                     monetary=float(spend[i]), total_spend=float(spend[i] * (x[i] + 1)),
                     recent_orders=0, baseline_rate=0.0)
            for i in range(size)]  # fmt: skip


def test_the_planner_fits_every_customer_it_is_given() -> None:
    customers = base(20_000)
    model = fit_segment_model("run", NOW, customers)
    assert model.sample_size == 20_000
    assert model.bgnbd is not None
    assert model.bgnbd.sample_size == 20_000  # no sample, however large the base
    assert model.gamma_gamma is not None
    assert model.gamma_gamma.sample_size == sum(f.frequency > 0 for f in customers)
    # The same as fitting the arrays on the day grid directly.
    x = np.array([f.frequency for f in customers])
    direct = fit_bgnbd(x, [f.recency for f in customers], [f.age for f in customers],
                       grid=DAY_GRID)  # fmt: skip
    assert model.bgnbd.r == pytest.approx(direct.r, rel=1e-12)
    assert model.bgnbd.a == pytest.approx(direct.a, rel=1e-12)
    # ... and near the truth it was drawn from: a fit on all 20k, not a few thousand.
    assert model.bgnbd.r == pytest.approx(0.24, rel=0.1)
    assert model.bgnbd.alpha == pytest.approx(30.0, rel=0.15)


def test_the_fast_likelihoods_are_the_textbook_ones() -> None:
    data = cdnow()
    x, t_x, T, m = data["x"], data["t_x"], data["T"], data["zbar"]
    stats = RepeatData.of(x, t_x, T)
    for params in ([0.243, 4.414, 0.793, 2.426], [1.3, 0.4, 5.0, 0.2], [0.01, 80.0, 0.05, 9.0]):
        fast = -_bgnbd_objective(np.log(params), stats)[0]
        plain = float(np.sum(bgnbd_log_likelihood(params, x, t_x, T)))
        assert fast == pytest.approx(plain, rel=1e-12)
    buyers = x > 0
    spend = SpendData.of(x[buyers], m[buyers])
    for params in ([6.25, 3.74, 15.44], [0.3, 12.0, 0.5]):
        fast = -_gamma_gamma_objective(np.log(params), spend)[0]
        plain = float(np.sum(gamma_gamma_log_likelihood(params, x[buyers], m[buyers])))
        assert fast == pytest.approx(plain, rel=1e-12)


def test_a_spend_without_a_finite_mean_gives_no_lifetime_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(1, 4, 5000).astype(float)
    # nu ~ Gamma(q = 0.6): the population's mean order value is infinite.
    nu = rng.gamma(0.6, 1.0, 5000)
    m = rng.gamma(5.0 * x, 1 / (nu * x))
    with pytest.raises(ValueError, match="no finite mean"):
        fit_gamma_gamma(x, m)
    customers = [Features(customer_id=f"c{i}", order_count=int(x[i]) + 1, frequency=x[i],
                          recency=10.0, age=100.0, days_since_last=90.0, monetary=float(m[i]),
                          total_spend=float(m[i]), recent_orders=0, baseline_rate=0.0)
                 for i in range(5000)]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        model = fit_segment_model("run", NOW, customers)
    assert model.gamma_gamma is None
    assert any("Gamma-Gamma could not be fitted" in r.getMessage() for r in caplog.records)
