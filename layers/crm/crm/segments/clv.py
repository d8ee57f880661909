"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader & Hardie 2013) as fitted models:
P(alive), expected purchases, expected order value, and the customer lifetime value they
give. Scoring needs only `scipy.special`; fitting lives in `crm.segments.fitting` so the
shard worker, which only scores, never imports `scipy.optimize`.

Inputs per customer, in the caller's time unit: frequency x (repeat purchases), recency t_x
(time of the last purchase since the first), age T (time since the first purchase), and for
Gamma-Gamma the mean value of the repeat purchases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, gammaln, hyp2f1, logsumexp

Array = NDArray[np.float64]


def as_arrays(*values: ArrayLike) -> list[Array]:
    return [np.asarray(v, dtype=np.float64) for v in values]


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    sample_size: int = 0

    def _ratio(self, x: Array, t_x: Array, T: Array) -> Array:
        """a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x) for repeat buyers, 0 for the others."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (self.a / (self.b + x - 1)) * np.exp(
                (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x))
            )
        return np.where(x > 0, ratio, 0.0)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        x, t_x, age = as_arrays(frequency, recency, T)
        return 1.0 / (1.0 + self._ratio(x, t_x, age))

    def expected_purchases(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        """Expected purchases in the next t time units (FHL 2005, equation 10)."""
        x, t_x, age = as_arrays(frequency, recency, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + age + t)
        head = (a + b + x - 1) / (a - 1)
        tail = 1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        return np.asarray(head * tail / (1.0 + self._ratio(x, t_x, age)), dtype=np.float64)


def bgnbd_log_likelihood(params: Array, x: Array, t_x: Array, T: Array) -> Array:
    """Each customer's log-likelihood (FHL 2005, equation 7), for checking and reporting."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(x > 0, a4, -np.inf)
    return np.asarray(a1 + a2 + logsumexp(np.stack([a3, a4]), axis=0), dtype=np.float64)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")
    sample_size: int = 0

    def expected_order_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> Array:
        """E[M | x, m_x]: a customer's mean order value, shrunk towards the population's."""
        x, m = as_arrays(frequency, monetary_value)
        population = self.p * self.v / (self.q - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            own = self.p * (self.v + x * m) / (self.p * x + self.q - 1)
        return np.where(x > 0, own, population)


def gamma_gamma_log_likelihood(params: Array, x: Array, m: Array) -> Array:
    p, q, v = params
    return np.asarray(
        gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
        + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v),
        dtype=np.float64,
    )  # fmt: skip


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
    value = gamma_gamma.expected_order_value(frequency, monetary_value)
    total = np.zeros_like(value)
    previous = np.zeros_like(value)
    for i in range(1, horizon_periods + 1):
        cumulative = bgnbd.expected_purchases(i * period, frequency, recency, T)
        total += (cumulative - previous) * value / (1 + discount_rate) ** i
        previous = cumulative
    return total
