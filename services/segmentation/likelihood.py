"""Maximum likelihood for the buy-till-you-die models: the same search and standard errors for each.

Each model gives the log-likelihood of its positive parameters over (x, t_x, T) rows; identical
rows are summed once with their count as a weight, the search runs on the logs of the parameters
(so they stay positive) from a fixed start (so the same purchases always give the same fit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize

Floats = npt.NDArray[np.float64]
# (parameters, x, t_x, T, weights) -> the weighted sum of the customers' log-likelihoods.
LogLikelihood = Callable[[Floats, Floats, Floats, Floats, Floats], float]
# (x, t_x, T, weights) of the distinct histories -> the sample's log-likelihood of the parameters.
# A model builds it once per fit, so that what does not depend on the parameters is worked out once.
Objective = Callable[[Floats, Floats, Floats, Floats], Callable[[Floats], float]]


def over(log_likelihood: LogLikelihood) -> Objective:
    """The objective of a model with nothing to work out ahead: its log-likelihood over the sample."""

    def objective(x: Floats, t_x: Floats, T: Floats, weights: Floats) -> Callable[[Floats], float]:
        return lambda params: log_likelihood(params, x, t_x, T, weights)

    return objective


@dataclass(frozen=True)
class Estimate:
    values: Floats
    log_likelihood: float
    customers: int
    converged: bool
    standard_errors: Floats | None


def checked(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> tuple[Floats, Floats, Floats]:
    xs, txs, Ts = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if len(xs) == 0:
        raise ValueError("no customers to fit")
    if np.any(txs > Ts) or np.any(xs < 0) or np.any((xs == 0) & (txs != 0)):
        raise ValueError("each customer needs 0 <= t_x <= T, and t_x = 0 when x = 0")
    return xs, txs, Ts


def _compress(x: Floats, t_x: Floats, T: Floats) -> tuple[Floats, Floats, Floats, Floats]:
    """Identical (x, t_x, T) rows once, with their counts: the likelihood is a sum over them."""
    stacked = np.column_stack([x, t_x, T])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return unique[:, 0], unique[:, 1], unique[:, 2], counts.astype(float)


def maximise(
    objective: Objective, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, start: Floats
) -> Estimate:
    """Maximum-likelihood estimates, with standard errors from the observed information."""
    xs, txs, Ts = checked(x, t_x, T)
    log_likelihood = objective(*_compress(xs, txs, Ts))

    def negative(log_params: Floats) -> float:
        with np.errstate(all="ignore"):
            value = -log_likelihood(np.exp(log_params))
        return value if np.isfinite(value) else 1e300

    best = optimize.minimize(
        negative, np.log(start), method="L-BFGS-B", options={"ftol": 1e-12, "gtol": 1e-8}
    )
    if not best.success:
        # A rough surface for the gradient method: let the simplex find the way, then polish.
        simplex = optimize.minimize(
            negative,
            best.x,
            method="Nelder-Mead",
            options={"xatol": 1e-7, "fatol": 1e-7, "maxiter": 20_000, "maxfev": 20_000},
        )
        polished = optimize.minimize(negative, simplex.x, method="L-BFGS-B")
        best = min((best, simplex, polished), key=lambda r: r.fun)
    estimate = np.exp(best.x)
    return Estimate(
        values=estimate,
        log_likelihood=-float(best.fun),
        customers=len(xs),
        converged=bool(best.success),
        standard_errors=_standard_errors(log_likelihood, estimate),
    )


def _standard_errors(log_likelihood: Callable[[Floats], float], estimate: Floats) -> Floats | None:
    """Square roots of the diagonal of the inverse observed information (a central-difference Hessian)."""

    def ll(params: Floats) -> float:
        with np.errstate(all="ignore"):
            return log_likelihood(params)

    size = len(estimate)
    hessian = np.zeros((size, size))
    steps = 1e-4 * np.maximum(np.abs(estimate), 1e-3)
    for i in range(size):
        for j in range(i, size):
            ei, ej = np.zeros(size), np.zeros(size)
            ei[i], ej[j] = steps[i], steps[j]
            value = (
                ll(estimate + ei + ej)
                - ll(estimate + ei - ej)
                - ll(estimate - ei + ej)
                + ll(estimate - ei - ej)
            ) / (4 * steps[i] * steps[j])
            hessian[i, j] = hessian[j, i] = value
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return None
    variances = np.diag(covariance)
    if np.any(variances <= 0) or not np.all(np.isfinite(variances)):
        return None
    return np.sqrt(variances)
