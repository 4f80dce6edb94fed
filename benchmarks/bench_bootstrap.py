"""Bootstrap intervals: the current ``bootstrap_ci`` vs the implementation it replaced.

1,000 resamples x 3 metrics (macro_f1, roc_auc, recall) of 3,057 items (the size of the
MD-Agreement test split), target < 50 ms per call. The old implementation (per-group sparse
indicator products for the weighted ROC-AUC, its own threshold-metric formulas) is kept here, and
only here, to time it and to check that the intervals did not move: both draw the same resample
matrix from the same seed, so the intervals must agree to rounding (asserted to 1e-9).

Two score sets: continuous scores (almost every score distinct, like a model's probabilities) and
scores rounded to 2 decimals (many ties). Times are medians over --repeat calls, each call timed
alone; the old and new calls alternate so load on a shared machine hits both alike. Wall-clock
and CPU time of the process are both printed: on a busy machine the wall-clock includes time the
process waited for a core, which CPU time leaves out. BLAS runs on one thread (threadpoolctl): the
old code's matrix products otherwise leave BLAS threads spinning into the next call, which on a
two-core machine takes a core from it.

    python benchmarks/bench_bootstrap.py [--repeat 21] [--items 3057] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from smo_impact.evaluation.bootstrap import _COUNTS_CACHE, bootstrap_ci, resample_counts

METRICS = ("macro_f1", "roc_auc", "recall")


# --- the implementation before the rank-based rewrite (smo_impact/evaluation/bootstrap.py) -------
def _old_weighted_metrics(y_true, score, threshold, weights):
    y = np.asarray(y_true).astype(bool)
    score = np.asarray(score, dtype=float)
    pred = score >= threshold
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    cells = np.stack([y & pred, y & ~pred, ~y & pred, ~y & ~pred], axis=1).astype(np.float64)
    tp, fn, fp, tn = (w @ cells).T
    with np.errstate(divide="ignore", invalid="ignore"):
        total = tp + fn + fp + tn
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        f1_neg = np.where(2 * tn + fp + fn > 0, 2 * tn / (2 * tn + fp + fn), 0.0)
        return {
            "accuracy": (tp + tn) / total,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "macro_f1": (f1 + f1_neg) / 2,
            "fpr": np.where(fp + tn > 0, fp / (fp + tn), np.nan),
            "roc_auc": _old_weighted_auc(y, score, w),
        }


def _old_weighted_auc(y, score, w):
    import scipy.sparse as sp

    _, group = np.unique(score, return_inverse=True)
    rows = np.arange(len(score))
    shape = (len(score), int(group.max()) + 1 if len(score) else 0)
    pos = np.asarray((sp.csr_matrix((y.astype(float), (rows, group)), shape=shape).T @ w.T).T)
    neg = np.asarray((sp.csr_matrix(((~y).astype(float), (rows, group)), shape=shape).T @ w.T).T)
    neg_below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        return np.where(pairs > 0, (pos * (neg_below + 0.5 * neg)).sum(axis=1) / pairs, np.nan)


def _old_resample_counts(n_items, n_resamples, rng):
    draws = rng.integers(0, n_items, size=(n_resamples, n_items))
    offsets = (np.arange(n_resamples, dtype=np.int64) * n_items)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items)


def _old_interval(values, confidence):
    alpha = (1 - confidence) / 2
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def old_bootstrap_ci(y_true, score, threshold, rng, n_resamples=1000, confidence=0.95, metrics=METRICS):
    counts = _old_resample_counts(len(y_true), n_resamples, rng)
    values = _old_weighted_metrics(y_true, score, threshold, counts)
    return {m: _old_interval(values[m], confidence) for m in metrics}
# -----------------------------------------------------------------------------------------------


def _timed(call) -> tuple[float, float, object]:
    """Wall-clock and CPU (process) milliseconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--items", type=int, default=3057)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    data = np.random.default_rng(0)
    y = (data.random(args.items) < 0.35).astype(int)
    continuous = np.clip(0.3 * y + 0.7 * data.random(args.items), 0, 1)
    scores = {"continuous": continuous, "rounded to 0.01": np.round(continuous, 2)}

    print(f"bootstrap_ci: {args.items} items, {args.resamples} resamples, metrics {', '.join(METRICS)}; "
          f"median of {args.repeat} calls")
    for label, score in scores.items():
        times: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        worst = 0.0
        for i in range(args.repeat):
            *t_old, old = _timed(lambda: old_bootstrap_ci(y, score, 0.5, np.random.default_rng(i), args.resamples))
            # Each call draws afresh: the per-process cache of drawn resamples (shared by the runs of one
            # seed in a sweep) is emptied first, so the figure is a run's first interval.
            _COUNTS_CACHE.clear()
            *t_new, new = _timed(lambda: bootstrap_ci(y, score, 0.5, np.random.default_rng(i), args.resamples))
            times["old"].append(tuple(t_old))
            times["new"].append(tuple(t_new))
            worst = max(worst, *(abs(a - b) for m in METRICS for a, b in zip(old[m], new[m])))
        assert worst <= 1e-9, f"intervals moved by {worst:.3g}"
        wall = {k: np.median([t[0] for t in v]) for k, v in times.items()}
        cpu = {k: np.median([t[1] for t in v]) for k, v in times.items()}
        print(f"  {label} scores ({len(np.unique(score))} distinct): "
              f"old {wall['old']:.1f} ms wall / {cpu['old']:.1f} ms CPU, "
              f"new {wall['new']:.1f} ms wall / {cpu['new']:.1f} ms CPU; "
              f"max |interval difference| {worst:.1e}")
    counts = [_timed(lambda: resample_counts(args.items, args.resamples, np.random.default_rng(i)))[:2] for i in range(args.repeat)]
    print(f"  of which resample_counts (the draws, the same in both): {np.median([c[0] for c in counts]):.1f} ms wall "
          f"/ {np.median([c[1] for c in counts]):.1f} ms CPU")


if __name__ == "__main__":
    main()
