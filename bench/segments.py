"""Segment benchmarks: model fits at 100k and 1M customers against `lifetimes`, scoring
throughput per worker, and the fan-out plan for 10M customers derived from it."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from crm.profiles.models import Aggregates, OrderAggregates
from crm.profiles.records import ProfileRecord
from crm.segments.fitting import fit_bgnbd, fit_gamma_gamma
from crm.segments.recompute import PROFILES_PER_SHARD
from crm.segments.records import BgNbdParams, GammaGammaParams, SegmentModel
from crm.segments.scoring import features_of, rfm_thresholds, score_page

TRUE = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.43}  # CDNOW-like, in weeks
WEEKS = 39.0


def simulate(n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
    """BG/NBD's own story: gamma purchase rates, beta dropout, a first purchase at week 0."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    T = rng.uniform(WEEKS / 2, WEEKS, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    for _ in range(200):
        t = t + rng.exponential(1 / np.maximum(lam, 1e-9))
        buying = alive & (t < T)
        if not buying.any():
            break
        x[buying] += 1
        t_x[buying] = t[buying]
        alive &= ~(buying & (rng.random(n) < p))
    # Gamma-Gamma's story: nu ~ Gamma(q, rate v), each purchase ~ Gamma(p, rate nu), so the mean
    # of x purchases ~ Gamma(p x, rate nu x).
    nu = rng.gamma(3.74, 1 / 15.44, n)
    spend = rng.gamma(6.25 * np.maximum(x, 1), 1 / (nu * np.maximum(x, 1)))
    return x, t_x, T, spend


@dataclass(frozen=True)
class FitResult:
    customers: int
    ours_s: float
    theirs_s: float
    ours: dict[str, float]
    theirs: dict[str, float]

    @property
    def worst_relative_gap(self) -> float:
        return max(abs(self.ours[k] - self.theirs[k]) / abs(self.theirs[k]) for k in self.ours)


def compare_fits(n: int, max_sample: int | None = None) -> FitResult:
    warnings.simplefilter("ignore")
    import pandas as pd
    from lifetimes import BetaGeoFitter

    x, t_x, T, _ = simulate(n)
    started = time.perf_counter()
    ours = fit_bgnbd(x, t_x, T, max_sample=max_sample)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = BetaGeoFitter().fit(pd.Series(x), pd.Series(t_x), pd.Series(T))
    theirs_s = time.perf_counter() - started
    return FitResult(
        n, ours_s, theirs_s,
        {"r": ours.r, "alpha": ours.alpha, "a": ours.a, "b": ours.b},
        {k: float(theirs.params_[k]) for k in ("r", "alpha", "a", "b")},
    )  # fmt: skip


def _record(i: int, rng: np.random.Generator, now: datetime) -> ProfileRecord:
    first = now - timedelta(days=float(rng.uniform(30, 700)))
    count = int(rng.integers(1, 12))
    last = first + (now - first) * float(rng.uniform(0, 1))
    months = {last.strftime("%Y-%m"): 1, first.strftime("%Y-%m"): count - 1 or 1}
    spend = Decimal(int(rng.integers(50, 5000)))
    orders = OrderAggregates(order_count=count, total_spend=spend, first_order_at=first,
                             last_order_at=last, orders_by_month=months)  # fmt: skip
    return ProfileRecord(customer_id=f"c{i}", created_at=first, updated_at=now,
                         aggregates=Aggregates(orders=orders))  # fmt: skip


def scoring_throughput(n: int = 20_000) -> float:
    """Profiles scored per second by one worker's CPU (features, RFM, P(alive), CLV)."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    rng = np.random.default_rng(3)
    records = [_record(i, rng, now) for i in range(n)]
    features = [f for r in records if (f := features_of(r, now)) is not None]
    x, t_x, T, spend = simulate(5000)
    fitted = fit_bgnbd(x, t_x * 7, T * 7)
    gg = fit_gamma_gamma(x, spend)
    model = SegmentModel(
        run_id="bench", fitted_at=now, sample_size=n, rfm=rfm_thresholds(features),
        bgnbd=BgNbdParams(r=fitted.r, alpha=fitted.alpha, a=fitted.a, b=fitted.b,
                          log_likelihood=fitted.log_likelihood, sample_size=fitted.sample_size),
        gamma_gamma=GammaGammaParams(p=gg.p, q=gg.q, v=gg.v, sample_size=gg.sample_size),
    )  # fmt: skip
    started = time.perf_counter()
    page = 300  # about one 1 MB DynamoDB scan page of profiles
    for start in range(0, len(records), page):
        chunk = records[start : start + page]
        score_page([f for r in chunk if (f := features_of(r, now)) is not None], model, now)
    return n / (time.perf_counter() - started)


def fan_out_plan(customers: int, cpu_per_s: float) -> dict[str, float]:
    # A worker also reads its shard: a parallel scan reads ~1 MB (~300 profiles) per request
    # at ~25 ms; scoring and reading overlap poorly in one thread, so they add up.
    read_per_s = 300 / 0.025
    per_worker = 1 / (1 / cpu_per_s + 1 / read_per_s)
    shards = math.ceil(customers / PROFILES_PER_SHARD)
    minutes_per_shard = PROFILES_PER_SHARD / per_worker / 60
    concurrency = 100  # the worker's MaximumConcurrency in template.yaml
    waves = math.ceil(shards / concurrency)
    return {
        "shards": shards,
        "per_worker_per_s": per_worker,
        "minutes_per_shard": minutes_per_shard,
        "concurrency": concurrency,
        "minutes": waves * minutes_per_shard,
    }
