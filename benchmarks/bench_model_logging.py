"""What keeping each run's model costs (issue 19.4): MLflow-model logging time vs the run's compute.

Runs the quickstart sweep (MD-Agreement, TF-IDF + logistic regression) with ``tracking.log_models``
set to ``all`` and reads back, per run, ``time/log_model_seconds`` (building the servable pipeline
and ``mlflow.sklearn.log_model``) and ``time/run_seconds`` (treat, train, score). The first model
of a sweep also fits the TF-IDF vectorizer of the pipeline once (~1 s).

    python benchmarks/bench_model_logging.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from mlflow import MlflowClient

from smo_impact.config import load_config
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        walls = {}
        for mode in ("none", "all"):
            store = f"sqlite:///{tmp}/{mode}.db"
            config = load_config(REPO / "experiments" / "quickstart.yaml", [f"seeds={args.seeds}", f"tracking.log_models={mode}"])
            start = time.perf_counter()
            result = run_experiment(config, lambda: MlflowTracker(store, "bench"))
            walls[mode] = time.perf_counter() - start
        client = MlflowClient(store)
        runs = [client.get_run(r) for r in result.runs["run_id"]]
        logging = np.array([r.data.metrics["time/log_model_seconds"] for r in runs])
        compute = np.array([r.data.metrics["time/run_seconds"] for r in runs])
    print(f"{len(runs)} runs; model logging per run: median {np.median(logging):.3f} s (first {logging[0]:.2f} s, "
          f"max {logging.max():.2f} s); run compute per run: median {np.median(compute):.3f} s; "
          f"ratio of medians {np.median(logging) / np.median(compute):.2f}")
    print(f"sweep wall: log_models=none {walls['none']:.1f} s, log_models=all {walls['all']:.1f} s "
          f"(+{walls['all'] - walls['none']:.1f} s; noisy on a shared machine)")


if __name__ == "__main__":
    main()
