"""Fitting BG/NBD and Gamma-Gamma by maximum likelihood, with analytic gradients, on the
sufficient statistics of a base. Only the planner fits; scoring needs `crm.segments.clv`."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from crm.segments.clv import (
    Array,
    BgNbd,
    GammaGamma,
    as_arrays,
    gamma_gamma_log_likelihood,
)

# What the planner reads and fits at most on a very large base (a uniform sample): the
# estimates' standard errors shrink as 1/sqrt(n), and 200k customers leave them far below the
# parameters' business meaning. Fits themselves are exact on whatever they are given.
DEFAULT_MAX_SAMPLE = 200_000


def _sample(rng: np.random.Generator | None, n: int, max_sample: int | None) -> Array | slice:
    if max_sample is None or n <= max_sample:
        return slice(None)
    generator = rng or np.random.default_rng(0)
    return np.sort(generator.choice(n, size=max_sample, replace=False))


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
    x_values: Array  # the distinct x, and each row's index into them (terms of x alone)
    x_index: NDArray[np.intp]

    @property
    def customers(self) -> int:
        return int(self.w_none.sum() + self.weight.sum())

    @classmethod
    def of(cls, x: Array, t_x: Array, T: Array, grid: float | None = None) -> RepeatData:
        """The statistics of a base; with a grid, times are rounded to it first."""
        none = x == 0
        t_none, w_none = np.unique(on_grid(T[none], grid), return_counts=True)
        if grid is None:
            rows = np.stack([x[~none], t_x[~none], T[~none]], axis=1)
            distinct, weight = np.unique(rows, axis=0, return_counts=True)
        else:
            distinct, weight = _distinct_on_grid(x[~none], t_x[~none], T[~none], grid)
        x_values, x_index = np.unique(distinct[:, 0], return_inverse=True)
        return cls(t_none, w_none.astype(np.float64), distinct[:, 0], distinct[:, 1],
                   distinct[:, 2], weight.astype(np.float64), x_values, x_index)  # fmt: skip

    def scaled(self, scale: float) -> RepeatData:
        return replace(self, t_none=self.t_none / scale, t_x=self.t_x / scale, T=self.T / scale)


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


def _bgnbd_objective(log_params: Array, d: RepeatData) -> tuple[float, Array]:
    """Negative log-likelihood of the base and its gradient in log-parameters.

    Terms of x alone (gamma and digamma functions) are computed once per distinct x; the
    last term is a two-way log-sum-exp whose weights give its derivatives. Weighted sums use
    `np.vdot`: `np.dot` goes through threaded BLAS, which costs ~100x more on a busy or
    one-core machine (a Lambda) for vectors of this size."""
    r, alpha, a, b = np.exp(log_params)
    log_alpha = np.log(alpha)
    # Non-buyers: r (ln alpha - ln(alpha + T)).
    log_t0 = np.log(alpha + d.t_none)
    ll = float(np.vdot(d.w_none, r * (log_alpha - log_t0)))
    g = np.array([
        np.vdot(d.w_none, log_alpha - log_t0),
        np.vdot(d.w_none, r / alpha - r / (alpha + d.t_none)),
        0.0,
        0.0,
    ])  # fmt: skip
    if d.x.size:
        ux, k, w = d.x_values, d.x_index, d.weight
        a1 = (gammaln(r + ux))[k] - gammaln(r) + r * log_alpha
        a2 = (gammaln(b + ux) - gammaln(a + b + ux))[k] + gammaln(a + b) - gammaln(b)
        rx = r + d.x
        log_t = np.log(alpha + d.T)
        log_tx = np.log(alpha + d.t_x)
        a3 = -rx * log_t
        a4 = np.log(a) - (np.log(b + ux - 1))[k] - rx * log_tx
        top = np.maximum(a3, a4)
        total = top + np.log(np.exp(a3 - top) + np.exp(a4 - top))
        w4 = np.exp(a4 - total)  # the share of "alive after the last purchase ... dropped"
        w3 = 1.0 - w4
        ll += float(np.vdot(w, a1 + a2 + total))
        dig_ab = digamma(a + b)
        g += np.array([
            np.vdot(w, (digamma(r + ux))[k] - digamma(r) + log_alpha - w3 * log_t - w4 * log_tx),
            np.vdot(w, r / alpha - rx * (w3 / (alpha + d.T) + w4 / (alpha + d.t_x))),
            np.vdot(w, (dig_ab - digamma(a + b + ux))[k] + w4 / a),
            np.vdot(w, (digamma(b + ux) - digamma(a + b + ux))[k] + dig_ab - digamma(b)
                   - w4 / (b + d.x - 1)),
        ])  # fmt: skip
    grad = g * np.array([r, alpha, a, b])  # chain rule into log-parameters
    if not np.isfinite(ll) or not np.all(np.isfinite(grad)):
        return float("inf"), np.zeros(4)
    return -ll, -grad


# L-BFGS-B keeps log-parameters in a box wide enough for any real base (e^-20 .. e^20) so a
# probe at an extreme never overflows the gamma functions.
_LOG_BOUNDS = (-20.0, 20.0)


def on_grid(values: Array, grid: float | None) -> Array:
    """Times rounded to a grid (a day, for a shop): customers who differ by less than a grid
    step share one row of the sufficient statistics. Rounding keeps recency <= T."""
    if grid is None:
        return values
    return np.round(values / grid) * grid


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    max_sample: int | None = None,
    rng: np.random.Generator | None = None,
    grid: float | None = None,
) -> BgNbd:
    """Maximum likelihood on every customer given (or on a uniform sample of max_sample),
    with times rounded to `grid` if one is given."""
    x, t_x, age = as_arrays(frequency, recency, T)
    if not (x.shape == t_x.shape == age.shape) or x.size == 0:
        raise ValueError("frequency, recency and T must be non-empty arrays of one length")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > age):
        raise ValueError("need frequency >= 0 and 0 <= recency <= T")
    pick = _sample(rng, x.size, max_sample)
    x, t_x, age = x[pick], t_x[pick], age[pick]
    if grid is not None and np.any(x != np.rint(x)):
        raise ValueError("frequency counts repeat purchases: whole numbers")
    data = RepeatData.of(x, t_x, age, grid)
    scale = float(np.mean(age)) or 1.0  # fit in units where T is about 1: better conditioned
    scaled = data.scaled(scale)
    # Quasi-Newton on log-parameters from 1, 1, 1, 1 in scaled time: a simplex search from
    # there can drift to the degenerate a -> 0, b -> inf ridge on large bases.
    with np.errstate(all="ignore"):  # the search probes extreme values; it handles inf itself
        best = minimize(_bgnbd_objective, np.zeros(4), args=(scaled,), jac=True,
                        method="L-BFGS-B", bounds=[_LOG_BOUNDS] * 4)  # fmt: skip
    r, alpha, a, b = np.exp(best.x)
    alpha *= scale
    ll = -_bgnbd_objective(np.log([r, alpha, a, b]), data)[0]
    return BgNbd(float(r), float(alpha), float(a), float(b), ll, int(x.size))


def _gamma_gamma_objective(
    log_params: Array, x: Array, m: Array, x_values: Array, x_index: NDArray[np.intp]
) -> tuple[float, Array]:
    """Negative log-likelihood and its gradient in log-parameters; the gamma and digamma
    terms, which depend on x alone, are computed once per distinct x."""
    p, q, v = np.exp(log_params)
    k, ux = x_index, x_values
    log_m, log_xm_v = np.log(m), np.log(x * m + v)
    px = p * x
    ll = float(np.sum(
        (gammaln(p * ux + q) - gammaln(p * ux) + p * ux * np.log(ux))[k] - gammaln(q)
        + q * np.log(v) + (px - 1) * log_m - (px + q) * log_xm_v
    ))  # fmt: skip
    dig_pxq = digamma(p * ux + q)[k]
    grad = np.array([
        np.sum(x * (dig_pxq - digamma(p * ux)[k] + np.log(ux)[k] + log_m - log_xm_v)),
        np.sum(dig_pxq - digamma(q) + np.log(v) - log_xm_v),
        np.sum(q / v - (px + q) / (x * m + v)),
    ]) * np.array([p, q, v])  # fmt: skip
    if not np.isfinite(ll) or not np.all(np.isfinite(grad)):
        return float("inf"), np.zeros(3)
    return -ll, -grad


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    max_sample: int | None = None,
    rng: np.random.Generator | None = None,
) -> GammaGamma:
    """Fitted on repeat buyers (x > 0, m > 0); the others carry no information on spend."""
    x, m = as_arrays(frequency, monetary_value)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if x.size < 10:
        raise ValueError("the Gamma-Gamma model needs at least 10 repeat buyers")
    pick = _sample(rng, x.size, max_sample)
    x, m = x[pick], m[pick]
    scale = float(np.mean(m))
    x_values, x_index = np.unique(x, return_inverse=True)
    with np.errstate(all="ignore"):
        best = minimize(_gamma_gamma_objective, np.zeros(3),
                        args=(x, m / scale, x_values, x_index), jac=True, method="L-BFGS-B",
                        bounds=[_LOG_BOUNDS] * 3)  # fmt: skip
    p, q, v = np.exp(best.x)
    v *= scale
    ll = float(np.sum(gamma_gamma_log_likelihood(np.array([p, q, v]), x, m)))
    return GammaGamma(float(p), float(q), float(v), ll, int(x.size))
