"""Evaluation plots for the parent run: regressions per arm, functional-suite accuracy per arm."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd


def _group_label(arm: str, grid: str) -> str:
    return arm if grid == "-" else f"{arm}\n{grid}"


def regressions_figure(runs: pd.DataFrame, namespace: str, control: str) -> Any | None:
    """New false negatives and new false positives vs control per arm/grid (mean ± std over seeds).

    Returns a matplotlib Figure, or None when no run has paired regressions on ``namespace``.
    """
    fn, fp = f"regression/{namespace}/new_false_negatives", f"regression/{namespace}/new_false_positives"
    if fn not in runs.columns or fp not in runs.columns:
        return None
    treated = runs[(runs["arm"] != control) & runs[fn].notna()]
    if treated.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    stats = treated.groupby(["arm", "grid"], sort=False)[[fn, fp]].agg(["mean", "std"]).fillna(0.0)
    labels = [_group_label(a, g) for a, g in stats.index]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(labels) + 2), 4))
    ax.bar(x - 0.2, stats[(fn, "mean")], 0.4, yerr=stats[(fn, "std")], capsize=3, color="#c0392b",
           label="new false negatives (harm missed)")
    ax.bar(x + 0.2, stats[(fp, "mean")], 0.4, yerr=stats[(fp, "std")], capsize=3, color="#2980b9",
           label="new false positives (over-blocking)")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("items vs control (same seed)")
    ax.set_title(f"{namespace}: regressions vs {control} (mean ± std over seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def functional_figure(runs: pd.DataFrame, namespace: str) -> Any | None:
    """Heatmap of a functional suite's accuracy per functionality (rows) and arm/grid (columns)."""
    pattern = re.compile(rf"^{re.escape(namespace)}/functionality/(.+)/accuracy$")
    columns = {c: m.group(1) for c in runs.columns if (m := pattern.match(c))}
    if not columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = runs.groupby(["arm", "grid"], sort=False)[list(columns)].mean().T
    table.index = [columns[c] for c in table.index]
    table.columns = [_group_label(a, g) for a, g in table.columns]
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * table.shape[1] + 3), 0.28 * len(table) + 1.5))
    image = ax.imshow(table.to_numpy(float), aspect="auto", cmap="RdYlGn", vmin=0, vmax=1)
    ax.set_yticks(range(len(table)), table.index, fontsize=7)
    ax.set_xticks(range(table.shape[1]), table.columns, fontsize=8)
    for (i, j), value in pd.DataFrame(table.to_numpy(float)).stack().items():
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="accuracy (mean over seeds)")
    ax.set_title(f"{namespace}: accuracy per functionality")
    fig.tight_layout()
    return fig
