"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader & Hardie 2013) as fitted models:
P(alive), expected purchases, expected order value, and the customer lifetime value they
give. Scoring needs numpy alone: the shard worker never loads scipy (its import costs more
than the rest of the worker's cold start). Fitting lives in `crm.segments.fitting`, which
only the planner imports.

Inputs per customer, in the caller's time unit: frequency x (repeat purchases), recency t_x
(time of the last purchase since the first), age T (time since the first purchase), and for
Gamma-Gamma the mean value of the repeat purchases.

A model whose parameters are out of range is refused (`ValueError`): BG/NBD's within
1e-12..1e12 (alpha up to 1e15), Gamma-Gamma's finite and positive. Within that range every
customer gets finite numbers, a <= 1 included, except where the model itself has no finite
answer (a Gamma-Gamma mean with q <= 1): nan there, which scoring turns into no score.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def as_arrays(*values: ArrayLike) -> list[Array]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def _within(model: object, low: float, high: float, **params: float) -> None:
    bad = [name for name, value in params.items() if not low <= value <= high]  # nan too
    if bad:
        raise ValueError(f"{type(model).__name__} parameters out of range "
                         f"[{low:g}, {high:g}]: {', '.join(bad)}")  # fmt: skip


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    sample_size: int = 0

    def __post_init__(self) -> None:
        # What the numerics are tested on (tests/unit/segments/test_clv_numerics.py): wider
        # than any fit gives (log-parameters within +-20, alpha times the mean age).
        _within(self, 1e-12, 1e12, r=self.r, a=self.a, b=self.b)
        _within(self, 1e-12, 1e15, alpha=self.alpha)

    def _log_ratio(self, x: Array, t_x: Array, T: Array) -> Array:
        """ln of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x), the odds of having dropped out
        after the last purchase, for repeat buyers; -inf for the others (never seen leave)."""
        buyer = x > 0
        # b + x - 1 > 0 for buyers (x >= 1, b > 0); the others' value is not used.
        denominator = np.where(buyer, self.b + x - 1, 1.0)
        log_ratio = (
            math.log(self.a) - np.log(denominator)
            + (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x))
        )  # fmt: skip
        return np.where(buyer, log_ratio, -np.inf)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        x, t_x, age = as_arrays(frequency, recency, T)
        return _logistic(-self._log_ratio(x, t_x, age))

    def expected_purchases(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        """Expected purchases in the next t time units (FHL 2005, equation 10): P(alive) times
        the expectation for a customer alive now."""
        x, t_x, age = as_arrays(frequency, recency, T)
        alive = _logistic(-self._log_ratio(x, t_x, age))
        return alive * expected_purchases_if_alive(t, x, age, self.r, self.alpha, self.a, self.b)


def _logistic(y: Array) -> Array:
    """1 / (1 + e^-y) without overflow for any y (-inf and inf included)."""
    e = np.exp(-np.abs(y))
    return np.asarray(np.where(y >= 0, 1.0 / (1.0 + e), e / (1.0 + e)), dtype=np.float64)


# ------------------------------------------------------------------ E[X(t) | alive]
# FHL's equation 10 without its P(alive) factor is
#     (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],
# z = t/(alpha+T+t). Taken as written it divides by zero at a = 1, overflows for large x, and
# needs scipy's hyp2f1. Euler's transformation turns the bracket into
#     1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z),   c = a+b+x-1,
# and with 2F1 = 1 + (a-1) S the a-1 divides out exactly:
#     E = -c L exprel((a-1) L) - (1-z)^(a-1) sum_{n>=1} (a+b-1-r)_n (a)_(n-1) / ((c+1)_(n-1) n!) z^n
# with L = ln(1-z) and exprel(y) = (e^y - 1)/y. The series' terms fall like z^n, so it serves
# while u = t/(alpha+T) = z/(1-z) is moderate; beyond, the same expectation is computed as
# what it is, an integral over the dropout probability p ~ Beta(a, b+x) of
# (1 - (1+pu)^-(r+x)) / p, by Gauss-Legendre on intervals graded towards both ends (and
# refined around the Beta's mean, a spike when a + b is large). Against mpmath: 7e-14 at worst
# over 1,000 realistic and extreme cases, where scipy's hyp2f1 form is off by up to 2e-10
# (1.3e-8 near a = 1) and overflows for large x (tests/unit/segments/test_clv_numerics.py).
SERIES_MAX_U = 30.0  # z <= 0.968: at most ~1,500 terms
_BLOCK = 32  # terms summed per step, as one cumulative product
_MAX_TERMS = 20_000
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)


