"""Share of a quickstart run's wall time spent logging to the store (issue 16, target 2: <= 10%).

Runs experiments/quickstart.yaml in this process on a fresh SQLite store (features computed once
per round, in memory), timing each run's stages by wrapping the runner's functions:

* compute: treat -> train -> score (``executors.compute`` less the comparison);
* compare: the comparison with the control (``executors.compare_run``, called within compute);
* logging: writing the run, with its comparison, to the store (``_log_run``).

A run's wall time is the sum of the three. On a shared machine a burst of load can double one
run's compute, so each stage is taken as its median per call in the round (a comparison counts
12/15 per run: controls have none), and the share is median logging / median run. Prints the
median share and per-run logging time over the rounds, with their spread.
Start-up (imports, store creation) and the parent's summary are outside the runs (see
bench_startup.py).

    python benchmarks/bench_logging.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "quickstart.yaml"


def timed(seconds: dict[str, list[float]], stage: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[stage].append(time.perf_counter() - start)
    return wrapper


def one_round(config, dataset) -> dict[str, float]:
    from smo_impact.models.features import FeatureCache
    from smo_impact.runner import executors, experiment
    from smo_impact.tracking.mlflow_tracker import MlflowTracker

    seconds: dict[str, list[float]] = defaultdict(list)
    saved_log, compute, compare = experiment._log_run, executors.compute, executors.compare_run
    experiment._log_run = timed(seconds, "log run", saved_log)
    executors.compare_run = timed(seconds, "compare", compare)
    executors.compute = timed(seconds, "compute", compute)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            uri = f"sqlite:///{tmp}/mlflow.db"
            result = experiment.run_experiment(config, lambda: MlflowTracker(uri, "quickstart"),
                                               cache=FeatureCache(disk=False), dataset=dataset)
            assert not result.failures, result.failures
    finally:
        experiment._log_run, executors.compute, executors.compare_run = saved_log, compute, compare
    compared = len(seconds["compare"]) / len(seconds["compute"])  # share of runs with a comparison
    median = {stage: statistics.median(values) for stage, values in seconds.items()}
    return {
        "runs": len(seconds["compute"]),
        "compute": median["compute"] - median["compare"] * compared,
        "compare": median["compare"] * compared,
        "logging": median["log run"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from smo_impact.config import load_config
    from smo_impact.data.loader import load_data

    config = load_config(EXPERIMENT)
    dataset = load_data(config.dataset)
    shares, per_run = [], []
    for i in range(args.rounds):
        s = one_round(config, dataset)
        wall = s["compute"] + s["compare"] + s["logging"]
        shares.append(100 * s["logging"] / wall)
        per_run.append(s["logging"])
        print(f"round {i + 1}: {s['runs']:.0f} runs; per run (medians): compute {s['compute']:.2f} s, compare "
              f"{s['compare']:.2f} s, logging {s['logging']:.2f} s = {shares[-1]:.1f}% of the run's wall time", flush=True)
    print(f"logging per run: median {statistics.median(per_run) * 1000:.0f} ms "
          f"(min {min(per_run) * 1000:.0f}, max {max(per_run) * 1000:.0f})")
    print(f"logging share:   median {statistics.median(shares):.1f}% (min {min(shares):.1f}, max {max(shares):.1f}); "
          f"target <= 10%: {'met' if statistics.median(shares) <= 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
