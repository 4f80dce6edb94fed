"""Agreement per slice: by item attribute (domain, target group, functionality) and by rater group."""

from __future__ import annotations

import pandas as pd

from smo_impact.data.schema import vote_counts
from smo_impact.quality.agreement import krippendorff_alpha, percent_agreement

SLICE_COLUMNS = ["kind", "slice", "value", "items", "judgements", "raters", "percent_agreement", "krippendorff_alpha", "positive_rate"]


def _row(kind: str, column: str, value: str, annotations: pd.DataFrame, labels: tuple | list, flag_labels: tuple) -> dict:
    counts = vote_counts(annotations, labels).to_numpy()
    return {
        "kind": kind,
        "slice": column,
        "value": value,
        "items": int(annotations["task"].nunique()),
        "judgements": len(annotations),
        "raters": int(annotations["worker"].nunique()),
        "percent_agreement": percent_agreement(counts),
        "krippendorff_alpha": krippendorff_alpha(counts),
        "positive_rate": float(annotations["label"].isin(flag_labels).mean()) if len(annotations) else float("nan"),
    }


def slice_agreement(
    annotations: pd.DataFrame,
    labels: tuple | list,
    positive_label: object | tuple,
    items: pd.DataFrame | None = None,
    slice_columns: tuple[str, ...] | list[str] = (),
    workers: pd.DataFrame | None = None,
    worker_columns: tuple[str, ...] | list[str] = (),
) -> pd.DataFrame:
    """Agreement within each slice of items, and within each group of raters.

    An item slice keeps every judgement on its items (``kind="item"``); a rater group keeps only
    the judgements of its raters (``kind="rater"``), e.g. HS-Brexit's target-group raters vs the
    control group. Missing slice values are reported as ``(none)``. ``positive_label`` may be a
    tuple of labels that all count as positive (a rating scale's harmful grades).

    Returns:
        One row per (slice column, value): ``kind``, ``slice``, ``value``, ``items``,
        ``judgements``, ``raters``, ``percent_agreement``, ``krippendorff_alpha`` (nominal) and
        ``positive_rate`` (share of judgements with the positive label).
    """
    flag_labels = positive_label if isinstance(positive_label, tuple) else (positive_label,)
    rows = []
    for kind, table, key, columns in (
        ("item", items, "task", slice_columns),
        ("rater", workers, "worker", worker_columns),
    ):
        if table is None:
            continue
        for column in columns:
            if column not in table.columns:
                continue
            values = table.set_index(key)[column].reindex(annotations[key].to_numpy())
            values = values.astype(str).where(values.notna().to_numpy(), "(none)").to_numpy()
            for value in sorted(set(values)):
                rows.append(_row(kind, column, value, annotations[values == value], labels, flag_labels))
    return pd.DataFrame(rows, columns=SLICE_COLUMNS)