def expected_purchases_if_alive(
    t: ArrayLike, x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> Array:
    """E[X(t) | alive], broadcast over t, x and T."""
    t, x, T = np.broadcast_arrays(*as_arrays(t, x, T))
    u = (t / (alpha + T)).ravel()
    flat_x = x.ravel()
    out = np.full(u.shape, np.nan)
    by_series = u <= SERIES_MAX_U
    out[by_series] = _by_series(u[by_series], flat_x[by_series], r, a, b)
    rest = ~np.isfinite(out)  # beyond the series' reach, or summed with too much cancellation
    if rest.any():
        out[rest] = _by_quadrature(u[rest], flat_x[rest], r, a, b)
    return out.reshape(x.shape)


def _exprel(y: Array) -> Array:
    small = np.abs(y) < 1e-5
    safe = np.where(small, 1.0, y)
    return np.where(small, 1.0 + y / 2 + y * y / 6, np.expm1(safe) / safe)


def _by_series(u: Array, x: Array, r: float, a: float, b: float) -> Array:
    """The series, or nan where it did not converge or where its terms were so much larger
    than the result that rounding would show (large a or r: the quadrature takes those)."""
    if not u.size:
        return u
    z = u / (1.0 + u)
    log_1mz = -np.log1p(u)
    c = a + b + x - 1
    top = a + b - 1 - r
    total = np.full_like(u, np.nan)
    largest = np.zeros_like(u)
    # The sum's state for the rows still summing, kept compact: most rows converge in the
    # first block, a few (z near 1) take many.
    rows = np.arange(u.size)
    z_on, c_on = z[:, None], c[:, None]
    term = top * z  # t_1
    sums, peak = term.copy(), np.abs(term)
    n = np.arange(1, _BLOCK + 1, dtype=np.float64)
    start = 0
    with np.errstate(over="ignore", invalid="ignore"):  # overflowing rows are dropped below
        while rows.size and start < _MAX_TERMS:
            k = start + n  # ratios t_(k+1) / t_k
            ratios = ((top + k) * (a + k - 1) / (k + 1)) * z_on / (c_on + k)
            terms = term[:, None] * np.cumprod(ratios, axis=1)
            sums += terms.sum(axis=1)
            peak = np.maximum(peak, np.abs(terms).max(axis=1))
            term = terms[:, -1]
            rho = np.maximum(np.abs(ratios[:, -1]), z_on[:, 0])
            tail = np.where(rho < 1, np.abs(term) / np.where(rho < 1, 1 - rho, 1.0), np.inf)
            broken = ~np.isfinite(sums) | ~np.isfinite(peak)
            done = (tail <= 1e-17 * np.abs(sums) + 1e-300) | broken
            ended = rows[done]
            total[ended] = np.where(broken[done], np.nan, sums[done])
            largest[ended] = peak[done]
            rows, term, sums, peak = rows[~done], term[~done], sums[~done], peak[~done]
            z_on, c_on = z_on[~done], c_on[~done]
            start += _BLOCK
    d_log = (a - 1) * log_1mz
    first = -c * log_1mz * _exprel(d_log)
    # What rounding in the terms and in the subtraction can cost, against the result; rows
    # that overflowed or lost too much are nan, for the quadrature.
    with np.errstate(all="ignore"):
        scale = np.exp(d_log)
        result = first - scale * total
        noise = (np.abs(first) + scale * largest * 64) * 1e-16
        good = np.isfinite(result) & np.isfinite(noise) & (noise <= 1e-13 * np.abs(result))
    return np.where(good, result, np.nan)


def _graded(smallest: float) -> Array:
    """Edges on (s0, 1/2], s0 <= smallest, of intervals that halve towards 0, so integrands
    like s^(a-1) are smooth on each."""
    count = max(1, math.ceil(math.log2(0.5 / smallest)))
    return 0.5 * 2.0 ** -np.arange(count, -1, -1, dtype=np.float64)


def _nodes(edges: Array) -> tuple[Array, Array]:
    lo, hi = edges[:-1], edges[1:]
    half = (hi - lo) / 2
    nodes = ((lo + hi) / 2)[:, None] + half[:, None] * _NODES[None, :]
    return nodes.ravel(), (half[:, None] * _WEIGHTS[None, :]).ravel()


def _by_quadrature(u: Array, x: Array, r: float, a: float, b: float) -> Array:
    """E over p ~ Beta(a, b+x) of (1 - (1+pu)^-k)/p, k = r+x: the left half in p, the right
    in q = 1-p (exact near p = 1), both on intervals graded towards their end and refined
    around the Beta's mean (a spike when a+b is large), and the two end pieces below 1e-14
    in closed form. One mesh per distinct x."""
    out = np.empty_like(u)
    for value in np.unique(x):
        rows = x == value
        out[rows] = _quadrature_at(u[rows], float(value), r, a, b)
    return out


def _quadrature_at(u: Array, x: float, r: float, a: float, b: float) -> Array:
    k, beta = r + x, b + x
    log_b = math.lgamma(a) + math.lgamma(beta) - math.lgamma(a + beta)  # ln B(a, b+x)
    spread = math.sqrt(a * beta / ((a + beta) ** 2 * (a + beta + 1)))
    around = spread * np.arange(-12, 13)
    left = _graded(float(np.min(1e-14 / (u * (k + 1)))))
    right = _graded(1e-14)
    p0, q0 = float(left[0]), float(right[0])

    def refined(edges: Array, mean: float) -> Array:
        extra = mean + around
        extra = extra[(extra > edges[0]) & (extra < 0.5)]
        return np.unique(np.concatenate([edges, extra]))

    uu = u[:, None]
    with np.errstate(over="ignore", under="ignore"):  # the Beta density's far tails are 0
        p, w = _nodes(refined(left, a / (a + beta)))
        density = np.exp((a - 1) * np.log(p) + (beta - 1) * np.log1p(-p) - log_b)
        total = ((w * density) * (-np.expm1(-k * np.log1p(p * uu)) / p)).sum(axis=1)
        q, w = _nodes(refined(right, beta / (a + beta)))
        density = np.exp((a - 1) * np.log1p(-q) + (beta - 1) * np.log(q) - log_b)
        total += ((w * density) * (-np.expm1(-k * np.log1p((1 - q) * uu)) / (1 - q))).sum(axis=1)
        # Below p0: the integrand is k u p^(a-1); above 1 - q0, g(1) (1-p)^(b+x-1).
        total += k * u * math.exp(min(a * math.log(p0) - math.log(a) - log_b, 700.0))
        total += -np.expm1(-k * np.log1p(u)) * math.exp(
            min(beta * math.log(q0) - math.log(beta) - log_b, 700.0)
        )
    return np.asarray(total, dtype=np.float64)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")
    sample_size: int = 0

    def __post_init__(self) -> None:
        _within(self, sys.float_info.min, sys.float_info.max, p=self.p, q=self.q, v=self.v)

    def expected_order_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> Array:
        """E[M | x, m_x]: a customer's mean order value, shrunk towards the population's.
        nan where the model has no finite mean: the population's when q <= 1, and a buyer's
        when p x + q <= 1."""
        x, m = as_arrays(frequency, monetary_value)
        population = self.p * self.v / (self.q - 1) if self.q > 1 else math.nan
        shrink = self.p * x + self.q - 1
        safe = np.where(shrink > 0, shrink, 1.0)
        own = np.where(shrink > 0, self.p * (self.v + x * m) / safe, np.nan)
        return np.where(x > 0, own, population)


def customer_lifetime_value(
    bgnbd: BgNbd,
    gamma_gamma: GammaGamma,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    horizon_periods: int = 12,
    period: float = 30.0,
    discount_rate: float = 0.01,
) -> Array:
    """Discounted value of the purchases expected over `horizon_periods` periods of `period`
    time units (12 months of 30 days by default), at `discount_rate` per period."""
    x, t_x, age, m = as_arrays(frequency, recency, T, monetary_value)
    value = gamma_gamma.expected_order_value(x, m)
    alive = bgnbd.p_alive(x, t_x, age)
    periods = np.arange(1, horizon_periods + 1, dtype=np.float64)[:, None]
    # Every horizon at once (one array, periods x customers): the per-call overhead is most
    # of the cost for a page of a few hundred customers.
    cumulative = alive * expected_purchases_if_alive(
        periods * period, x, age, bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b
    )
    bought = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1 + discount_rate) ** -periods
    return np.asarray(np.sum(bought * discount, axis=0) * value, dtype=np.float64)
