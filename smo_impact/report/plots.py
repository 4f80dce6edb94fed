"""Plots a person would rather look at than read."""

from __future__ import annotations

from typing import Any

import pandas as pd


def dose_response_figure(runs: pd.DataFrame, metric: str, control: str) -> Any | None:
    """Metric vs each swept parameter (mean ± std over seeds), control as a band.

    Returns a matplotlib Figure, or None when no arm sweeps a single numeric parameter.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    swept = runs[(runs["arm"] != control) & runs["grid"].ne("-")]
    if swept.empty or metric not in runs.columns:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    plotted, swept_params, seeds = False, [], set()
    for arm, group in swept.groupby("arm", sort=False):
        params = group["grid_params"].iloc[0]
        if len(params) != 1:
            continue
        (param,) = params
        x = pd.to_numeric(group["grid_params"].map(lambda p: p[param]), errors="coerce")
        if x.isna().any():
            continue
        stats = group.assign(x=x).groupby("x")[metric].agg(["mean", "std", "count"]).fillna(0.0)
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=f"{arm} ({param})")
        plotted = True
        swept_params.append(param)
        seeds.update(stats["count"].astype(int))
    if not plotted:
        plt.close(fig)
        return None
    base = runs.loc[runs["arm"] == control, metric]
    if not base.empty:
        ax.axhline(base.mean(), color="grey", linestyle="--", label=f"{control} (mean)")
        ax.axhspan(base.mean() - base.std(ddof=1 if len(base) > 1 else 0),
                   base.mean() + base.std(ddof=1 if len(base) > 1 else 0), color="grey", alpha=0.15)
    ax.set_xlabel(" / ".join(dict.fromkeys(swept_params)))
    ax.set_ylabel(metric)
    # Say what a point is: one run, or a mean over seeds with its spread.
    per_point = "one run per point (1 seed)" if seeds == {1} else \
        f"mean ± std over {'/'.join(map(str, sorted(seeds)))} seeds per point"
    ax.set_title(f"{metric} by {' / '.join(dict.fromkeys(swept_params))}: {per_point}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
