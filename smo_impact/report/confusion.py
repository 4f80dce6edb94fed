"""The confusion matrix of a K-class run as a picture (``confusion/<ns>.png``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def confusion_figure(table: pd.DataFrame, title: str = "") -> Any:
    """A heatmap of a confusion table (column ``reference``, then one count column per predicted
    label, as :func:`smo_impact.evaluation.benchmarks.confusion_table` writes it): each cell shows
    its count and its share of the reference row, so a rare class's misses are as visible as a
    common one's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [str(c) for c in table.columns if c != "reference"]
    counts = table[labels].to_numpy(dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = 1.2 + 0.9 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), [str(r) for r in table["reference"]])
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{int(counts[i, j])}\n{shares[i, j]:.0%}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.6 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, label="share of the reference row")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
