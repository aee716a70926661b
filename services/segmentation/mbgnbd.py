"""The modified BG/NBD model of Batislam, Denizel & Filiztekin (2007).

As the BG/NBD, but a customer may also drop out right after the first purchase, so one who never
came back is not certain to be alive: P(alive | x = 0) < 1, falling as the silence grows. Formulas
from "Empirical validation and comparison of models for customer base analysis", International
Journal of Research in Marketing 24(3), 2007: the likelihood, P(alive) and the conditional
expectation (their equations for L(r, α, a, b | x, t_x, T), P(τ > T) and E[Y(t) | x, t_x, T]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from services.segmentation import likelihood

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MbgNbdParameters:
    r: float
    alpha: float
    a: float
    b: float

    def as_array(self) -> Floats:
        return np.array([self.r, self.alpha, self.a, self.b])


@dataclass(frozen=True)
class MbgNbdFit:
    parameters: MbgNbdParameters
    log_likelihood: float
    customers: int
    converged: bool
    standard_errors: MbgNbdParameters | None


def log_likelihood(params: Floats, x: Floats, t_x: Floats, T: Floats, weights: Floats | None = None) -> float:
    """The sample log-likelihood: alive at T, or dropped out right after the purchase at t_x (even at 0)."""
    r, alpha, a, b = np.asarray(params, dtype=float)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    alive = special.betaln(a, b + x + 1) + common - (r + x) * np.log(alpha + T)
    died = special.betaln(a + 1, b + x) + common - (r + x) * np.log(alpha + t_x)
    per_customer = np.logaddexp(alive, died)
    return float(np.sum(per_customer if weights is None else per_customer * weights))


def fit(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> MbgNbdFit:
    """Maximum-likelihood estimates of (r, α, a, b), with standard errors from the observed information."""
    estimate = likelihood.maximise(likelihood.over(log_likelihood), x, t_x, T, np.ones(4))
    errors = estimate.standard_errors
    return MbgNbdFit(
        parameters=MbgNbdParameters(*(float(v) for v in estimate.values)),
        log_likelihood=estimate.log_likelihood,
        customers=estimate.customers,
        converged=estimate.converged,
        standard_errors=None if errors is None else MbgNbdParameters(*(float(v) for v in errors)),
    )


def probabilities_alive(params: MbgNbdParameters, x: Floats, t_x: Floats, T: Floats) -> Floats:
    """P(alive | x, t_x, T) = 1 / (1 + a / (b + x) · ((α + T) / (α + t_x))^(r + x))."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(over="ignore"):
        log_ratio = np.minimum((r + x) * (np.log(alpha + T) - np.log(alpha + t_x)), 700.0)
        odds = a / (b + x) * np.exp(log_ratio)
    return np.asarray(1.0 / (1.0 + odds), dtype=np.float64)


def probability_alive(params: MbgNbdParameters, x: float, t_x: float, T: float) -> float:
    return float(probabilities_alive(params, np.array([x]), np.array([t_x]), np.array([T]))[0])


def expected_purchases_many(params: MbgNbdParameters, x: Floats, t_x: Floats, T: Floats, t: float) -> Floats:
    """E[purchases in (T, T + t] | x, t_x, T]."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if t <= 0:
        return np.zeros(len(x))
    if abs(a - 1) <= 1e-9:
        return np.full(len(x), np.nan)
    hyper = special.hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
    body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyper
    value = (a + b + x) / (a - 1) * body * probabilities_alive(params, x, t_x, T)
    return np.asarray(np.where(np.isfinite(value), value, np.nan), dtype=np.float64)


def expected_purchases(params: MbgNbdParameters, x: float, t_x: float, T: float, t: float) -> float:
    one = np.array([float(x)]), np.array([float(t_x)]), np.array([float(T)])
    return float(expected_purchases_many(params, *one, t)[0])


def simulate(
    params: MbgNbdParameters, customers: int, T: float, rng: np.random.Generator
) -> tuple[Floats, Floats, Floats]:
    """(x, t_x, T) of ``customers`` drawn from the model, each watched for ``T`` after buying at 0."""
    lam = rng.gamma(params.r, 1.0 / params.alpha, customers)
    p = rng.beta(params.a, params.b, customers)
    x = np.zeros(customers)
    t_x = np.zeros(customers)
    for i in range(customers):
        now, count, last = 0.0, 0, 0.0
        # The first purchase is a chance to drop out too: the modification.
        while rng.random() >= p[i]:
            now += rng.exponential(1.0 / lam[i])
            if now > T:
                break
            count += 1
            last = now
        x[i], t_x[i] = count, last
    return x, t_x, np.full(customers, float(T))
