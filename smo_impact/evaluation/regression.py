"""Regression of a treatment run against the control run of the same seed, item by item.

Both runs score the same benchmark items against the same reference, so the comparison is paired:
which items the treatment newly misses (new false negatives: harm the control caught and the
treatment lets through), which it newly over-blocks (new false positives), McNemar's test on the
discordant items, and paired-bootstrap intervals and p-values of the metric deltas.

On a K-class benchmark the new false negatives/positives are those of the binary view (harm the
control flagged and the treatment lets through, and the reverse), and the K-class comparison adds
the items the control classified right and the treatment wrong (``new_errors``, per reference ->
predicted label pair, e.g. ``new_errors/hate_to_neither``), the reverse (``fixed_errors``), and
McNemar's test on K-class correctness.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from smo_impact.evaluation.bootstrap import (
    BOOTSTRAP_METRICS,
    MULTICLASS_BOOTSTRAP_METRICS,
    multiclass_paired_bootstrap,
    paired_bootstrap,
)

NEW_FALSE_NEGATIVE = "new_false_negative"
NEW_FALSE_POSITIVE = "new_false_positive"
NEW_ERROR = "new_error"  # K classes: right in the control, wrong in the treatment, same binary view


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
            ``slice/<column>/<value>/new_false_negatives`` / ``.../new_false_positives``; on a
            K-class benchmark also ``new_errors``, ``fixed_errors``,
            ``new_errors/<reference>_to_<treatment's prediction>``,
            ``fixed_errors/<reference>_to_<control's prediction>`` and
            ``slice/<column>/<value>/new_errors`` (McNemar is then on K-class correctness).
        items: The regressed items: the benchmark's item columns plus ``reference``,
            ``control_score``, ``treatment_score`` and ``regression`` (new_false_negative /
            new_false_positive; K classes: also new_error, with ``control_label`` and
            ``treatment_label``, the two runs' predicted labels).
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
        ci_metrics: Metrics whose deltas get intervals and p-values: names from
            :data:`~smo_impact.evaluation.bootstrap.BOOTSTRAP_METRICS` for a binary benchmark; for a
            K-class one (predictions with ``reference_class``, ``predicted_class`` and ``proba_*``)
            those from :data:`~smo_impact.evaluation.bootstrap.MULTICLASS_BOOTSTRAP_METRICS` and
            ``binary/<name>`` for its binary view. Others are skipped.
    """
    from smo_impact.evaluation.benchmarks import class_probabilities

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
    k_class = all(c in frame for frame in (control, treatment) for c in ("reference_class", "predicted_class"))
    if k_class:
        ref_class = control["reference_class"].to_numpy().astype(int)
        c_class = control["predicted_class"].to_numpy().astype(int)
        t_class = treatment["predicted_class"].to_numpy().astype(int)
        c_right, t_right = c_class == ref_class, t_class == ref_class
        new_error, fixed_error = c_right & ~t_right, ~c_right & t_right
        statistic, pvalue = mcnemar_test(c_right, t_right)
    else:
        statistic, pvalue = mcnemar_test(c_pred == ref, t_pred == ref)
    metrics = {
        "new_false_negatives": float(new_fn.sum()),
        "new_false_positives": float(new_fp.sum()),
        "fixed_false_negatives": float(fixed_fn.sum()),
        "fixed_false_positives": float(fixed_fp.sum()),
        "mcnemar_statistic": statistic,
        "mcnemar_pvalue": pvalue,
    }
    if k_class:
        reference_label = control["reference_label"].astype(str).to_numpy()
        # Every ordered pair of the labels seen (0 included), so that means over seeds are right.
        seen = sorted({*reference_label, *control["predicted_label"].astype(str), *treatment["predicted_label"].astype(str)})
        for kind, which, predicted in (("new_errors", new_error, treatment), ("fixed_errors", fixed_error, control)):
            metrics[kind] = float(which.sum())
            pairs = pd.Series(list(zip(reference_label[which], predicted["predicted_label"].astype(str).to_numpy()[which])))
            counts = pairs.value_counts()
            for true in seen:
                for wrong in seen:
                    if true != wrong:
                        metrics[f"{kind}/{metric_safe(true)}_to_{metric_safe(wrong)}"] = float(counts.get((true, wrong), 0))
    if n_resamples > 0 and k_class:
        deltas = multiclass_paired_bootstrap(
            ref_class, class_probabilities(control), class_probabilities(treatment), rng, n_resamples, confidence,
            tuple(m for m in ci_metrics if m in MULTICLASS_BOOTSTRAP_METRICS),
            (ref, control["score"].to_numpy(), treatment["score"].to_numpy(), threshold),
            tuple(m[len("binary/"):] for m in ci_metrics if m.startswith("binary/") and m[len("binary/"):] in BOOTSTRAP_METRICS),
        )
    elif n_resamples > 0 and "reference_class" in control:
        # A K-class benchmark on which one run was scored on the binary view only (trained on
        # another label set): only the binary view is compared, under its own names.
        view = tuple(dict.fromkeys(m.removeprefix("binary/") for m in ci_metrics if m.removeprefix("binary/") in BOOTSTRAP_METRICS))
        deltas = {
            f"binary/{name}": delta for name, delta in paired_bootstrap(
                ref, control["score"].to_numpy(), treatment["score"].to_numpy(), threshold, rng,
                n_resamples, confidence, view,
            ).items()
        }
    elif n_resamples > 0:
        deltas = paired_bootstrap(
            ref, control["score"].to_numpy(), treatment["score"].to_numpy(), threshold, rng,
            n_resamples, confidence, tuple(m for m in ci_metrics if m in BOOTSTRAP_METRICS),
        )
    if n_resamples > 0:
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
            if k_class:
                metrics[f"{key}/new_errors"] = float((new_error & in_slice).sum())

    regressed = new_fn | new_fp | (new_error if k_class else False)
    dropped = ("score", "predicted", "predicted_class", "predicted_label")
    item_columns = [c for c in control.columns if c not in dropped and not str(c).startswith("proba_")]
    items = control.loc[regressed, item_columns].copy()
    items["control_score"] = control.loc[regressed, "score"].to_numpy()
    items["treatment_score"] = treatment.loc[regressed, "score"].to_numpy()
    items["regression"] = np.where(
        new_fn[regressed], NEW_FALSE_NEGATIVE, np.where(new_fp[regressed], NEW_FALSE_POSITIVE, NEW_ERROR)
    )
    if k_class:
        items["control_label"] = control.loc[regressed, "predicted_label"].astype(str).to_numpy()
        items["treatment_label"] = treatment.loc[regressed, "predicted_label"].astype(str).to_numpy()
    return PairedRegression(metrics=metrics, items=items.reset_index(drop=True))


def metric_safe(value: object) -> str:
    """A slice value as an MLflow-legal name part (letters, digits, ``_ - .``; others become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_\-.]", "_", str(value)).strip("_") or "_"
