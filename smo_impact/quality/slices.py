"""Agreement per slice: by item attribute (domain, target group, functionality) and by rater group."""

from __future__ import annotations

import pandas as pd

from smo_impact.data.schema import vote_counts
from smo_impact.quality.agreement import fleiss_kappa, krippendorff_alpha, pairable_items, percent_agreement, scale_alphas

SLICE_COLUMNS = [
    "kind", "slice", "value", "items", "pairable_items", "judgements", "raters",
    "percent_agreement", "fleiss_kappa", "krippendorff_alpha", "positive_rate",
]  # fmt: skip


def same_partitions(table: pd.DataFrame, columns: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Columns that split the rows of ``table`` into exactly the same groups as an earlier column.

    HS-Brexit's raters carry ``group`` (target, control) and ``group_id`` (group1, group2): two
    names for one partition, which would report every figure twice. Missing values form a group of
    their own, as in :func:`slice_agreement`.

    Returns:
        ``{later column: the earlier column it duplicates}``, in the order of ``columns``.
    """
    kept: list[str] = []
    duplicates: dict[str, str] = {}
    codes = {c: pd.factorize(table[c], use_na_sentinel=False)[0] for c in columns if c in table.columns}
    for column in codes:
        for earlier in kept:
            # Same partition: the pairs of group codes are as many as the groups of either column.
            pairs = len(set(zip(codes[column], codes[earlier])))
            if pairs == len(set(codes[column])) == len(set(codes[earlier])):
                duplicates[column] = earlier
                break
        else:
            kept.append(column)
    return duplicates


def _row(kind: str, column: str, value: str, annotations: pd.DataFrame, labels: tuple | list, flag_labels: tuple) -> dict:
    # Agreement within a rater group rests on the items two of *its* raters judged: the count
    # matrix holds the group's judgements only, and every coefficient skips items with fewer than 2.
    counts = vote_counts(annotations, labels).to_numpy()
    return {
        "kind": kind,
        "slice": column,
        "value": value,
        "items": int(annotations["task"].nunique()),
        "pairable_items": pairable_items(counts),
        "judgements": len(annotations),
        "raters": int(annotations["worker"].nunique()),
        "percent_agreement": percent_agreement(counts),
        "fleiss_kappa": fleiss_kappa(counts).kappa,
        "krippendorff_alpha": krippendorff_alpha(counts),
        **{f"krippendorff_alpha_{level}": alpha for level, alpha in scale_alphas(counts, labels).items()},
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
        ``pairable_items`` (items with >= 2 judgements in the slice: for a rater group, >= 2 by
        its own raters; the agreement figures rest on these alone), ``judgements``, ``raters``,
        ``percent_agreement``, ``fleiss_kappa`` (see :func:`agreement.fleiss_kappa` on
        unbalanced designs), ``krippendorff_alpha`` (nominal; ``_ordinal`` and ``_interval`` too
        on scales that have them, see :func:`agreement.scale_alphas`) and ``positive_rate``
        (share of judgements with the positive label).
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
    extra = [c for c in (rows[0] if rows else {}) if c not in SLICE_COLUMNS]
    return pd.DataFrame(rows, columns=[*SLICE_COLUMNS[:-1], *extra, SLICE_COLUMNS[-1]])
