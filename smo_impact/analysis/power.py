"""Power and seed planning: how many seeds does an arm need before its verdict means something?

A treatment arm is judged on its per-seed paired differences ``d_s = treatment_s - control_s``
(``delta/<metric>`` of each run): the arm-level gate is a one-sample t-test of those differences.
Their spread between seeds (the noise of the label treatment, the model's own randomness) decides
how large an effect a given number of seeds can detect. From the per-seed differences already in
the store (or a pilot), this module gives, per arm:

* the minimum detectable effect (MDE) at a number of seeds: the true mean difference the two-sided
  t-test at ``alpha`` detects with probability ``power``;
* the number of seeds needed to detect a given effect with that power.

Both use the power of the t-test under the noncentral t distribution (:func:`t_test_power`), with
the standard deviation estimated from the pilot seeds; with few pilot seeds that estimate is itself noisy, which the
simulation in ``benchmarks/bench_power.py`` measures.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 10_000


def t_test_power(d: float, seeds: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided one-sample t-test over ``seeds`` values against a standardized true
    mean ``d`` (mean / sd).

    With ``T = (Z + nc) / sqrt(V / df)``, ``nc = d sqrt(n)``, ``V ~ chi2(df)``: the power is
    ``E_V[Phi(nc - c s) + Phi(-nc - c s)]`` with ``s = sqrt(V / df)`` and ``c`` the t quantile,
    averaged over V at its quantiles (midpoint rule on 4,000 points). scipy's and statsmodels'
    noncentral t return NaN for large ``nc`` at few degrees of freedom, exactly the case of a
    strong effect measured on 2-4 seeds.
    """
    from scipy import stats

    df = seeds - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(d) * np.sqrt(seeds)
    s = np.sqrt(_chi2_quantiles(df) / df)
    return float(np.mean(stats.norm.cdf(nc - crit * s) + stats.norm.cdf(-nc - crit * s)))


@functools.lru_cache(maxsize=256)
def _chi2_quantiles(df: int, points: int = 4000) -> np.ndarray:
    from scipy import stats

    return stats.chi2.ppf((np.arange(points) + 0.5) / points, df)


def minimum_detectable_effect(sd: float, seeds: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true mean difference a two-sided one-sample t-test over ``seeds`` per-seed
    differences of standard deviation ``sd`` detects with probability ``power``.

    NaN with fewer than 2 seeds (no t-test) or an unknown ``sd``; 0 when ``sd`` is 0.
    """
    if seeds < 2 or not np.isfinite(sd):
        return float("nan")
    if sd == 0:
        return 0.0
    from scipy.optimize import brentq

    d = brentq(lambda x: t_test_power(x, seeds, alpha) - power, 0.0, 1e3, xtol=1e-10)
    return float(d * sd)


def seeds_needed(sd: float, effect: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """The fewest seeds (>= 2) whose t-test detects a true mean difference ``effect`` with ``power``.

    Returns 2 when ``sd`` is 0 (every seed agrees; two are needed for a test at all), and
    :data:`MAX_SEEDS` + 1 when even that many would not do (``effect`` 0).
    """
    if not np.isfinite(sd) or effect == 0:
        return MAX_SEEDS + 1
    if sd == 0:
        return 2
    d = abs(effect) / sd

    def enough(n: int) -> bool:
        return t_test_power(d, n, alpha) >= power

    # Power grows with n: double until enough (large n overflow the noncentral t: never go far
    # past the answer), then bisect for the first n that is enough.
    high = 2
    while not enough(high):
        if high >= MAX_SEEDS:
            return MAX_SEEDS + 1
        high = min(2 * high, MAX_SEEDS)
    low = max(2, high // 2)
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid + 1, high)
    return low


@dataclass
class ArmPower:
    """Power figures of one treatment arm (grid point)."""

    arm: str
    grid: str
    seeds: int  # seeds with a paired difference
    mean: float
    sd: float
    mde: float  # at ``planned`` seeds
    planned: int
    needed: int  # seeds to detect ``effect``
    effect: float


def plan_power(
    runs: pd.DataFrame, metric: str, effect: float, planned: int, control: str,
    alpha: float = ALPHA, power: float = POWER,
) -> list[ArmPower]:
    """Per treatment arm/grid point: spread of the per-seed differences, MDE at ``planned`` seeds
    and the seeds needed for ``effect``.

    Args:
        runs: One row per finished run: ``arm``, ``grid``, ``seed`` and ``delta/<metric>``.
        metric: The metric, e.g. ``test/macro_f1`` (its delta column is read).
        effect: The difference to detect, in the metric's units (sign ignored).
        planned: Seeds the experiment is configured with.
        control: The control arm (no differences of its own).
    """
    column = f"delta/{metric}"
    out: list[ArmPower] = []
    if column not in runs.columns:
        return out
    treated = runs[(runs["arm"] != control) & runs[column].notna()]
    for (arm, grid), group in treated.groupby(["arm", "grid"], sort=False):
        values = group[column].to_numpy(dtype=float)
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        out.append(ArmPower(
            arm=str(arm), grid=str(grid), seeds=len(values), mean=float(np.mean(values)), sd=sd,
            mde=minimum_detectable_effect(sd, planned, alpha, power), planned=planned,
            needed=seeds_needed(sd, effect, alpha, power), effect=abs(effect),
        ))
    return out


__all__ = ["ArmPower", "minimum_detectable_effect", "plan_power", "seeds_needed"]


def stored_differences(config, tracker, digest: str, metric: str) -> pd.DataFrame:
    """Per treatment arm/grid point and seed, ``delta/<metric>`` = treatment - control of that seed,
    recomputed from the two stored runs' own metrics.

    Any seed counts, not only the configured ones: a stored run matches a planned (arm, grid point)
    when its key equals that spec's key at the run's seed (same steps, model, evaluation and data).
    """
    from dataclasses import replace

    from smo_impact.runner.plan import plan_runs

    templates = {}
    for spec in plan_runs(config):
        templates.setdefault((spec.arm, spec.grid_label), spec)
    stored = {}
    for run in tracker.find_runs({"smo.kind": "run"}, statuses=("FINISHED",)):
        try:
            seed = int(run.tags.get("smo.seed", ""))
        except ValueError:
            continue
        stored.setdefault((run.tags.get("smo.run_key"), seed), run)
    values: dict[tuple[str, str, int], float] = {}
    control_values: dict[int, float] = {}
    for (arm, grid), spec in templates.items():
        for (key, seed), run in stored.items():
            if key == replace(spec, seed=seed).key(config, digest) and metric in run.metrics:
                if spec.is_control:
                    control_values[seed] = run.metrics[metric]
                else:
                    values[(arm, grid, seed)] = run.metrics[metric]
    rows = [
        {"arm": arm, "grid": grid, "seed": seed, f"delta/{metric}": value - control_values[seed]}
        for (arm, grid, seed), value in sorted(values.items()) if seed in control_values
    ]
    return pd.DataFrame(rows, columns=["arm", "grid", "seed", f"delta/{metric}"])
