"""A small experiment written to a real SQLite MLflow store through the Tracker, as the runner logs it.

Hand-set metrics (no model training) keep it fast and make every exported figure hand-checkable:
control macro-F1 0.80; noise arm macro-F1 = 0.8 - 0.5 * rate -/+ 0.01 for seeds 0/1.
"""

from __future__ import annotations

import pandas as pd
import pytest

from smo_impact.analysis.impact import log_impact
from smo_impact.tracking.mlflow_tracker import MlflowTracker

RATES = (0.1, 0.2, 0.4)


@pytest.fixture(scope="session")
def stored(tmp_path_factory):
    """(tracking uri, parent run id, {run name: run id}) of the logged experiment."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "toy-report")
    parent = tracker.start_run("toy-report", {
        "smo.kind": "experiment", "smo.config_hash": "abc123", "smo.code_version": "deadbeef",
        "smo.data_digest": "d1g3st", "smo.dataset": "toy", "mlflow.note.content": "Does label noise hurt recall?",
    })
    tracker.log_text(parent, "name: toy-report\ndescription: Does label noise hurt recall? Three rates, two seeds.\n"
                             "control: control\nevaluation: {split: test}\n", "config/resolved.yaml")
    ids, rows = {}, []
    for arm, rate in [("control", None), *[("noise", r) for r in RATES]]:
        for seed, wiggle in ((0, 0.01), (1, -0.01)):
            grid = "-" if rate is None else f"noise.rate={rate}"
            name = f"{arm} s{seed}" if rate is None else f"{arm} rate={rate} s{seed}"  # as RunSpec.name
            run = tracker.start_run(name, {
                "smo.kind": "run", "smo.arm": arm, "smo.seed": str(seed), "smo.grid": grid,
                "smo.is_control": str(rate is None).lower(), "smo.config_hash": "abc123",
                "smo.run_key": f"key-{arm}-{rate}-{seed}", "smo.code_version": "deadbeef",
            }, parent_id=parent)
            params = {"arm": arm, "seed": seed, **({} if rate is None else {"grid.noise.rate": rate})}
            tracker.log_params(run, params)
            f1 = 0.80 if rate is None else 0.8 - 0.5 * rate + wiggle
            metrics = {"test/macro_f1": f1, "quality/label_noise": rate or 0.0}
            if rate is not None:
                metrics["treatment/realized_flip_rate"] = rate
                tracker.log_frame(run, pd.DataFrame({
                    "benchmark": "test", "task": [f"t{i}" for i in range(int(rate * 10))],
                    "text": [f"regressed item {i}" for i in range(int(rate * 10))], "kind": "new_false_negative",
                }), "regression/regressed_items.parquet")
            tracker.log_metrics(run, metrics)
            tracker.log_metrics(run, {"train/loss": 0.5}, step=3)
            if arm == "control":
                quality = pd.DataFrame({"agreement": [0.9, 0.6], "judgements": [10, 4]}, index=["w1", "w2"])
                tracker.log_text(run, quality.to_csv(), "treatment/rater_quality.csv")
            if rate == 0.4 and seed == 0:  # as `smo-impact rca` logs it
                tracker.log_frame(run, pd.DataFrame({
                    "dimension": ["domain", "domain"], "group": ["covid", "brexit"], "changes": [30, 10],
                    "recovered": [0.15, 0.05], "fraction": [0.75, 0.25], "model": "tfidf_logreg",
                }), "rca/ranking.csv")
                tracker.log_metrics(run, {"rca/explained": 1.0})
            tracker.end_run(run)
            ids[name] = run
            rows.append({"arm": arm, "grid": grid, "grid_params": {} if rate is None else {"noise.rate": rate},
                         "seed": seed, **metrics})
    log_impact(tracker, parent, pd.DataFrame(rows), "control", "test")
    tracker.end_run(parent)
    return uri, parent, ids
