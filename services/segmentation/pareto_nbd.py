"""The Pareto/NBD model of Schmittlein, Morrison & Colombo (1987).

While alive, a customer buys as a Poisson process of rate λ ~ Gamma(r, α); their lifetime is
exponential with rate μ ~ Gamma(s, β), independent of their purchases, so a customer who never
came back grows less likely to be alive as the silence grows. Formulas (likelihood with its two
hypergeometric branches, P(alive), conditional expectation) as derived in Fader & Hardie, "A Note
on Deriving the Pareto/NBD Model and Related Expressions" (2005).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from services.segmentation import likelihood

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ParetoNbdParameters:
    r: float
    alpha: float
    s: float
    beta: float

    def as_array(self) -> Floats:
        return np.array([self.r, self.alpha, self.s, self.beta])


@dataclass(frozen=True)
class ParetoNbdFit:
    parameters: ParetoNbdParameters
    log_likelihood: float
    customers: int
    converged: bool
    standard_errors: ParetoNbdParameters | None


def _log_a0_term(params: Floats, x: Floats, t: Floats) -> Floats:
    """One of A₀'s two terms, at time ``t`` (t_x or T), in logs: the hypergeometric one is the cost.

    From whichever of α and β is larger (so |z| < 1).
    """
    r, alpha, s, beta = params
    k = r + s + x
    if alpha >= beta:
        top, second = alpha, s + 1
    else:
        top, second = beta, r + x
    gap = abs(alpha - beta)
    return np.asarray(
        np.log(special.hyp2f1(k, second, k + 1, gap / (top + t))) - k * np.log(top + t), dtype=np.float64
    )


def _log_a0_of_terms(at_t_x: Floats, at_T: Floats) -> Floats:
    # A₀ is a difference of the two (zero when t_x = T): subtract in logs, without cancelling.
    with np.errstate(divide="ignore"):
        return np.asarray(at_t_x + np.log(-np.expm1(np.minimum(at_T - at_t_x, 0.0))), dtype=np.float64)


def _log_a0(params: Floats, x: Floats, t_x: Floats, T: Floats) -> Floats:
    """log A₀: the hypergeometric terms at t_x and at T."""
    return _log_a0_of_terms(_log_a0_term(params, x, t_x), _log_a0_term(params, x, T))


def _sum_log_likelihood(
    params: Floats, x: Floats, T: Floats, log_a0: Floats, weights: Floats | None
) -> float:
    r, alpha, s, beta = params
    head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    died = np.log(s / (r + s + x)) + log_a0
    per_customer = head + np.logaddexp(alive, died)
    return float(np.sum(per_customer if weights is None else per_customer * weights))


def log_likelihood(params: Floats, x: Floats, t_x: Floats, T: Floats, weights: Floats | None = None) -> float:
    """The sample log-likelihood: alive at T, or died between t_x and T, summed over customers."""
    values = np.asarray(params, dtype=float)
    return _sum_log_likelihood(values, x, T, _log_a0(values, x, t_x, T), weights)


class _Sample:
    """The log-likelihood of one sample, each A₀ term worked out once per distinct (x, time).

    A₀'s terms depend on a customer's x and one time (t_x or T), not on the three together: the
    one-time buyers share t_x = 0, and many share an age. Fewer hypergeometric functions to
    evaluate at each step of the search, the same values.
    """

    def __init__(self, x: Floats, t_x: Floats, T: Floats, weights: Floats) -> None:
        self.x, self.T, self.weights = x, T, weights
        moments = np.concatenate([np.column_stack([x, t_x]), np.column_stack([x, T])])
        order = np.lexsort((moments[:, 1], moments[:, 0]))
        ordered = moments[order]
        first = np.concatenate([[True], np.any(ordered[1:] != ordered[:-1], axis=1)])
        self.inverse = np.empty(len(moments), dtype=np.int64)
        self.inverse[order] = np.cumsum(first) - 1
        self.distinct_x, self.distinct_t = ordered[first, 0], ordered[first, 1]

    def __call__(self, params: Floats) -> float:
        values = np.asarray(params, dtype=float)
        terms = _log_a0_term(values, self.distinct_x, self.distinct_t)[self.inverse]
        half = len(self.x)
        log_a0 = _log_a0_of_terms(terms[:half], terms[half:])
        return _sum_log_likelihood(values, self.x, self.T, log_a0, self.weights)


def fit(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> ParetoNbdFit:
    """Maximum-likelihood estimates of (r, α, s, β), with standard errors from the observed information."""
    estimate = likelihood.maximise(_Sample, x, t_x, T, np.ones(4))
    errors = estimate.standard_errors
    return ParetoNbdFit(
        parameters=ParetoNbdParameters(*(float(v) for v in estimate.values)),
        log_likelihood=estimate.log_likelihood,
        customers=estimate.customers,
        converged=estimate.converged,
        standard_errors=None if errors is None else ParetoNbdParameters(*(float(v) for v in errors)),
    )


def probabilities_alive(params: ParetoNbdParameters, x: Floats, t_x: Floats, T: Floats) -> Floats:
    """P(alive | x, t_x, T) = 1 / (1 + s / (r + s + x) · (α + T)^(r + x) · (β + T)^s · A₀)."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    with np.errstate(all="ignore"):
        log_odds = (
            np.log(s / (r + s + x))
            + (r + x) * np.log(alpha + T)
            + s * np.log(beta + T)
            + _log_a0(params.as_array(), x, t_x, T)
        )
        return np.asarray(1.0 / (1.0 + np.exp(np.minimum(log_odds, 700.0))), dtype=np.float64)


