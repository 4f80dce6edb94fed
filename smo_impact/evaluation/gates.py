"""Regression gates: pass/fail verdicts for a treatment run and for a whole arm, with reasons.

A run is compared with the control run of the same seed (its ``delta/*`` and ``regression/*``
metrics); an arm (one grid point of it) with the mean over its seeds, and a one-sample t-test of
the per-seed deltas says whether the difference is more than seed-to-seed variation.

Significance of a single run comes from a test of the gated quantity itself: a metric's drop from
the paired-bootstrap p-value of its delta (``delta/<ns>/<metric>_p``), a count of new errors from
McNemar's test of paired correctness (``regression/<ns>/mcnemar_pvalue``), which tests exactly
that: whether the two models' error rates differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smo_impact.evaluation.metrics import LOWER_IS_BETTER

if TYPE_CHECKING:
    from smo_impact.config import GateSpec

PASSED, FAILED = "passed", "failed"


@dataclass
class GateVerdict:
    """A gate decision: ``passed`` and, when it failed, one reason per violated gate."""

    passed: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return PASSED if self.passed else FAILED

    def tags(self, prefix: str = "smo.gate") -> dict[str, str]:
        return {prefix: self.status, f"{prefix}_reasons": "; ".join(self.reasons)[:5000] or "-"}


def lower_is_better(metric: str) -> bool:
    """Whether a larger value of ``<namespace>/.../<name>`` is worse (fpr, ece, failed cases, ...)."""
    name = metric.rsplit("/", 1)[-1]
    return name in LOWER_IS_BETTER or metric.split("/")[1:2] == ["fpr_gap"] or name == "failed_cases"


def _drop(metric: str, delta: float) -> float:
    return delta if lower_is_better(metric) else -delta


def run_verdict(metrics: Mapping[str, float], gates: GateSpec, namespaces: list[str]) -> GateVerdict:
    """Gate one treatment run on its deltas and regressions vs the control run of its seed.

    Args:
        metrics: The run's metrics, including ``delta/<ns>/<metric>`` and
            ``regression/<ns>/{new_false_negatives,new_false_positives,mcnemar_pvalue}``.
        gates: The configured gates.
        namespaces: Benchmark namespaces whose regressions are gated.
    """
    reasons: list[str] = []

    def mcnemar(ns: str) -> tuple[bool, str]:
        p = metrics.get(f"regression/{ns}/mcnemar_pvalue", float("nan"))
        return (not gates.require_significance or p < gates.alpha), f"McNemar p={p:.3g}"

    def bootstrap(metric: str) -> tuple[bool, str]:
        p = metrics.get(f"delta/{metric}_p", float("nan"))
        return (not gates.require_significance or p < gates.alpha), f"paired bootstrap p={p:.3g}"

    for metric, tolerated in gates.max_drop.items():
        delta = metrics.get(f"delta/{metric}", float("nan"))
        if np.isnan(delta):
            reasons.append(f"{metric}: no delta vs control to check max_drop {tolerated:g}")
            continue
        drop = _drop(metric, delta)
        ok_sig, why = bootstrap(metric)
        if drop > tolerated and ok_sig:
            reasons.append(f"{metric} dropped {drop:.4f} > max_drop {tolerated:g} ({why})")
    for kind, limit in (("false_negatives", gates.max_new_false_negatives), ("false_positives", gates.max_new_false_positives)):
        if limit is None:
            continue
        for ns in namespaces:
            count = metrics.get(f"regression/{ns}/new_{kind}")
            if count is None or np.isnan(count):
                if f"delta/{ns}/n" in metrics:  # compared with a control, but not item by item
                    reasons.append(f"{ns}: no paired comparison to count new {kind.replace('_', ' ')} "
                                   "(the treatment run's predictions were not logged: tracking.log_predictions "
                                   "is false; rerun with --force)")
                continue
            ok_sig, why = mcnemar(ns)
            if count > limit and ok_sig:
                reasons.append(f"{ns}: {int(count)} new {kind.replace('_', ' ')} > max {limit} ({why})")
    return GateVerdict(not reasons, reasons)


def across_seeds(values: np.ndarray | pd.Series) -> tuple[float, float, float]:
    """Mean, sample std and two-sided one-sample t-test p-value (H0: mean 0) of per-seed values.

    The p-value is NaN with fewer than two seeds or when every seed gives the same value.
    """
    from scipy.stats import ttest_1samp

    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    std = float(x.std(ddof=1)) if len(x) > 1 else float("nan")
    # Seeds that agree up to rounding have no spread to test (and scipy warns about it).
    spread = len(x) > 1 and std > 1e-9 * max(1.0, abs(float(x.mean())))
    p = float(ttest_1samp(x, 0.0).pvalue) if spread else float("nan")
    return float(x.mean()), std, p


def arm_verdicts(runs: pd.DataFrame, gates: GateSpec, namespaces: list[str], control: str) -> pd.DataFrame:
    """Gate every treatment arm/grid point on the mean over its seeds.

    With ``require_significance`` a violation counts when the t-test across seeds (of the drop;
    for new errors, of new minus fixed errors) gives p < alpha, or, where it cannot be computed
    (one seed, or identical seeds), when every run's own test does (the paired-bootstrap p-value
    of a metric's delta; McNemar for new errors).

    Absolute bounds (``min``/``max``: a floor or ceiling of a metric) judge every arm, the control
    too, on its worst run: a smoke test fails when any run's model ranks at chance or predicts one
    class.

    Returns:
        One row per (arm, grid): ``arm, grid, seeds, gate, reasons`` and, per gated quantity,
        ``<quantity>_mean``, ``<quantity>_std``, ``<quantity>_p``; per bound, ``min/<metric>`` or
        ``max/<metric>``: the worst run's value.
    """
    rows = []
    if "arm" not in runs:
        judged = runs.iloc[0:0]
    else:  # bounds judge the control too; comparisons only the treatment arms
        judged = runs if gates.min or gates.max else runs[runs["arm"] != control]
    for (arm, grid), group in judged.groupby(["arm", "grid"], sort=False):
        row: dict[str, object] = {"arm": arm, "grid": grid, "seeds": len(group)}
        reasons: list[str] = []
        for kind, bounds in (("min", gates.min), ("max", gates.max)):
            for metric, bound in bounds.items():
                values = group[metric].dropna() if metric in group else pd.Series(dtype=float)
                if len(values) < len(group):
                    reasons.append(f"{metric}: not logged by {len(group) - len(values)} run(s), {kind} {bound:g} unchecked")
                    if values.empty:
                        continue
                worst = float(values.min() if kind == "min" else values.max())
                row[f"{kind}/{metric}"] = worst
                if (worst < bound) if kind == "min" else (worst > bound):
                    seeds = "" if len(values) == 1 else f" in the worst of {len(values)} seeds"
                    reasons.append(f"{metric} {worst:.4f} {'<' if kind == 'min' else '>'} {kind} {bound:g}{seeds}")
        if arm == control:  # the control has no deltas vs itself: bounds only
            row["gate"] = FAILED if reasons else PASSED
            row["reasons"] = "; ".join(reasons)
            rows.append(row)
            continue

        def check(
            quantity: str, values: pd.Series, pcol: str, limit: float, label: str, tested: pd.Series | None = None
        ) -> None:
            mean, std, _ = across_seeds(values)
            p = across_seeds(values if tested is None else tested)[2]
            row[f"{quantity}_mean"], row[f"{quantity}_std"], row[f"{quantity}_p"] = mean, std, p
            if np.isnan(mean) or mean <= limit:
                return
            if gates.require_significance:
                if np.isnan(p):
                    ok = pcol in group and bool((group[pcol] < gates.alpha).all())
                    test = "McNemar" if pcol.endswith("mcnemar_pvalue") else "paired bootstrap"
                    why = f"{test} p<alpha in every seed" if ok else ""
                else:
                    ok, why = p < gates.alpha, f"t-test across seeds p={p:.3g}"
                if not ok:
                    return
            else:
                why = f"t-test across seeds p={p:.3g}" if not np.isnan(p) else f"{len(values)} seed(s)"
            reasons.append(f"{label} {mean:.4f} > {limit:g} ({why})")

        for metric, tolerated in gates.max_drop.items():
            column = f"delta/{metric}"
            if column not in group:
                reasons.append(f"{metric}: no delta vs control to check max_drop {tolerated:g}")
                continue
            drops = group[column] if lower_is_better(metric) else -group[column]
            check(f"drop/{metric}", drops, f"delta/{metric}_p", tolerated, f"mean drop of {metric}")
        for kind, limit in (("false_negatives", gates.max_new_false_negatives), ("false_positives", gates.max_new_false_positives)):
            if limit is None:
                continue
            for ns in namespaces:
                column = f"regression/{ns}/new_{kind}"
                if column in group:
                    # New errors are counts >= 0; what is tested across seeds is the net change.
                    net = group[column] - group.get(f"regression/{ns}/fixed_{kind}", 0.0)
                    check(f"{ns}/new_{kind}", group[column], f"regression/{ns}/mcnemar_pvalue", limit,
                          f"{ns}: mean new {kind.replace('_', ' ')}", net)
        row["gate"] = FAILED if reasons else PASSED
        row["reasons"] = "; ".join(reasons)
        rows.append(row)
    return pd.DataFrame(rows)
