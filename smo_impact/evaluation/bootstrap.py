"""Vectorised bootstrap: confidence intervals of a run's metrics and of paired deltas vs control.

A resample is drawn as a matrix of per-item counts (resamples x items), so every metric of every
resample is a few numpy reductions: 1000 resamples of 3057 items take well under a second.
The paired bootstrap applies the *same* resampled items to the control and the treatment, which is
what makes a delta's interval narrower than the two metrics' intervals.
"""

from __future__ import annotations

import numpy as np

# Metrics the bootstrap can recompute per resample (threshold metrics and ROC-AUC).
BOOTSTRAP_METRICS = ("accuracy", "precision", "recall", "f1", "macro_f1", "fpr", "roc_auc")


def resample_counts(n_items: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each item is drawn in each resample: an int matrix (n_resamples x n_items)."""
    draws = rng.integers(0, n_items, size=(n_resamples, n_items))
    offsets = (np.arange(n_resamples, dtype=np.int64) * n_items)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items)


def weighted_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float, weights: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`BOOTSTRAP_METRICS` for every row of ``weights`` (item counts), as arrays.

    With a row of ones this equals the plain metrics (checked against scikit-learn in the tests).
    Undefined values (e.g. recall without positives) are NaN.
    """
    y = np.asarray(y_true).astype(bool)
    score = np.asarray(score, dtype=float)
    pred = score >= threshold
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    # One matrix product gives the four confusion counts of every resample.
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
            "roc_auc": _weighted_auc(y, score, w),
        }


def _weighted_auc(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC-AUC with item weights: P(score_pos > score_neg) + 0.5 P(tie), per row of ``w``."""
    import scipy.sparse as sp

    # Items with the same score form one group; sparse indicator products sum each resample's
    # positive and negative weight per group (one pass over the weights, no per-resample sort).
    _, group = np.unique(score, return_inverse=True)
    rows = np.arange(len(score))
    shape = (len(score), int(group.max()) + 1 if len(score) else 0)
    pos = np.asarray((sp.csr_matrix((y.astype(float), (rows, group)), shape=shape).T @ w.T).T)
    neg = np.asarray((sp.csr_matrix(((~y).astype(float), (rows, group)), shape=shape).T @ w.T).T)
    neg_below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        return np.where(pairs > 0, (pos * (neg_below + 0.5 * neg)).sum(axis=1) / pairs, np.nan)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_ci(
    y_true: np.ndarray,
    score: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    metrics: tuple[str, ...] = ("macro_f1", "roc_auc", "recall"),
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each metric over resampled items."""
    counts = resample_counts(len(y_true), n_resamples, rng)
    values = weighted_metrics(y_true, score, threshold, counts)
    return {m: _interval(values[m], confidence) for m in metrics}


def paired_bootstrap_ci(
    y_true: np.ndarray,
    control_score: np.ndarray,
    treatment_score: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    metrics: tuple[str, ...] = ("macro_f1", "roc_auc", "recall"),
) -> dict[str, tuple[float, float]]:
    """Percentile interval of ``treatment - control`` per metric, both scored on the same resamples."""
    counts = resample_counts(len(y_true), n_resamples, rng)
    control = weighted_metrics(y_true, control_score, threshold, counts)
    treatment = weighted_metrics(y_true, treatment_score, threshold, counts)
    return {m: _interval(treatment[m] - control[m], confidence) for m in metrics}
