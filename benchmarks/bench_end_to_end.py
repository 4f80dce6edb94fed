"""Quickstart end to end, whole process: `smo-impact run` vs a plain per-run script.

Each round runs, as separate processes and in alternating order, `smo-impact run
experiments/quickstart.yaml` on a fresh SQLite store with a cold feature cache (all logging and
statistics on; the store is a copy of the per-MLflow-version template, built once before the
rounds as on any machine that has run smo-impact before) and `benchmarks/plain_quickstart.py` (the same 15 fits and two metrics, refitting
TF-IDF in every run, no tracking). Prints both medians, their spread and the ratio.

    python benchmarks/bench_end_to_end.py [--rounds 3] [--seeds 3] [--executor sequential]

`--seeds N` runs both with seeds 0..N-1 (5 runs per seed: the quickstart has 3), to see how the
fixed cost spreads over a larger sweep; `--executor local` runs smo-impact with its process pool.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMO = str(Path(sys.executable).parent / "smo-impact")


def timed(command: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--executor", default="sequential")
    args = parser.parse_args()
    seeds = f"seeds=[{','.join(map(str, range(args.seeds)))}]"
    framework, plain = [], []
    templates = tempfile.TemporaryDirectory()
    subprocess.run([sys.executable, "-c", "import sys; from smo_impact.tracking.mlflow_tracker import MlflowTracker; "
                    "MlflowTracker(f'sqlite:///{sys.argv[1]}/template-warmup.db', 'x')", templates.name],
                   env={**os.environ, "SMO_IMPACT_CACHE_DIR": templates.name}, check=True, capture_output=True)
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(Path(templates.name) / "stores", Path(tmp) / "cache" / "stores")  # features stay cold
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "SMO_IMPACT_CACHE_DIR": f"{tmp}/cache",
                   "PLAIN_SEEDS": str(args.seeds)}
            runs = [
                (framework, [SMO, "run", str(ROOT / "experiments" / "quickstart.yaml"), "--set", seeds, "--yes",
                             "--executor", args.executor]),
                (plain, [sys.executable, str(ROOT / "benchmarks" / "plain_quickstart.py")]),
            ]
            for times, command in runs if i % 2 == 0 else runs[::-1]:
                times.append(timed(command, env, tmp))
        print(f"round {i + 1} ({5 * args.seeds} runs, {args.executor}): smo-impact {framework[-1]:.1f} s, "
              f"plain script {plain[-1]:.1f} s", flush=True)
    f, p = statistics.median(framework), statistics.median(plain)
    print(f"smo-impact run: median {f:.1f} s (min {min(framework):.1f}, max {max(framework):.1f})")
    print(f"plain script:   median {p:.1f} s (min {min(plain):.1f}, max {max(plain):.1f})")
    ratios = [b / a for a, b in zip(framework, plain)]
    print(f"ratio plain / smo-impact: {p / f:.2f}x (per round min {min(ratios):.2f}, max {max(ratios):.2f}; "
          f"target >= 3x: {'met' if p / f >= 3 else 'MISSED'})")
    templates.cleanup()


if __name__ == "__main__":
    main()
