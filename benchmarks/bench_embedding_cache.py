"""Embedding cache: the second run of experiments/embeddings_noise_sweep.yaml vs the first.

Each run is its own process (as two `smo-impact run` calls would be), sharing one cache directory
that starts empty. Featurization time is the wall time of ``FeatureCache.get``: on the first run
MiniLM encodes every MD-Agreement text (train, dev and test); on the second the checksummed file
is read back. The 15-run sweep (treat -> fit the logistic-regression head -> score; no tracking)
is timed too, and its macro-F1 values must be identical across the two runs.

    python benchmarks/bench_embedding_cache.py            # needs SMO_IMPACT_DATA_DIR (the mirror)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "embeddings_noise_sweep.yaml"


def child(cache_dir: str) -> None:
    """One run of the sweep; prints its timings as JSON."""
    from smo_impact.config import load_config
    from smo_impact.data.catalog import load_dataset
    from smo_impact.models import MODELS
    from smo_impact.models.features import FeatureCache
    from smo_impact.runner.experiment import prepare
    from smo_impact.runner.run import execute_run

    config = load_config(EXPERIMENT)
    dataset = load_dataset(config.dataset.name)
    cache = FeatureCache(directory=Path(cache_dir) / "features")
    model_cls = MODELS.get(config.model.name)
    featurizer = model_cls(model_cls.Params.model_validate(config.model.params)).featurizer()
    start = time.perf_counter()
    cache.get(dataset, featurizer)
    featurize = time.perf_counter() - start
    start = time.perf_counter()
    _, context, specs, cache = prepare(config, cache, dataset=dataset)  # memory hit from here on
    scores = [execute_run(spec, context).metrics["test/macro_f1"] for spec in specs]
    sweep = time.perf_counter() - start
    print(json.dumps({"featurize_s": featurize, "sweep_s": sweep, "runs": len(specs), "macro_f1": scores,
                      **cache.stats.as_metrics()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", metavar="CACHE_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "SMO_IMPACT_CACHE_DIR": cache_dir, "HF_HUB_OFFLINE": "1"}
        runs = []
        for attempt in ("first", "second"):
            out = subprocess.run([sys.executable, __file__, "--child", cache_dir], env=env, check=True,
                                 capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            r = runs[-1]
            print(f"{attempt} run:  featurization {r['featurize_s']:8.2f} s (misses {r['features/misses']:.0f}, "
                  f"disk hits {r['features/disk_hits']:.0f}); sweep of {r['runs']} runs {r['sweep_s']:6.2f} s", flush=True)
    first, second = runs
    share = second["featurize_s"] / first["featurize_s"]
    print(f"second/first featurization time: {share:.2%} (target < 5%: {'met' if share < 0.05 else 'NOT met'})")
    print(f"macro-F1 identical across runs: {first['macro_f1'] == second['macro_f1']}")


if __name__ == "__main__":
    main()
