"""Quickstart sweep (15 runs): cached features vs naive per-run featurization, one process.

Both paths train and score the same models on the same labels; only where TF-IDF is computed
differs. Tracking is left out so the ratio measures the pipeline, not the MLflow store.

    make bench          # or: python benchmarks/bench_quickstart_sweep.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from smo_impact.config import load_config
from smo_impact.evaluation.metrics import binary_metrics
from smo_impact.models import MODELS
from smo_impact.models.features import FeatureCache
from smo_impact.runner.experiment import prepare
from smo_impact.runner.run import execute_run
from smo_impact.treatments import TREATMENTS

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "quickstart.yaml"


def cached_sweep(config) -> tuple[float, list[float]]:
    start = time.perf_counter()
    _, context, specs, _ = prepare(config, FeatureCache(disk=False))
    scores = [execute_run(spec, context).metrics["test/macro_f1"] for spec in specs]
    return time.perf_counter() - start, scores


def naive_sweep(config) -> tuple[float, list[float]]:
    """What a plain script does: fit TF-IDF on the run's training texts in every run."""
    start = time.perf_counter()
    _, context, specs, _ = prepare(config, FeatureCache(disk=False))  # same data and labels
    scores = []
    for spec in specs:
        state = context.initial_state
        for step, seq in zip(spec.steps, np.random.SeedSequence(spec.seed).spawn(len(spec.steps))):
            cls = TREATMENTS.get(step.name)
            state = cls(cls.Params.model_validate(step.params)).apply(state, np.random.default_rng(seq))
        model_cls = MODELS.get(spec.model.name)
        model = model_cls(model_cls.Params.model_validate(spec.model.params))
        texts = state.items.set_index("task").loc[state.labels.index, "text"]
        vectorizer = model.featurizer().vectorizer().fit(texts)
        model.fit(vectorizer.transform(texts), (state.labels.to_numpy() == 1).astype(int), seed=spec.seed)
        score = model.predict_proba(vectorizer.transform(context.eval_items["text"]))[:, 1]
        scores.append(binary_metrics((context.reference.to_numpy() == 1).astype(int), score)["macro_f1"])
    return time.perf_counter() - start, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = load_config(EXPERIMENT)
    prepare(config, FeatureCache(disk=False))  # warm imports and the dataset file cache
    cached = [cached_sweep(config) for _ in range(args.repeat)]
    naive = [naive_sweep(config) for _ in range(args.repeat)]
    t_cached = min(t for t, _ in cached)
    t_naive = min(t for t, _ in naive)
    agree = np.abs(np.array(cached[0][1]) - np.array(naive[0][1])).max()
    print(f"runs per sweep:            {len(cached[0][1])}")
    print(f"naive (featurize per run): {t_naive:6.2f} s  (best of {args.repeat})")
    print(f"cached features:           {t_cached:6.2f} s  (best of {args.repeat})")
    print(f"speed-up naive/cached:     {t_naive / t_cached:6.2f}x")
    print(f"max |macro-F1 difference|: {agree:.4f}  (vocabulary fit on all vs kept train texts)")


if __name__ == "__main__":
    main()
