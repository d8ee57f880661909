"""Segment benchmarks: BG/NBD and Gamma-Gamma fits at 10k, 100k and 1M customers against
`lifetimes` (interleaved in one process, ratios with their spread), what the planner's exact
fit costs at 1M customers and on 10M customers' statistics, scoring throughput per worker,
and the fan-out plan for 10M customers derived from it.

Fits run with one BLAS thread (`OPENBLAS_NUM_THREADS=1`, as the planner runs in
template.yaml), set by `bench.run` before numpy loads: both sides' optimizers call BLAS on
tiny matrices, where threads cost far more than the work on a shared machine.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from crm.profiles.models import Aggregates, OrderAggregates
from crm.profiles.records import ProfileRecord
from crm.segments.fitting import (
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
)
from crm.segments.recompute import PROFILES_PER_SHARD
from crm.segments.records import BgNbdParams, GammaGammaParams, SegmentModel
from crm.segments.scoring import Features, features_of, rfm_thresholds, score_page
from crm_local.template import ROOT

T_ = TypeVar("T_")

TRUE = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.43}  # CDNOW-like, in weeks
WEEKS = 39.0


def simulate(n: int, seed: int = 1, weeks: float = WEEKS) -> tuple[np.ndarray, ...]:
    """BG/NBD's own story: gamma purchase rates, beta dropout, a first purchase at week 0,
    customers acquired over the second half of `weeks`."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    T = rng.uniform(weeks / 2, weeks, n)
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
class FitComparison:
    """One model fitted by us and by `lifetimes` on the same customers, `rounds` times, the
    two interleaved (A B, B A, ...) in one process; ratios are lifetimes' time over ours."""

    model: str
    customers: int
    ours_s: list[float]
    theirs_s: list[float]
    ours: dict[str, float]
    theirs: dict[str, float]
    ours_ll: float  # both parameter sets' log-likelihood, by our objective
    theirs_ll: float

    @property
    def ratios(self) -> list[float]:
        return [t / o for o, t in zip(self.ours_s, self.theirs_s, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def worst_relative_gap(self) -> float:
        return max(abs(self.ours[k] - self.theirs[k]) / abs(self.theirs[k]) for k in self.ours)


def _timed(run: Callable[[], T_]) -> tuple[float, T_]:
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


def compare_fits(n: int, rounds: int = 3) -> list[FitComparison]:
    """BG/NBD and Gamma-Gamma, ours against lifetimes, every customer (no sample)."""
    warnings.simplefilter("ignore")
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    x, t_x, T, spend = simulate(n)
    repeat = x > 0
    frequency, recency, age = pd.Series(x), pd.Series(t_x), pd.Series(T)
    buyers, values = pd.Series(x[repeat]), pd.Series(spend[repeat])
    runs: dict[str, list[Callable[[], Any]]] = {
        "BG/NBD": [lambda: fit_bgnbd(x, t_x, T),
                   lambda: BetaGeoFitter().fit(frequency, recency, age)],
        "Gamma-Gamma": [lambda: fit_gamma_gamma(x, spend),
                        lambda: GammaGammaFitter().fit(buyers, values)],
    }  # fmt: skip
    results = []
    for model, (ours_fit, theirs_fit) in runs.items():
        times: list[list[float]] = [[], []]
        fitted: list[Any] = [None, None]
        for r in range(rounds):
            for i in (0, 1) if r % 2 == 0 else (1, 0):
                seconds, fitted[i] = _timed((ours_fit, theirs_fit)[i])
                times[i].append(seconds)
        ours, theirs = fitted
        names = ("r", "alpha", "a", "b") if model == "BG/NBD" else ("p", "q", "v")
        mine = {k: float(getattr(ours, k)) for k in names}
        other = {k: float(theirs.params_[k]) for k in names}
        if model == "BG/NBD":
            lls = [float(np.sum(bgnbd_log_likelihood(list(p.values()), x, t_x, T)))
                   for p in (mine, other)]  # fmt: skip
        else:
            lls = [float(np.sum(gamma_gamma_log_likelihood(list(p.values()), x[repeat],
                                                           spend[repeat])))
                   for p in (mine, other)]  # fmt: skip
        results.append(FitComparison(model, n, times[0], times[1], mine, other, *lls))
    return results


@dataclass(frozen=True)
class PlannerFit:
    """What the planner's fit costs on `customers`: as it holds them (a list of Features,
    `features=True`) or as 10M-scale sufficient statistics alone (arrays on a day grid)."""

    customers: int
    rows: int  # distinct (x, t_x, T) rows of the statistics
    build_s: float  # features or simulated arrays, for information
    fit_s: float  # statistics + BG/NBD + Gamma-Gamma (+ RFM cut points with features)
    peak_mb: float  # the process's peak resident memory
    base_mb: float  # ... before the customers were made


def planner_fit(customers: int, features: bool = True) -> PlannerFit:
    """Measured in a fresh interpreter (peak memory is per process), with one BLAS thread
    as the planner runs (template.yaml)."""
    code = f"import json; from bench.segments import _planner_fit_here as f; " \
           f"print('FIT ' + json.dumps(f({customers}, {features})))"  # fmt: skip
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, cwd=ROOT)  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("FIT "))
    return PlannerFit(**json.loads(line[4:]))


def _peak_mb() -> float:
    """The process's peak resident memory since exec. Linux's ru_maxrss keeps the peak of the
    process that forked it, VmHWM is this address space's own."""
    try:
        status = Path("/proc/self/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmHWM:")) / 1024  # fmt: skip
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _planner_fit_here(customers: int, features: bool) -> dict[str, float]:
    from crm.segments.fitting import (
        DAY_GRID,
        RepeatData,
        fit_bgnbd_statistics,
        fit_gamma_gamma,
        fit_segment_model,
    )

    base = _peak_mb()
    started = time.perf_counter()
    # First orders over 18 months, the oldest 3 years ago, in days: a shop's spread of ages.
    x, t_x, T, spend = simulate(customers, weeks=156)
    t_x, T = t_x * 7, T * 7
    if features:
        now = datetime(2026, 11, 23, tzinfo=UTC)
        base_features = [
            Features(customer_id=f"c{i:08d}", order_count=int(x[i]) + 1, frequency=float(x[i]),
                     recency=float(t_x[i]), age=float(T[i]), days_since_last=float(T[i] - t_x[i]),
                     monetary=float(spend[i]), total_spend=float(spend[i] * (x[i] + 1)),
                     recent_orders=0, baseline_rate=0.0)
            for i in range(customers)
        ]  # fmt: skip
        build = time.perf_counter() - started
        started = time.perf_counter()
        model = fit_segment_model("bench", now, base_features)
        fit = time.perf_counter() - started
        rows = RepeatData.of(x, t_x, T, grid=DAY_GRID)
        if model.bgnbd is None or model.bgnbd.sample_size != customers:
            raise RuntimeError("the planner did not fit BG/NBD on every customer")
    else:
        build = time.perf_counter() - started
        started = time.perf_counter()
        rows = RepeatData.of(x, t_x, T, grid=DAY_GRID)
        fit_bgnbd_statistics(rows)
        fit_gamma_gamma(x, spend)
        fit = time.perf_counter() - started
    return {"customers": customers, "rows": int(rows.x.size + rows.t_none.size),
            "build_s": build, "fit_s": fit, "peak_mb": _peak_mb(), "base_mb": base}  # fmt: skip


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