def probability_alive(params: ParetoNbdParameters, x: float, t_x: float, T: float) -> float:
    return float(
        probabilities_alive(params, np.array([float(x)]), np.array([float(t_x)]), np.array([float(T)]))[0]
    )


def expected_purchases_many(
    params: ParetoNbdParameters, x: Floats, t_x: Floats, T: Floats, t: float
) -> Floats:
    """E[purchases in (T, T + t] | x, t_x, T]."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    if t <= 0:
        return np.zeros(len(x))
    if abs(s - 1) <= 1e-9:
        # The limit as s → 1 of [1 - ((β+T)/(β+T+t))^(s-1)] / (s - 1).
        body = np.log((beta + T + t) / (beta + T))
    else:
        body = (1 - ((beta + T) / (beta + T + t)) ** (s - 1)) / (s - 1)
    value = (r + x) * (beta + T) / (alpha + T) * body * probabilities_alive(params, x, t_x, T)
    return np.asarray(np.where(np.isfinite(value), value, np.nan), dtype=np.float64)


def expected_purchases(params: ParetoNbdParameters, x: float, t_x: float, T: float, t: float) -> float:
    one = np.array([float(x)]), np.array([float(t_x)]), np.array([float(T)])
    return float(expected_purchases_many(params, *one, t)[0])


def simulate(
    params: ParetoNbdParameters, customers: int, T: float, rng: np.random.Generator
) -> tuple[Floats, Floats, Floats]:
    """(x, t_x, T) of ``customers`` drawn from the model, each watched for ``T`` after buying at 0."""
    lam = rng.gamma(params.r, 1.0 / params.alpha, customers)
    mu = rng.gamma(params.s, 1.0 / params.beta, customers)
    lifetime = np.minimum(rng.exponential(1.0 / mu), T)
    x = np.zeros(customers)
    t_x = np.zeros(customers)
    for i in range(customers):
        now, count, last = 0.0, 0, 0.0
        while True:
            now += rng.exponential(1.0 / lam[i])
            if now > lifetime[i]:
                break
            count += 1
            last = now
        x[i], t_x[i] = count, last
    return x, t_x, np.full(customers, float(T))
