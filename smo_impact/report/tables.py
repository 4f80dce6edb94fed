"""Tables for the tracking UI: per-slice (and per-functionality) figures of every arm side by side.

Each run logs its per-slice figures as scalar metrics (``<ns>/slice/<column>/<value>/<metric>``,
``<suite>/functionality/<f>/accuracy``): deltas, gates, export and MLflow's search read them. A
run page cannot show hundreds of scalars as one readable table, so the parent run also gets them as
one table: a row per arm, grid point, benchmark and slice, a column per metric (mean over seeds).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

# <ns>/slice/<column>/<value>/<metric>, and a functional suite's <ns>/{functionality,target}/<value>/accuracy
_SLICE = re.compile(r"^(?P<ns>[^/]+)/(?:slice/(?P<column>[^/]+)|(?P<kind>functionality|target))/(?P<value>.+)/(?P<metric>[^/]+)$")


def slice_table(runs: pd.DataFrame, namespaces: Sequence[str]) -> pd.DataFrame:
    """Mean over seeds of every per-slice metric, one row per (arm, grid, benchmark, column, slice).

    Args:
        runs: One row per finished run (``arm``, ``grid`` and metric columns), as the runner or
            :meth:`StoredExperiment.runs_frame` builds it.
        namespaces: Benchmark namespaces to read (``evaluation.namespaces``).

    Returns:
        Columns ``arm, grid, benchmark, column, slice`` and one per metric found (``n`` first).
    """
    found = []
    for name in runs.columns:
        match = _SLICE.match(str(name)) if "/" in str(name) else None
        if match and match["ns"] in namespaces:
            found.append((name, match["ns"], match["column"] or match["kind"], match["value"], match["metric"]))
    if runs.empty or not found:
        return pd.DataFrame(columns=["arm", "grid", "benchmark", "column", "slice"])
    means = runs.groupby(["arm", "grid"], sort=False)[[name for name, *_ in found]].mean()
    long = means.reset_index().melt(["arm", "grid"], var_name="name").dropna(subset=["value"])
    keys = pd.DataFrame(found, columns=["name", "benchmark", "column", "slice", "metric"])
    long = long.merge(keys, on="name")
    table = long.pivot_table(index=["arm", "grid", "benchmark", "column", "slice"], columns="metric",
                             values="value", sort=False).reset_index()
    table.columns.name = None
    metrics = [c for c in ("n", "accuracy", "recall", "fpr", "macro_f1") if c in table] + sorted(
        c for c in table.columns if c not in ("arm", "grid", "benchmark", "column", "slice", "n", "accuracy", "recall", "fpr", "macro_f1"))
    return table[["arm", "grid", "benchmark", "column", "slice", *metrics]]


__all__ = ["slice_table"]
