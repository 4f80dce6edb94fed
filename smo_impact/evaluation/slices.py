"""Per-slice metrics: the same metrics on each value of an item column, the worst slice named, and
false-positive-rate gaps across groups (over-flagging content that mentions a group is a known bias
rater pools can introduce).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smo_impact.evaluation.regression import metric_safe

SLICE_METRICS = ("accuracy", "recall", "fpr", "macro_f1", "n")
# A slice needs this many items (and negatives, for its FPR) before it can be called worst.
MIN_SLICE_SIZE = 10


@dataclass
class SliceReport:
    """Per-slice results of one benchmark.

    Attributes:
        table: One row per (column, value): ``column, value, n, positives, negatives, accuracy,
            recall, fpr, macro_f1``.
        metrics: ``slice/<column>/<value>/<metric>``, ``worst_slice/<column>/macro_f1``,
            ``fpr_gap/<column>`` (max minus min FPR over slices with enough negatives).
        worst: ``{column: "value"}``, the slice with the lowest macro-F1 among those with at least
            :data:`MIN_SLICE_SIZE` items.
    """

    table: pd.DataFrame
    metrics: dict[str, float]
    worst: dict[str, str]


def _macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    f1s = []
    for cls in (1, 0):
        tp = np.sum((y == cls) & (pred == cls))
        denom = np.sum(y == cls) + np.sum(pred == cls)
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s))


def slice_report(predictions: pd.DataFrame, columns: tuple[str, ...] | list[str]) -> SliceReport:
    """Metrics per value of each slice column of a run's predictions.

    Args:
        predictions: ``reference`` (0/1), ``predicted`` (0/1) and the slice columns, one row per item.
        columns: Slice columns; missing ones are skipped.
    """
    rows = []
    for column in columns:
        if column not in predictions:
            continue
        values = predictions[column].astype(str).fillna("(none)")
        for value, group in predictions.groupby(values.to_numpy(), sort=True):
            y = group["reference"].to_numpy().astype(int)
            pred = group["predicted"].to_numpy().astype(int)
            pos, neg = int(y.sum()), int((1 - y).sum())
            rows.append(
                {
                    "column": column,
                    "value": str(value),
                    "n": len(y),
                    "positives": pos,
                    "negatives": neg,
                    "accuracy": float(np.mean(y == pred)),
                    "recall": float(pred[y == 1].mean()) if pos else np.nan,
                    "fpr": float(pred[y == 0].mean()) if neg else np.nan,
                    "macro_f1": _macro_f1(y, pred),
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
            row = big.loc[big["macro_f1"].idxmin()]
            worst[column] = str(row["value"])
            metrics[f"worst_slice/{column}/macro_f1"] = float(row["macro_f1"])
        with_negatives = group[(group["negatives"] >= MIN_SLICE_SIZE) & group["fpr"].notna()]
        if len(with_negatives) >= 2:
            metrics[f"fpr_gap/{column}"] = float(with_negatives["fpr"].max() - with_negatives["fpr"].min())
    return SliceReport(table=table, metrics=metrics, worst=worst)
