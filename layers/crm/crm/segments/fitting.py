"""Fitting BG/NBD and Gamma-Gamma by maximum likelihood, with analytic gradients, on the
sufficient statistics of the whole base. Only the planner fits, so only the planner imports
this module (and scipy with it); scoring needs `crm.segments.clv` alone.

How a fit stays fast on every customer: terms that depend on x alone (the gamma and digamma
functions) are computed once per distinct x and weighted by how many customers share it;
customers who share (x, t_x, T) are one weighted row (on a day grid a base of millions has a
few hundred thousand rows); non-buyers need only their age; every per-row term is an array
operation without BLAS (threaded BLAS made a dot product of ~40k elements hundreds of times
slower on a shared machine than numpy's own sum) and without gathers of per-x terms onto rows.
The optimizer's own BLAS calls want one thread too (OPENBLAS_NUM_THREADS=1, template.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from aws_lambda_powertools import Logger
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, logsumexp

from crm.segments.clv import Array, BgNbd, GammaGamma, as_arrays
from crm.segments.fitted import BgNbdParams, GammaGammaParams, RfmThresholds, SegmentModel
from crm.segments.scoring import Features, rfm_thresholds

logger = Logger(child=True)

DAY_GRID = 1.0  # the planner's grid for times, in days: finer than any business meaning


def _wsum(weight: Array, values: Array) -> float:
    """A weighted sum by elementwise product and numpy's own (pairwise) sum: `np.dot` and
    `np.vdot` go through threaded BLAS."""
    return float(np.sum(weight * values))


@dataclass(frozen=True)
class RepeatData:
    """BG/NBD's sufficient statistics: the distinct (x, t_x, T) of a base with how many
    customers share each. Non-buyers (x = 0) are kept apart: their likelihood needs T only."""

    t_none: Array  # T of the non-buyers, distinct
    w_none: Array  # how many non-buyers have each
    x: Array  # buyers' distinct rows ...
    t_x: Array
    T: Array
    weight: Array
    x_values: Array  # the distinct x, each row's index into them, and the buyers of each
    x_index: NDArray[np.intp]
    x_weight: Array

    @property
    def customers(self) -> int:
        return int(self.w_none.sum() + self.weight.sum())

    @classmethod
    def of(cls, x: Array, t_x: Array, T: Array, grid: float | None = None) -> RepeatData:
        """The statistics of a base; with a grid, times are rounded to it first."""
        none = x == 0
        t_none, w_none = np.unique(on_grid(T[none], grid), return_counts=True)
        if grid is None:
            distinct, weight = _distinct_rows(x[~none], t_x[~none], T[~none])
        else:
            distinct, weight = _distinct_on_grid(x[~none], t_x[~none], T[~none], grid)
        x_values, x_index = np.unique(distinct[:, 0], return_inverse=True)
        weights = weight.astype(np.float64)
        x_weight = np.asarray(
            np.bincount(x_index, weights=weights, minlength=x_values.size), dtype=np.float64
        )
        return cls(t_none, w_none.astype(np.float64), distinct[:, 0], distinct[:, 1],
                   distinct[:, 2], weights, x_values, x_index, x_weight)  # fmt: skip

    def scaled(self, scale: float) -> RepeatData:
        return replace(self, t_none=self.t_none / scale, t_x=self.t_x / scale, T=self.T / scale)


def _distinct_rows(x: Array, t_x: Array, T: Array) -> tuple[Array, NDArray[np.intp]]:
    """Distinct (x, t_x, T) rows and their counts, by one lexicographic sort (`np.unique` with
    `axis=0` is ~10x slower on floats)."""
    order = np.lexsort((T, t_x, x))
    rows = np.stack([x[order], t_x[order], T[order]], axis=1)
    if not rows.shape[0]:
        return rows, np.zeros(0, dtype=np.intp)
    new = np.ones(rows.shape[0], dtype=bool)
    new[1:] = np.any(rows[1:] != rows[:-1], axis=1)
    starts = np.flatnonzero(new)
    return rows[starts], np.diff(np.append(starts, rows.shape[0]))


def _distinct_on_grid(
    x: Array, t_x: Array, T: Array, grid: float
) -> tuple[Array, NDArray[np.intp]]:
    """Distinct (x, t_x, T) rows on a grid: each row packed into one integer, which sorts
    several times faster than rows of floats."""
    steps_tx = np.rint(t_x / grid).astype(np.int64)
    steps_t = np.rint(T / grid).astype(np.int64)
    count = np.rint(x).astype(np.int64)
    span = int(steps_t.max(initial=0)) + 1
    keys, weight = np.unique((count * span + steps_tx) * span + steps_t, return_counts=True)
    rows = np.stack(
        [keys // (span * span), (keys // span) % span * grid, keys % span * grid], axis=1
    ).astype(np.float64)
    return rows, weight


def on_grid(values: Array, grid: float | None) -> Array:
    """Times rounded to a grid (a day, for a shop): customers who differ by less than a grid
    step share one row of the sufficient statistics. Rounding keeps recency <= T."""
    if grid is None:
        return values
    return np.round(values / grid) * grid


def _bgnbd_objective(log_params: Array, d: RepeatData) -> tuple[float, Array]:
    """Negative log-likelihood of the base (FHL 2005, equation 7) and its gradient in
    log-parameters.

    A buyer's likelihood ends in ln(e^A3 + e^A4) = A3 + softplus(A4 - A3); the weight of A4
    in it, sigmoid(A4 - A3), is what the derivatives need."""
    r, alpha, a, b = (float(v) for v in np.exp(log_params))
    log_alpha = math.log(alpha)
    # Non-buyers: r (ln alpha - ln(alpha + T)).
    n0 = float(d.w_none.sum())
    s_log0 = _wsum(d.w_none, np.log(alpha + d.t_none))
    ll = r * (n0 * log_alpha - s_log0)
    g_r = n0 * log_alpha - s_log0
    g_alpha = r * n0 / alpha - r * _wsum(d.w_none, 1.0 / (alpha + d.t_none))
    g_a = g_b = 0.0
    if d.x.size:
        ux, nx, w = d.x_values, d.x_weight, d.weight
        n1 = float(nx.sum())
        # Terms of x alone, once per distinct x, weighted by its buyers.
        ll += float(np.sum(nx * (gammaln(r + ux) + gammaln(b + ux) - gammaln(a + b + ux))))
        ll += n1 * (r * log_alpha - gammaln(r) + gammaln(a + b) - gammaln(b))
        log_t = np.log(alpha + d.T)
        gap = log_t - np.log(alpha + d.t_x)  # > 0 unless t_x = T
        rx = r + d.x
        delta = (math.log(a) - np.log(b + ux - 1))[d.x_index] + rx * gap  # A4 - A3
        e = np.exp(-np.abs(delta))
        softplus = np.maximum(delta, 0.0) + np.log1p(e)
        w4 = np.where(delta >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        ll += _wsum(w, softplus - rx * log_t)
        ww4 = w * w4
        by_x = np.bincount(d.x_index, weights=ww4, minlength=ux.size)  # sum of w4 per x
        inv_t = 1.0 / (alpha + d.T)
        inv_tx = 1.0 / (alpha + d.t_x)
        dig_ab = float(digamma(a + b))
        g_r += float(np.sum(nx * digamma(r + ux))) + n1 * (log_alpha - float(digamma(r)))
        g_r += _wsum(ww4, gap) - _wsum(w, log_t)
        g_alpha += r * n1 / alpha - _wsum(w, rx * (inv_t + w4 * (inv_tx - inv_t)))
        g_a = float(np.sum(nx * (dig_ab - digamma(a + b + ux)))) + float(by_x.sum()) / a
        g_b = float(np.sum(nx * (digamma(b + ux) - digamma(a + b + ux) + dig_ab
                                 - digamma(b)) - by_x / (b + ux - 1)))  # fmt: skip
    grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])  # into log-parameters
    if not math.isfinite(ll) or not np.all(np.isfinite(grad)):
        return float("inf"), np.zeros(4)
    return -ll, -grad


def bgnbd_log_likelihood(params: ArrayLike, x: Array, t_x: Array, T: Array) -> Array:
    """Each customer's log-likelihood (FHL 2005, equation 7), written out plainly: a check
    on the fast objective."""
    r, alpha, a, b = np.asarray(params, dtype=np.float64)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    buyer = x > 0
    a4 = np.log(a) - np.log(np.where(buyer, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(buyer, a4, -np.inf)
    return np.asarray(a1 + a2 + logsumexp(np.stack([a3, a4]), axis=0), dtype=np.float64)


# L-BFGS-B keeps log-parameters in a box wide enough for any real base (e^-20 .. e^20) so a
# probe at an extreme never overflows the gamma functions.
_LOG_BOUNDS = (-20.0, 20.0)
# Stop when a step gains less than 1e-12 of the log-likelihood (scipy's default, 2e-9, is
# ~6e-3 nats on a million customers): a few more steps, and the maximum itself, not a
# parameter set 1e-4 away from lifetimes'.
_TOLERANCE = {"ftol": 1e-12}


def fit_bgnbd(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, grid: float | None = None
) -> BgNbd:
    """Maximum likelihood on every customer given, with times rounded to `grid` if one is
    given (then the statistics are much smaller and the fit faster)."""
    x, t_x, age = as_arrays(frequency, recency, T)
    if not (x.shape == t_x.shape == age.shape) or x.size == 0:
        raise ValueError("frequency, recency and T must be non-empty arrays of one length")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > age):
        raise ValueError("need frequency >= 0 and 0 <= recency <= T")
    if grid is not None and np.any(x != np.rint(x)):
        raise ValueError("frequency counts repeat purchases: whole numbers")
    return fit_bgnbd_statistics(RepeatData.of(x, t_x, age, grid))


def fit_bgnbd_statistics(data: RepeatData) -> BgNbd:
    scale = (
        float(  # fit in units where T is about 1: better conditioned
            (_wsum(data.w_none, data.t_none) + _wsum(data.weight, data.T)) / max(data.customers, 1)
        )
        or 1.0
    )
    scaled = data.scaled(scale)
    # Quasi-Newton on log-parameters from 1, 1, 1, 1 in scaled time: a simplex search from
    # there can drift to the degenerate a -> 0, b -> inf ridge on large bases.
    with np.errstate(all="ignore"):  # the search probes extreme values; it handles inf itself
        best = minimize(_bgnbd_objective, np.zeros(4), args=(scaled,), jac=True,
                        method="L-BFGS-B", bounds=[_LOG_BOUNDS] * 4,
                        options=_TOLERANCE)  # fmt: skip
    r, alpha, a, b = (float(v) for v in np.exp(best.x))
    alpha *= scale
    ll = -_bgnbd_objective(np.log([r, alpha, a, b]), data)[0]
    return BgNbd(r, alpha, a, b, ll, data.customers)


@dataclass(frozen=True)
class SpendData:
    """Gamma-Gamma's statistics of the repeat buyers: the distinct x with their counts, the
    sums that do not depend on the parameters, and the x m that the rest needs."""

    x: Array
    xm: Array  # x times the mean repeat spend, per buyer
    x_values: Array
    x_weight: Array
    sum_log_m: float
    sum_x_log_m: float
    mean_m: float

    @classmethod
    def of(cls, x: Array, m: Array) -> SpendData:
        order = np.lexsort((m, x))  # a fixed order of summation, whatever the input's
        x, m = x[order], m[order]
        x_values, x_weight = np.unique(x, return_counts=True)
        log_m = np.log(m)
        return cls(x, x * m, x_values, x_weight.astype(np.float64), float(np.sum(log_m)),
                   float(np.sum(x * log_m)), float(np.mean(m)))  # fmt: skip

    def scaled(self, scale: float) -> SpendData:
        shift = math.log(scale)
        return replace(self, xm=self.xm / scale, sum_log_m=self.sum_log_m - self.x.size * shift,
                       sum_x_log_m=self.sum_x_log_m - float(np.sum(self.x)) * shift,
                       mean_m=self.mean_m / scale)  # fmt: skip


def _gamma_gamma_objective(log_params: Array, d: SpendData) -> tuple[float, Array]:
    """Negative log-likelihood (Fader & Hardie 2013) and its gradient in log-parameters:
    per buyer only ln(x m + v) and 1/(x m + v) depend on the parameters."""
    p, q, v = (float(val) for val in np.exp(log_params))
    ux, nx = d.x_values, d.x_weight
    n = float(nx.sum())
    log_xm_v = np.log(d.xm + v)
    inv_xm_v = 1.0 / (d.xm + v)
    s_l, s_xl = float(np.sum(log_xm_v)), float(np.sum(d.x * log_xm_v))
    pux = p * ux
    ll = (
        float(np.sum(nx * (gammaln(pux + q) - gammaln(pux) + pux * np.log(ux))))
        - n * float(gammaln(q)) + n * q * math.log(v)
        + p * d.sum_x_log_m - d.sum_log_m - p * s_xl - q * s_l
    )  # fmt: skip
    dig_puxq = digamma(pux + q)
    grad = np.array([
        float(np.sum(nx * ux * (dig_puxq - digamma(pux) + np.log(ux)))) + d.sum_x_log_m - s_xl,
        float(np.sum(nx * dig_puxq)) - n * float(digamma(q)) + n * math.log(v) - s_l,
        n * q / v - p * float(np.sum(d.x * inv_xm_v)) - q * float(np.sum(inv_xm_v)),
    ]) * np.array([p, q, v])  # fmt: skip
    if not math.isfinite(ll) or not np.all(np.isfinite(grad)):
        return float("inf"), np.zeros(3)
    return -ll, -grad


def gamma_gamma_log_likelihood(params: ArrayLike, x: Array, m: Array) -> Array:
    p, q, v = np.asarray(params, dtype=np.float64)
    return np.asarray(
        gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
        + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v),
        dtype=np.float64,
    )  # fmt: skip


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike) -> GammaGamma:
    """Fitted on every repeat buyer (x > 0, m > 0); the others carry no information on
    spend. Refused (ValueError) when the fit says the mean order value is infinite (q <= 1):
    no lifetime value can be computed from it."""
    x, m = as_arrays(frequency, monetary_value)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    if x.size < 10:
        raise ValueError("the Gamma-Gamma model needs at least 10 repeat buyers")
    data = SpendData.of(x, m)
    scale = data.mean_m
    with np.errstate(all="ignore"):
        best = minimize(_gamma_gamma_objective, np.zeros(3), args=(data.scaled(scale),),
                        jac=True, method="L-BFGS-B", bounds=[_LOG_BOUNDS] * 3,
                        options=_TOLERANCE)  # fmt: skip
    p, q, v = (float(val) for val in np.exp(best.x))
    v *= scale
    if q <= 1:
        raise ValueError("the fitted spend has no finite mean (q <= 1): no lifetime value")
    ll = -_gamma_gamma_objective(np.log([p, q, v]), data)[0]
    return GammaGamma(p, q, v, ll, int(x.size))


def fit_segment_model(run_id: str, now: datetime, customers: list[Features]) -> SegmentModel:
    """The planner's model: RFM cut points, BG/NBD and Gamma-Gamma, fitted on every customer
    given, times on a day grid. The same customers give the same model whatever order they
    come in (the statistics are sorted), or a night with no changes would rewrite profiles
    because a fit on a flat likelihood followed the order of its sums."""
    if not customers:
        empty = [0.0, 0.0, 0.0, 0.0]
        rfm = RfmThresholds(recency_days=empty, frequency=empty, monetary=empty)
        return SegmentModel(run_id=run_id, fitted_at=now, sample_size=0, rfm=rfm)
    count = len(customers)
    frequency = np.fromiter((f.frequency for f in customers), np.float64, count)
    recency = np.fromiter((f.recency for f in customers), np.float64, count)
    age = np.fromiter((f.age for f in customers), np.float64, count)
    bgnbd = gamma_gamma = None
    try:
        fitted = fit_bgnbd(frequency, recency, age, grid=DAY_GRID)
        if not math.isfinite(fitted.log_likelihood):
            raise ValueError("no finite likelihood")
        bgnbd = BgNbdParams(r=fitted.r, alpha=fitted.alpha, a=fitted.a, b=fitted.b,
                            log_likelihood=fitted.log_likelihood,
                            sample_size=fitted.sample_size)  # fmt: skip
    except (ValueError, FloatingPointError) as exc:
        logger.warning(f"BG/NBD could not be fitted ({exc}); scoring RFM only")
    try:
        monetary = np.fromiter((f.monetary for f in customers), np.float64, count)
        spend = fit_gamma_gamma(frequency, monetary)
        gamma_gamma = GammaGammaParams(p=spend.p, q=spend.q, v=spend.v,
                                       sample_size=spend.sample_size)  # fmt: skip
    except (ValueError, FloatingPointError) as exc:
        logger.warning(f"Gamma-Gamma could not be fitted ({exc}); no CLV")
    return SegmentModel(
        run_id=run_id, fitted_at=now, sample_size=count, rfm=rfm_thresholds(customers),
        bgnbd=bgnbd, gamma_gamma=gamma_gamma,
    )  # fmt: skip
