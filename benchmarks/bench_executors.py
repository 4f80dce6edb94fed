"""The `local` process pool against sequential, whole process (issue 16, target 5: >= 1.6x).

For each experiment, `smo-impact run <experiment> --executor <name>` as a user runs it: a fresh
SQLite store each time, the feature cache filled by one warm-up run first (the target says
"features cached"), start-up and the parent's summary included. Prints each executor's median
wall time over the rounds (with min and max), the ratio sequential/local, and whether the two
stores hold identical metrics (every metric of every run, bit for bit).

    .venv/bin/python benchmarks/bench_executors.py [--rounds 3] [--workers 2] [--ray]
        [--experiment experiments/quickstart.yaml ...]

`--ray` adds the Ray executor (pip install 'smo-impact[ray]').
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = [ROOT / "experiments" / "quickstart.yaml", ROOT / "experiments" / "embeddings_noise_sweep.yaml"]


def run(experiment: Path, executor: str, workers: int, store: Path) -> float:
    command = [str(Path(sys.executable).parent / "smo-impact"), "run", str(experiment), "--executor", executor,
               "--tracking-uri", f"sqlite:///{store}"]
    if executor != "sequential":
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - started


def metrics(store: Path) -> list[tuple]:
    """Every logged metric of every child run, by run name, key and step (timings left out)."""
    with sqlite3.connect(store) as db:
        return db.execute(
            "SELECT r.name, m.key, m.step, m.value FROM metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
            "WHERE m.key NOT LIKE 'time/%' AND m.key NOT LIKE 'features/%' "
            "AND r.run_uuid IN (SELECT run_uuid FROM tags WHERE key = 'smo.kind' AND value = 'run') "
            "ORDER BY r.name, m.key, m.step"
        ).fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ray", action="store_true")
    parser.add_argument("--experiment", type=Path, action="append")
    args = parser.parse_args()
    executors = ["sequential", "local"] + (["ray"] if args.ray else [])
    for experiment in args.experiment or EXPERIMENTS:
        with tempfile.TemporaryDirectory() as tmp:
            run(experiment, "sequential", args.workers, Path(tmp) / "warm.db")  # fills the feature cache
            seconds: dict[str, list[float]] = {name: [] for name in executors}
            stored: dict[str, list[tuple]] = {}
            for round_ in range(args.rounds):
                for name in executors:  # interleaved: a burst of load hits both alike
                    store = Path(tmp) / f"{name}-{round_}.db"
                    seconds[name].append(run(experiment, name, args.workers, store))
                    stored.setdefault(name, metrics(store))
                    os.remove(store)
        print(f"{experiment.name} ({len({r[0] for r in stored['sequential']})} runs, {args.workers} workers, "
              f"{args.rounds} rounds, whole process):")
        for name in executors:
            values = seconds[name]
            print(f"  {name:10s} median {statistics.median(values):6.1f} s (min {min(values):.1f}, max {max(values):.1f})")
        for name in executors[1:]:
            ratio = statistics.median(seconds["sequential"]) / statistics.median(seconds[name])
            same = stored[name] == stored["sequential"]
            verdict = "met" if ratio >= 1.6 else "MISSED"
            print(f"  sequential/{name} = {ratio:.2f}x (target >= 1.6x: {verdict}); identical metrics: {same}")


if __name__ == "__main__":
    main()
