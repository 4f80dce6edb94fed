"""A 16-run quickstart sweep (control + 3 noise rates, 4 seeds) under each executor.

Wall time of `run_experiment` (compute + MLflow logging into a fresh SQLite store), after one
warm-up that fills the feature cache, and the ratio to sequential. Metrics must be identical.

    .venv/bin/python benchmarks/bench_executors.py [--workers 2] [--skip-ray]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from smo_impact.config import load_config
from smo_impact.runner.executors import LocalExecutor, RayExecutor, SequentialExecutor
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "quickstart.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    config = load_config(EXPERIMENT, ["seeds=[0,1,2,3]", "sweep.label_noise={noise.rate: [0.1, 0.2, 0.4]}"])
    executors = {"sequential": SequentialExecutor, "local": lambda: LocalExecutor(args.workers)}
    if not args.skip_ray:
        executors["ray"] = lambda: RayExecutor(workers=args.workers)
    times, metrics = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        run_experiment(config, lambda: MlflowTracker(f"sqlite:///{tmp}/warm.db", "warm"))  # cache + imports
        for name, make in executors.items():
            store = f"sqlite:///{tmp}/{name}.db"
            start = time.perf_counter()
            result = run_experiment(config, lambda: MlflowTracker(store, name), executor=make())
            times[name] = time.perf_counter() - start
            frame = result.runs.set_index("run_name").sort_index()
            metrics[name] = frame[[c for c in frame.columns if c.startswith("test/")]].to_numpy(float)
            print(f"{name:10s} {len(result.runs):3d} runs  {times[name]:7.1f} s", flush=True)
    for name in times:
        same = np.array_equal(metrics[name], metrics["sequential"], equal_nan=True)
        print(f"{name:10s} sequential/{name} = {times['sequential'] / times[name]:.2f}x   identical metrics: {same}")


if __name__ == "__main__":
    main()
