"""Power planning against an independent computation: the noncentral t distribution from scipy.

For a two-sided one-sample t-test of n values with standard deviation sd at level alpha, the power
against a true mean delta is P(|T| > t_crit) with T ~ noncentral t(df = n - 1, nc = delta / (sd / sqrt n)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from smo_impact.analysis.power import minimum_detectable_effect, plan_power, seeds_needed


def _power(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    crit = stats.t.ppf(1 - alpha / 2, n - 1)
    nc = delta / (sd / np.sqrt(n))
    return float(stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc))


@given(sd=st.floats(0.001, 0.1), n=st.integers(2, 60))
@settings(max_examples=40, deadline=None)
def test_mde_has_the_promised_power(sd, n):
    mde = minimum_detectable_effect(sd, n)
    assert _power(mde, sd, n) == pytest.approx(0.8, abs=5e-5)  # quadrature error ~1e-5


@given(sd=st.floats(0.002, 0.05), d=st.floats(0.05, 3.0))
@settings(max_examples=40, deadline=None)
def test_seeds_needed_is_the_smallest_n_with_enough_power(sd, d):
    # d = effect / sd up to 3: the range where scipy's noncentral t is numerically stable.
    effect = d * sd
    n = seeds_needed(sd, effect)
    if n > 10_000:
        assert _power(effect, sd, 10_000) < 0.8
        return
    assert _power(effect, sd, n) >= 0.8 - 5e-5
    if n > 2:
        assert _power(effect, sd, n - 1) < 0.8 + 5e-5


def test_power_where_scipy_nct_fails_agrees_with_simulation():
    # d = 6.25 on 2-3 seeds: scipy.stats.nct returns NaN here; a Monte Carlo t-test is the reference.
    from smo_impact.analysis.power import t_test_power

    rng = np.random.default_rng(0)
    for n in (2, 3):
        x = rng.normal(6.25, 1.0, size=(200_000, n))
        t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / np.sqrt(n))
        simulated = np.mean(np.abs(t) > stats.t.ppf(0.975, n - 1))
        assert t_test_power(6.25, n) == pytest.approx(simulated, abs=0.005)


def test_degenerate_inputs():
    assert np.isnan(minimum_detectable_effect(0.01, 1))
    assert minimum_detectable_effect(0.0, 5) == 0.0
    assert seeds_needed(0.0, 0.01) == 2
    assert seeds_needed(0.01, 0.0) == 10_001


def test_plan_power_reads_the_per_seed_differences():
    deltas = [-0.021, -0.018, -0.024, -0.017, -0.020]
    runs = pd.DataFrame({
        "arm": ["control"] * 5 + ["noise"] * 5, "grid": ["-"] * 10, "seed": list(range(5)) * 2,
        "delta/test/macro_f1": [np.nan] * 5 + deltas,
    })
    (row,) = plan_power(runs, "test/macro_f1", effect=0.005, planned=3, control="control")
    sd = float(np.std(deltas, ddof=1))
    assert (row.arm, row.seeds, row.mean, row.sd) == ("noise", 5, pytest.approx(np.mean(deltas)), pytest.approx(sd))
    assert _power(row.mde, sd, 3) == pytest.approx(0.8, abs=5e-5)
    assert _power(0.005, sd, row.needed) >= 0.8 > _power(0.005, sd, row.needed - 1)
