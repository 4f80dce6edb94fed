"""``smo-impact run --dry-run``: the planned runs, which the store already has, and how long the rest takes.

Nothing is featurized, trained or logged. The data is loaded (a run's resume key includes the data
digest), the store is only read, and the estimate is the median ``time/run_seconds`` of the finished
runs in the store that trained the same model (by name), times the runs to compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from smo_impact.config import ExperimentConfig
from smo_impact.runner.plan import plan_runs


@dataclass
class DryRun:
    """The plan with each run's fate, and the time estimate (NaN without a finished run to go by)."""

    runs: pd.DataFrame  # name, arm, grid, seed, key, action ('reuse' / 'compute')
    seconds_per_run: float
    basis: str  # what the estimate is based on, in words

    @property
    def to_compute(self) -> int:
        return int((self.runs["action"] == "compute").sum())

    @property
    def estimate_seconds(self) -> float:
        return self.seconds_per_run * self.to_compute


def dry_run(config: ExperimentConfig, uri: str, force: bool = False) -> DryRun:
    """Plan ``config``, key each run on the loaded data, and look the keys up in the store at ``uri``."""
    from smo_impact.data.loader import load_data
    from smo_impact.tracking.reader import finished_runs

    specs = plan_runs(config)
    digest = load_data(config.dataset).digest()
    stored = finished_runs(uri, config.experiment_name)
    by_key = {run.tags.get("smo.run_key"): run for run in stored}
    rows = [{
        "name": spec.name, "arm": spec.arm, "grid": spec.grid_label, "seed": spec.seed, "key": key,
        "action": "reuse" if key in by_key and not force else "compute",
    } for spec in specs for key in [spec.key(config, digest)]]
    same_model = [r.metrics["time/run_seconds"] for r in stored
                  if r.params.get("model.name") == config.model.name and "time/run_seconds" in r.metrics]
    if same_model:
        seconds = float(pd.Series(same_model).median())
        basis = f"median of {len(same_model)} finished {config.model.name} run(s) in the store"
    else:
        seconds, basis = float("nan"), f"no finished {config.model.name} run in experiment '{config.experiment_name}' to go by"
    return DryRun(pd.DataFrame(rows), seconds, basis)


__all__ = ["DryRun", "dry_run"]
