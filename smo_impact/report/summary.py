"""The experiment summary: arm x grid point, mean and std over seeds, delta vs control."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pandas as pd

from smo_impact.evaluation.gates import across_seeds
from smo_impact.evaluation.metrics import HEADLINE_METRICS


def results_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """One row per finished run: arm, grid, seed and its metrics."""
    return pd.DataFrame(list(rows))


def summarize(runs: pd.DataFrame, split: str, arm_order: Sequence[str]) -> pd.DataFrame:
    """Mean and std over seeds of the headline metrics and their deltas vs control.

    Returns one row per (arm, grid) with columns ``<metric>_mean`` / ``<metric>_std`` (and
    ``<delta metric>_ttest_p``, a one-sample t-test of the per-seed deltas) for every
    ``{split}/<headline>``, ``delta/{split}/<headline>`` and ``treatment/realized_flip_rate``
    present, plus ``seeds`` (finished runs in the group).
    """
    if runs.empty:
        return pd.DataFrame()
    # K-class runs: macro-F1 is over the classes; weighted F1 and the worst class's recall join it.
    metric_cols = [f"{split}/{m}" for m in (*HEADLINE_METRICS, "recall_at_fpr_0.01", "weighted_f1", "worst_class_recall",
                                             "binary/recall")]
    metric_cols += [f"delta/{c}" for c in metric_cols]
    metric_cols += [f"regression/{split}/new_false_negatives", f"regression/{split}/new_false_positives",
                    f"regression/{split}/new_errors"]
    metric_cols += ["treatment/realized_flip_rate", "treatment/label_change_rate"]
    metric_cols += ["treatment/items_kept", "treatment/cost"]  # what an arm trained on and paid
    metric_cols = [c for c in metric_cols if c in runs.columns]
    grouped = runs.groupby(["arm", "grid"], sort=False)[metric_cols]
    table = grouped.agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    # A test across seeds: is the mean delta vs control more than seed-to-seed variation?
    for col in [c for c in metric_cols if c.startswith("delta/")]:
        table[f"{col}_ttest_p"] = runs.groupby(["arm", "grid"], sort=False)[col].agg(lambda v: across_seeds(v)[2])
    table["seeds"] = runs.groupby(["arm", "grid"], sort=False).size()
    table = table.reset_index()
    order = {arm: i for i, arm in enumerate(arm_order)}
    table["_arm_order"] = table["arm"].map(order)
    table["_grid_order"] = range(len(table))
    return table.sort_values(["_arm_order", "_grid_order"]).drop(columns=["_arm_order", "_grid_order"]).reset_index(drop=True)


def summary_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Parent-run metrics: ``summary/<arm>/<grid>/<metric>_<stat>`` with MLflow-safe names."""
    out: dict[str, float] = {}
    for _, row in table.iterrows():
        group = row["arm"] if row["grid"] == "-" else f"{row['arm']}/{row['grid']}"
        group = re.sub(r"[^A-Za-z0-9_\-./]", "_", group.replace("=", "_").replace(",", "/"))
        for col, value in row.items():
            if col in ("arm", "grid", "gate") or pd.isna(value):
                continue
            out[f"summary/{group}/{col}"] = float(value)
    return out


def to_markdown(table: pd.DataFrame, split: str) -> str:
    """The summary as a Markdown table with ``mean ± std`` cells."""
    header, rows = _display_rows(table, split)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_display_frame(table: pd.DataFrame, split: str) -> pd.DataFrame:
    """The summary as shown in the terminal and the Markdown table: human headers, ``mean±std`` text."""
    header, rows = _display_rows(table, split)
    return pd.DataFrame(rows, columns=header)


def _display_rows(table: pd.DataFrame, split: str) -> tuple[list[str], list[list[str]]]:
    columns = [
        (f"{split}/macro_f1", "macro-F1"),
        (f"{split}/roc_auc", "ROC-AUC"),
        (f"{split}/recall", "recall"),
        (f"{split}/weighted_f1", "weighted F1"),
        (f"{split}/worst_class_recall", "worst-class recall"),
        (f"{split}/binary/recall", "binary recall"),
        (f"delta/{split}/macro_f1", "Δ macro-F1"),
        (f"delta/{split}/recall", "Δ recall"),
        (f"{split}/recall_at_fpr_0.01", "recall@1%FPR"),
        (f"regression/{split}/new_false_negatives", "new FN"),
        (f"regression/{split}/new_false_positives", "new FP"),
        (f"regression/{split}/new_errors", "new errors"),
        ("treatment/realized_flip_rate", "flip rate"),
        ("treatment/items_kept", "items"),
        ("treatment/cost", "cost"),
    ]
    columns = [(c, label) for c, label in columns if f"{c}_mean" in table.columns]
    # Items kept is news only where arms differ (rater pools, budgets, cleaning).
    columns = [(c, label) for c, label in columns if c != "treatment/items_kept" or table[f"{c}_mean"].nunique() > 1]
    header = ["arm", "grid", "n", *[label for _, label in columns]]
    has_gate = "gate" in table.columns
    if has_gate:
        header.append("gate")
    rows = []
    for _, row in table.iterrows():
        cells = [str(row["arm"]), str(row["grid"]), str(int(row["seeds"]))]
        for col, _ in columns:
            mean, std = row[f"{col}_mean"], row.get(f"{col}_std")
            if pd.isna(mean):
                cells.append("")
            else:
                sign = "+" if col.startswith("delta/") and mean >= 0 else ""
                precision = 1 if col.startswith("regression/") else 3  # counts of items
                precision = 0 if col in ("treatment/items_kept", "treatment/cost") else precision
                cells.append(f"{sign}{mean:.{precision}f}±{0.0 if pd.isna(std) else std:.{precision}f}")
        if has_gate:
            cells.append("" if pd.isna(row["gate"]) else str(row["gate"]))
        rows.append(cells)
    return header, rows


def render_rich(table: pd.DataFrame, split: str, title: str):  # -> rich.table.Table
    """The summary as a rich Table for the terminal."""
    from rich.table import Table

    header, rows = _display_rows(table, split)
    out = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        out.add_column(name, justify="left" if i < 2 else "right", no_wrap=True)
    for r in rows:
        out.add_row(*r)
    return out
