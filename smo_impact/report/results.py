"""A stored experiment's results without rerunning it: ``smo-impact results`` and ``smo-impact compare``.

Both read what ``smo-impact run`` logged on the parent run (``summary/summary.csv``, the gate
verdicts, the takeaway), so they answer in a second from the store, whatever it took to compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from smo_impact.errors import TrackingError
from smo_impact.tracking.reader import MlflowReader, StoredExperiment

COMPARED = ("macro_f1", "roc_auc", "recall", "recall_at_fpr_0.01")  # headline metrics, in this order


@dataclass
class StoredResults:
    """The summary table of one stored experiment and what is needed to show it."""

    experiment: str
    parent_id: str
    split: str  # the primary benchmark's namespace
    summary: pd.DataFrame  # as the runner summarized it (arm, grid, <metric>_mean/_std, seeds[, gate])
    takeaway: str
    experiment_id: str
    on_split: bool = True  # False: evaluation.split was null and the primary is a benchmark


def load_results(reader: MlflowReader, experiment_or_run_id: str) -> StoredResults:
    """The latest parent run's summary, split, gate verdicts and takeaway.

    Raises:
        TrackingError: no such experiment or run, or its parent run has no summary (no run finished).
    """
    import yaml

    stored: StoredExperiment = reader.load(experiment_or_run_id)
    parent = stored.parent
    summary = reader.load_frame(parent.run_id, "summary/summary.csv")
    if summary is None or summary.empty:
        raise TrackingError(
            f"experiment '{stored.experiment}' (parent run {parent.run_id}) has no stored summary: no run finished; "
            "run it with `smo-impact run CONFIG`"
        )
    gates = reader.load_frame(parent.run_id, "summary/gates.csv")
    if gates is not None and not gates.empty and "gate" not in summary:
        summary = summary.merge(gates[["arm", "grid", "gate"]], on=["arm", "grid"], how="left")
    text = reader.load_text(parent.run_id, "config/resolved.yaml")
    config = (yaml.safe_load(text) if text else None) or {}
    evaluation = config.get("evaluation") or {}
    # The primary benchmark: the split, or without one (evaluation.split: null) the first benchmark.
    split = evaluation.get("split", "test") or next((b.get("name") for b in evaluation.get("benchmarks") or []), "test")
    experiment_id = reader.client.get_run(parent.run_id).info.experiment_id
    return StoredResults(stored.experiment, parent.run_id, split, summary, parent.tags.get("smo.takeaway", ""), experiment_id,
                         on_split=bool(evaluation.get("split", "test")))


def compare_results(a: StoredResults, b: StoredResults) -> tuple[pd.DataFrame, list[str]]:
    """Two experiments' arms side by side on the headline metrics both logged (mean over seeds).

    Arms (grid points) are matched by name; an arm only one experiment has gets an empty side.

    Returns:
        Columns ``arm, grid`` and, per shared metric ``m``, ``m A``, ``m B``, ``m B-A``; and the
        shared metric names (without namespace).
    """
    shared = [m for m in COMPARED if f"{a.split}/{m}_mean" in a.summary and f"{b.split}/{m}_mean" in b.summary]
    if not shared:
        raise TrackingError(f"experiments '{a.experiment}' and '{b.experiment}' share no headline metric "
                            f"({', '.join(COMPARED)})")
    left = a.summary[["arm", "grid", *(f"{a.split}/{m}_mean" for m in shared)]].rename(
        columns={f"{a.split}/{m}_mean": f"{m} A" for m in shared})
    right = b.summary[["arm", "grid", *(f"{b.split}/{m}_mean" for m in shared)]].rename(
        columns={f"{b.split}/{m}_mean": f"{m} B" for m in shared})
    table = left.merge(right, on=["arm", "grid"], how="outer", sort=False)
    for m in shared:
        table[f"{m} B-A"] = table[f"{m} B"] - table[f"{m} A"]
    columns = ["arm", "grid", *(f"{m} {side}" for m in shared for side in ("A", "B", "B-A"))]
    return table[columns], shared


__all__ = ["StoredResults", "compare_results", "load_results"]
