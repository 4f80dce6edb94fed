"""Start-up, whole process (issue 16, target 3): `smo-impact --help` and `smo-impact validate
experiments/quickstart.yaml` < 1.5 s each; a fresh SQLite store without MLflow's migrations on the
critical path; an existing store < 0.5 s to open.

Each command runs as its own process, --repeat times, the commands interleaved so that load on a
shared machine hits all alike; prints the median wall time and the spread (min-max). The store
timings are in-process, after `import mlflow` (timed alone, once per process):

* ``fresh store (migrations)``: MLflow creating a store, as every new store did before;
* ``fresh store (template)``: a copy of the per-MLflow-version template (built once per machine);
* ``existing store``: opening a store that has the experiment.

    python benchmarks/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "import sys; from smo_impact.cli import main; sys.argv[0] = 'smo-impact'; main()"]

STORE = r"""
import json, os, sys, tempfile, time
t0 = time.perf_counter()
import mlflow
t1 = time.perf_counter()
import smo_impact.tracking.mlflow_tracker as m
out = {"import mlflow": t1 - t0}
with tempfile.TemporaryDirectory() as tmp:
    copy = m._copy_template_store
    m._copy_template_store = lambda uri: None
    t = time.perf_counter(); m.MlflowTracker(f"sqlite:///{tmp}/a.db", "x"); out["fresh store (migrations)"] = time.perf_counter() - t
    m._copy_template_store = copy
    m.MlflowTracker(f"sqlite:///{tmp}/warm.db", "x")  # builds the template when this machine has none
    t = time.perf_counter(); m.MlflowTracker(f"sqlite:///{tmp}/b.db", "x"); out["fresh store (template)"] = time.perf_counter() - t
    t = time.perf_counter(); m.MlflowTracker(f"sqlite:///{tmp}/a.db", "x"); out["existing store"] = time.perf_counter() - t
print(json.dumps(out))
"""


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def line(name: str, values: list[float], target: float | None = None) -> str:
    median = statistics.median(values)
    verdict = "" if target is None else f"  target < {target:g} s: {'met' if median < target else 'MISSED'}"
    return f"{name:28s} median {median:5.2f} s (min {min(values):.2f}, max {max(values):.2f}){verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    commands = {
        "smo-impact --help": [*CLI, "--help"],
        "smo-impact validate": [*CLI, "validate", "experiments/quickstart.yaml"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    store: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as cache:
        store_env = {**env, "SMO_IMPACT_CACHE_DIR": cache}
        for _ in range(args.repeat):
            for name, command in commands.items():
                times[name].append(wall(command, env))
            done = subprocess.run([sys.executable, "-c", STORE], cwd=ROOT, env=store_env, check=True,
                                  capture_output=True, text=True)
            for key, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
                store.setdefault(key, []).append(value)
    for name, values in times.items():
        print(line(name, values, 1.5))
    for name, values in store.items():
        print(line(name, values, 0.5 if name == "existing store" else None))


if __name__ == "__main__":
    main()
