"""Per-slice metrics: the same metrics on each value of an item column, the worst slice named, and
false-positive-rate gaps across groups (over-flagging content that mentions a group is a known bias
rater pools can introduce).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from smo_impact.evaluation.metrics import multiclass_confusion, multiclass_confusion_metrics, threshold_metrics
from smo_impact.evaluation.regression import metric_safe

SLICE_METRICS = ("accuracy", "recall", "fpr", "macro_f1", "n")
# A slice needs this many items (and negatives, for its FPR) before it can be called worst.
MIN_SLICE_SIZE = 10


@dataclass
class SliceReport:
    """Per-slice results of one benchmark.

    Attributes:
        table: One row per (column, value): ``column, value, n, positives, negatives, accuracy,
            recall, fpr, macro_f1``; undefined metrics are NaN (recall without positives, fpr
            without negatives, macro_f1 unless the slice holds both classes).
        metrics: ``slice/<column>/<value>/<metric>`` (defined metrics only),
            ``worst_slice/<column>/accuracy`` (lowest accuracy among slices of at least
            :data:`MIN_SLICE_SIZE` items), ``worst_slice/<column>/macro_f1`` (lowest macro-F1 among
            such slices that hold both classes), ``fpr_gap/<column>`` (max minus min FPR over
            slices with at least :data:`MIN_SLICE_SIZE` negatives).
        worst: ``{column: "value"}``, the slice with the lowest accuracy among those with at least
            :data:`MIN_SLICE_SIZE` items. Accuracy, because it is defined on every slice: many
            slices hold one class only (every HateCheck functionality does), where macro-F1 is not.
    """

    table: pd.DataFrame
    metrics: dict[str, float]
    worst: dict[str, str]


def slice_report(predictions: pd.DataFrame, columns: tuple[str, ...] | list[str]) -> SliceReport:
    """Metrics per value of each slice column of a run's predictions.

    Args:
        predictions: ``reference`` (0/1), ``predicted`` (0/1) and the slice columns, one row per item.
            K-class predictions (``reference_class`` and ``predicted_class`` codes) get the K-class
            ``accuracy`` and ``macro_f1`` per slice; ``recall`` and ``fpr`` stay the binary view's
            (harm caught, benign items flagged).
        columns: Slice columns; missing ones are skipped.
    """
    rows = []
    classes = "predicted_class" in predictions and "reference_class" in predictions
    k = int(predictions[[c for c in predictions.columns if str(c).startswith("proba_")]].shape[1]) if classes else 0
    for column in columns:
        if column not in predictions:
            continue
        values = predictions[column].astype(str).fillna("(none)")
        for value, group in predictions.groupby(values.to_numpy(), sort=True):
            y = group["reference"].to_numpy().astype(int)
            counted = threshold_metrics(y, group["predicted"].to_numpy().astype(int))
            if classes:
                confusion = multiclass_confusion(group["reference_class"], group["predicted_class"], k)
                counted = {**counted, **{m: float(v) for m, v in multiclass_confusion_metrics(confusion).items()
                                         if m in ("accuracy", "macro_f1")}}
            rows.append(
                {
                    "column": column,
                    "value": str(value),
                    "n": len(y),
                    "positives": int(y.sum()),
                    "negatives": int((1 - y).sum()),
                    **{metric: counted[metric] for metric in SLICE_METRICS[:-1]},
                }
            )
    table = pd.DataFrame(rows, columns=["column", "value", "n", "positives", "negatives", *SLICE_METRICS[:-1]])
    metrics: dict[str, float] = {}
    worst: dict[str, str] = {}
    for _, row in table.iterrows():
        for metric in SLICE_METRICS:
            if not pd.isna(row[metric]):
                metrics[f"slice/{row['column']}/{metric_safe(row['value'])}/{metric}"] = float(row[metric])
    for column, group in table.groupby("column", sort=False):
        big = group[group["n"] >= MIN_SLICE_SIZE]
        if not big.empty:
            row = big.loc[big["accuracy"].idxmin()]
            worst[column] = str(row["value"])
            metrics[f"worst_slice/{column}/accuracy"] = float(row["accuracy"])
        two_class = big[big["macro_f1"].notna()]
        if not two_class.empty:
            metrics[f"worst_slice/{column}/macro_f1"] = float(two_class["macro_f1"].min())
        with_negatives = group[(group["negatives"] >= MIN_SLICE_SIZE) & group["fpr"].notna()]
        if len(with_negatives) >= 2:
            metrics[f"fpr_gap/{column}"] = float(with_negatives["fpr"].max() - with_negatives["fpr"].min())
    return SliceReport(table=table, metrics=metrics, worst=worst)
