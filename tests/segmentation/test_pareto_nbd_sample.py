"""The Pareto/NBD fit's sample objective: A₀'s terms worked out once per distinct (x, time).

It must give exactly the log-likelihood summed customer by customer, whatever the parameters and
whatever histories share an x, a t_x or an age.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.segmentation import likelihood, pareto_nbd

positive = st.floats(min_value=1e-3, max_value=100.0, allow_nan=False, allow_infinity=False)
history = st.tuples(
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=0, max_value=60),
)


def _histories(rows: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in whole days, made consistent: t_x = 0 for x = 0, T ≥ t_x, T > 0."""
    x = np.array([row[0] for row in rows], dtype=float)
    t_x = np.where(x > 0, np.array([row[1] for row in rows], dtype=float), 0.0)
    T = np.maximum(t_x + np.array([row[2] for row in rows], dtype=float), 1.0)
    return x, t_x, T


@settings(max_examples=200, deadline=None)
@given(
    params=st.tuples(positive, positive, positive, positive),
    rows=st.lists(history, min_size=1, max_size=30),
)
def test_the_sample_objective_is_the_log_likelihood_summed_over_customers(
    params: tuple[float, float, float, float], rows: list[tuple[int, int, int]]
) -> None:
    x, t_x, T = _histories(rows)
    ux, utx, uT, weights = likelihood._compress(x, t_x, T)
    values = np.array(params)
    with np.errstate(all="ignore"):
        direct = pareto_nbd.log_likelihood(values, x, t_x, T)
        compressed = pareto_nbd.log_likelihood(values, ux, utx, uT, weights)
        sample = pareto_nbd._Sample(ux, utx, uT, weights)(values)
    assert sample == compressed or (np.isnan(sample) and np.isnan(compressed))
    assert np.isclose(sample, direct, rtol=1e-9, atol=1e-9) or (np.isnan(sample) and np.isnan(direct))


def test_histories_that_share_an_x_and_a_time_share_one_term() -> None:
    # Two one-time buyers of the same age and a repeat buyer whose t_x is their age: 2 distinct
    # (x, time) pairs for the one-time buyers ((0, 0), (0, 30)) and 1 for the other ((2, 30)).
    x, t_x, T = np.array([0.0, 2.0]), np.array([0.0, 30.0]), np.array([30.0, 30.0])
    sample = pareto_nbd._Sample(x, t_x, T, np.array([2.0, 1.0]))
    assert len(sample.distinct_x) == 3
    assert sample(np.ones(4)) == pareto_nbd.log_likelihood(np.ones(4), x, t_x, T, np.array([2.0, 1.0]))
