"""Regression of a treatment run against the control run of the same seed, item by item.

Both runs score the same benchmark items against the same reference, so the comparison is paired:
which items the treatment newly misses (new false negatives: harm the control caught and the
treatment lets through), which it newly over-blocks (new false positives), McNemar's test on the
discordant items, and paired-bootstrap intervals and p-values of the metric deltas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from smo_impact.evaluation.bootstrap import paired_bootstrap

NEW_FALSE_NEGATIVE = "new_false_negative"
NEW_FALSE_POSITIVE = "new_false_positive"


def mcnemar_test(control_correct: np.ndarray, treatment_correct: np.ndarray) -> tuple[float, float]:
    """McNemar's test of paired correctness (statsmodels): returns (statistic, p-value).

    Exact binomial test when fewer than 25 items are discordant, else chi-square with continuity
    correction. No discordant item: statistic 0, p-value 1.
    """
    from statsmodels.stats.contingency_tables import mcnemar

    c = np.asarray(control_correct, dtype=bool)
    t = np.asarray(treatment_correct, dtype=bool)
    table = np.array([[np.sum(c & t), np.sum(c & ~t)], [np.sum(~c & t), np.sum(~c & ~t)]])
    discordant = table[0, 1] + table[1, 0]
    if discordant == 0:
        return 0.0, 1.0
    result = mcnemar(table, exact=discordant < 25, correction=True)
    return float(result.statistic), float(result.pvalue)


@dataclass
class PairedRegression:
    """Paired comparison of a treatment run with its control on one benchmark.

    Attributes:
        metrics: ``new_false_negatives``, ``new_false_positives``, ``fixed_false_negatives``,
            ``fixed_false_positives``, ``mcnemar_statistic``, ``mcnemar_pvalue``,
            ``<metric>_ci_low`` / ``<metric>_ci_high`` (paired-bootstrap interval of the delta),
            ``<metric>_p`` (paired-bootstrap p-value of "delta = 0"; see
            :class:`~smo_impact.evaluation.bootstrap.PairedDelta`), and
            ``slice/<column>/<value>/new_false_negatives`` / ``.../new_false_positives``.
        items: The regressed items: the benchmark's item columns plus ``reference``,
            ``control_score``, ``treatment_score`` and ``regression`` (new_false_negative /
            new_false_positive).
    """

    metrics: dict[str, float]
    items: pd.DataFrame


def paired_regression(
    control: pd.DataFrame,
    treatment: pd.DataFrame,
    threshold: float,
    rng: np.random.Generator,
    slice_columns: tuple[str, ...] = (),
    n_resamples: int = 1000,
    confidence: float = 0.95,
    ci_metrics: tuple[str, ...] = ("macro_f1", "roc_auc", "recall"),
) -> PairedRegression:
    """Compare two runs' predictions on the same items.

    Args:
        control: The control run's predictions (``task``, ``reference``, ``score``, ``predicted``
            and item columns), one row per benchmark item.
        treatment: The treatment run's predictions on the same tasks.
        threshold: Decision threshold used for both.
        rng: Generator for the paired bootstrap.
        slice_columns: Item columns to count regressions per value of.
        n_resamples: Bootstrap resamples; 0 skips the intervals and p-values.
        confidence: Interval coverage.
        ci_metrics: Metrics whose deltas get intervals and p-values (names from
            :data:`~smo_impact.evaluation.bootstrap.BOOTSTRAP_METRICS`).
    """
    treatment = treatment.set_index("task").reindex(control["task"]).reset_index()
    if treatment["score"].isna().any():
        missing = control.loc[treatment["score"].isna().to_numpy(), "task"].iloc[0]
        raise ValueError(f"treatment predictions lack task {missing!r} that the control scored")
    ref = control["reference"].to_numpy().astype(int)
    c_pred = control["predicted"].to_numpy().astype(int)
    t_pred = treatment["predicted"].to_numpy().astype(int)
    new_fn = (ref == 1) & (c_pred == 1) & (t_pred == 0)
    new_fp = (ref == 0) & (c_pred == 0) & (t_pred == 1)
    fixed_fn = (ref == 1) & (c_pred == 0) & (t_pred == 1)
    fixed_fp = (ref == 0) & (c_pred == 1) & (t_pred == 0)
    statistic, pvalue = mcnemar_test(c_pred == ref, t_pred == ref)
    metrics = {
        "new_false_negatives": float(new_fn.sum()),
        "new_false_positives": float(new_fp.sum()),
        "fixed_false_negatives": float(fixed_fn.sum()),
        "fixed_false_positives": float(fixed_fp.sum()),
        "mcnemar_statistic": statistic,
        "mcnemar_pvalue": pvalue,
    }
    if n_resamples > 0:
        deltas = paired_bootstrap(
            ref, control["score"].to_numpy(), treatment["score"].to_numpy(), threshold, rng,
            n_resamples, confidence, ci_metrics,
        )
        for name, delta in deltas.items():
            metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = delta.low, delta.high
            metrics[f"{name}_p"] = delta.p_value
    for column in slice_columns:
        if column not in control:
            continue
        values = control[column].astype(str).fillna("(none)").to_numpy()
        for value in sorted(set(values)):
            in_slice = values == value
            key = f"slice/{column}/{metric_safe(value)}"
            metrics[f"{key}/new_false_negatives"] = float((new_fn & in_slice).sum())
            metrics[f"{key}/new_false_positives"] = float((new_fp & in_slice).sum())

    regressed = new_fn | new_fp
    item_columns = [c for c in control.columns if c not in ("score", "predicted")]
    items = control.loc[regressed, item_columns].copy()
    items["control_score"] = control.loc[regressed, "score"].to_numpy()
    items["treatment_score"] = treatment.loc[regressed, "score"].to_numpy()
    items["regression"] = np.where(new_fn[regressed], NEW_FALSE_NEGATIVE, NEW_FALSE_POSITIVE)
    return PairedRegression(metrics=metrics, items=items.reset_index(drop=True))


def metric_safe(value: object) -> str:
    """A slice value as an MLflow-legal name part (letters, digits, ``_ - .``; others become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_\-.]", "_", str(value)).strip("_") or "_"
