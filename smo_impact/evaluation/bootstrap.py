"""Vectorised bootstrap: confidence intervals of a run's metrics and of paired deltas vs control.

A resample is drawn as a matrix of per-item counts (resamples x items), and the metrics of
:mod:`smo_impact.evaluation.metrics` take such a matrix as item weights, so every metric of every
resample is a few numpy reductions (1000 resamples of 3057 items: tens of milliseconds).
The paired bootstrap applies the *same* resampled items to the control and the treatment, which is
what makes a delta's interval narrower than the two metrics' intervals.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from smo_impact.evaluation.metrics import (
    MULTICLASS_THRESHOLD_METRICS,
    ORDINAL_METRICS,
    THRESHOLD_METRICS,
    brier_score,
    expected_calibration_error,
    multiclass_brier,
    multiclass_confusion,
    multiclass_confusion_metrics,
    multiclass_roc_auc,
    predicted_classes,
    roc_auc,
    threshold_metrics,
    top_label_ece,
)

# Metrics the bootstrap can recompute per resample.
BOOTSTRAP_METRICS = (*THRESHOLD_METRICS, "roc_auc", "brier", "ece")
DEFAULT_CI_METRICS = ("macro_f1", "roc_auc", "recall")
# ... of a K-class benchmark (K-class definitions of the same names; mae and qwk for ordinal scales).
MULTICLASS_BOOTSTRAP_METRICS = (*MULTICLASS_THRESHOLD_METRICS, *ORDINAL_METRICS, "roc_auc", "brier", "ece")


@dataclass(frozen=True)
class PairedDelta:
    """Paired-bootstrap result for one metric's ``treatment - control``.

    Attributes:
        low: Lower end of the percentile interval of the delta.
        high: Upper end.
        p_value: Two-sided percentile-bootstrap p-value of H0 "delta = 0":
            ``min(1, 2 * min(share of deltas <= 0, share of deltas >= 0))`` over the resamples where
            the delta is defined; NaN when it is defined in none.
    """

    low: float
    high: float
    p_value: float


def resample_counts(n_items: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each item is drawn in each resample: an int matrix (n_resamples x n_items).

    One ``rng.integers`` call draws every resample, so a seed fixes the matrix (and the intervals).
    """
    draws = rng.integers(0, n_items, size=(n_resamples, n_items))
    # Resample b's draws become bins b*n .. b*n + n - 1, so one bincount counts every resample.
    draws += (np.arange(n_resamples, dtype=np.int64) * n_items)[:, None]
    return np.bincount(draws.ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items)


# Drawn resamples by (items, resamples, generator state before the draw): the runs of one seed
# draw from the same stream, so a sweep's arms (and their comparisons) share each seed's matrix;
# drawing it took ~30 ms of a ~0.3 s quickstart run. Bounded in bytes, least recently used first out.
_COUNTS_CACHE: OrderedDict[tuple[int, int, str], tuple[np.ndarray, dict]] = OrderedDict()
COUNTS_CACHE_BYTES = 256 * 2**20


def _compact_counts(n_items: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`resample_counts` as int32 (a count is at most ``n_items``, so it fits): the metrics
    then move half the bytes, and moving the counts matrix is the bulk of their work.

    The same as drawing afresh, to the bit: a generator in a state seen before gets the matrix
    drawn then (read-only) and is left in the state that draw left it in.
    """
    key = (n_items, n_resamples, repr(rng.bit_generator.state))
    if (hit := _COUNTS_CACHE.get(key)) is not None:
        _COUNTS_CACHE.move_to_end(key)
        counts, after = hit
        rng.bit_generator.state = after
        return counts
    counts = resample_counts(n_items, n_resamples, rng)
    counts = counts.astype(np.int32) if n_items < 2**31 else counts
    counts.flags.writeable = False  # shared between callers: nobody may change it
    if counts.nbytes <= COUNTS_CACHE_BYTES // 4:
        _COUNTS_CACHE[key] = (counts, rng.bit_generator.state)
        while sum(c.nbytes for c, _ in _COUNTS_CACHE.values()) > COUNTS_CACHE_BYTES:
            _COUNTS_CACHE.popitem(last=False)
    return counts


def _check_metrics(metrics: tuple[str, ...] | list[str], available: tuple[str, ...] = BOOTSTRAP_METRICS) -> None:
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise ValueError(
            f"Cannot bootstrap metric(s) {', '.join(map(repr, unknown))}; "
            f"available: {', '.join(sorted(available))}."
        )


def weighted_metrics(
    y_true: np.ndarray,
    score: np.ndarray,
    threshold: float,
    weights: np.ndarray,
    metrics: tuple[str, ...] | list[str] = BOOTSTRAP_METRICS,
) -> dict[str, np.ndarray]:
    """``metrics`` (default: all of :data:`BOOTSTRAP_METRICS`) for every row of ``weights``.

    A thin dispatcher to the definitions in :mod:`smo_impact.evaluation.metrics`, computing only
    what is asked for. With a row of ones this equals the plain metrics; undefined values (e.g.
    recall without positives) are NaN.

    Args:
        y_true: Reference labels, 1 = positive.
        score: Predicted probability of the positive class.
        threshold: Predict positive when ``score >= threshold``.
        weights: Item counts (or weights), one row per resample; a 1-D array is one row.
        metrics: Names from :data:`BOOTSTRAP_METRICS`.
    """
    _check_metrics(metrics)
    y = np.asarray(y_true).astype(int)
    score = np.asarray(score, dtype=float)
    w = np.atleast_2d(np.asarray(weights))
    # Lay the items out as negatives then positives, each by ascending score: every confusion cell
    # and each class's score order is then a run of consecutive columns, which the metrics read as
    # views of this one copy of the weights instead of gathering columns metric by metric.
    order = np.lexsort((score, y))
    y, score, w = y[order], score[order], np.take(w, order, axis=1)
    out: dict[str, np.ndarray] = {}
    if any(m in THRESHOLD_METRICS for m in metrics):
        out.update(threshold_metrics(y, score >= threshold, w))
    if "roc_auc" in metrics:
        out["roc_auc"] = roc_auc(y, score, w)
    if "brier" in metrics:
        out["brier"] = brier_score(y, score, w)
    if "ece" in metrics:
        out["ece"] = expected_calibration_error(y, score, weights=w)
    return {m: out[m] for m in metrics}


def multiclass_weighted_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    weights: np.ndarray,
    metrics: tuple[str, ...] | list[str] = MULTICLASS_BOOTSTRAP_METRICS,
) -> dict[str, np.ndarray]:
    """K-class ``metrics`` (names from :data:`MULTICLASS_BOOTSTRAP_METRICS`) for every row of
    ``weights``: a dispatcher to :mod:`smo_impact.evaluation.metrics`, as :func:`weighted_metrics`.

    Args:
        y_true: Reference class codes ``0 .. K-1``.
        proba: Predicted class probabilities (items x K); the prediction is the most probable class.
        weights: Item counts (or weights), one row per resample; a 1-D array is one row.
        metrics: Names from :data:`MULTICLASS_BOOTSTRAP_METRICS` (``mae``/``qwk`` treat the class
            codes as ranks: ask for them on ordinal scales only).
    """
    _check_metrics(metrics, MULTICLASS_BOOTSTRAP_METRICS)
    y = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=float)
    w = np.atleast_2d(np.asarray(weights))
    out: dict[str, np.ndarray] = {}
    counted = (*MULTICLASS_THRESHOLD_METRICS, *ORDINAL_METRICS)
    if any(m in counted for m in metrics):
        confusion = multiclass_confusion(y, predicted_classes(proba), proba.shape[1], w)
        out.update(multiclass_confusion_metrics(confusion, ordinal=any(m in ORDINAL_METRICS for m in metrics)))
    if "roc_auc" in metrics:
        out["roc_auc"] = multiclass_roc_auc(y, proba, w)
    if "brier" in metrics:
        out["brier"] = multiclass_brier(y, proba, w)
    if "ece" in metrics:
        out["ece"] = top_label_ece(y, proba, weights=w)
    return {m: out[m] for m in metrics}


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def _p_value(deltas: np.ndarray) -> float:
    """Two-sided percentile-bootstrap p-value of H0 "delta = 0" (see :class:`PairedDelta`)."""
    finite = deltas[np.isfinite(deltas)]
    if len(finite) == 0:
        return float("nan")
    return float(min(1.0, 2 * min(np.mean(finite <= 0), np.mean(finite >= 0))))


def bootstrap_ci(
    y_true: np.ndarray,
    score: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    metrics: tuple[str, ...] = DEFAULT_CI_METRICS,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each metric over resampled items."""
    _check_metrics(metrics)
    counts = _compact_counts(len(y_true), n_resamples, rng)
    values = weighted_metrics(y_true, score, threshold, counts, metrics)
    return {m: _interval(values[m], confidence) for m in metrics}


def paired_bootstrap(
    y_true: np.ndarray,
    control_score: np.ndarray,
    treatment_score: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    metrics: tuple[str, ...] = DEFAULT_CI_METRICS,
) -> dict[str, PairedDelta]:
    """Percentile interval and p-value of ``treatment - control`` per metric, both scored on the
    same resampled items.

    Args:
        y_true: Reference labels of the items both runs scored.
        control_score: The control run's P(positive) per item.
        treatment_score: The treatment run's, in the same item order.
        threshold: Decision threshold used for both.
        rng: Generator of the resamples.
        n_resamples: Bootstrap resamples.
        confidence: Interval coverage.
        metrics: Names from :data:`BOOTSTRAP_METRICS`.
    """
    _check_metrics(metrics)
    counts = _compact_counts(len(y_true), n_resamples, rng)
    control = weighted_metrics(y_true, control_score, threshold, counts, metrics)
    treatment = weighted_metrics(y_true, treatment_score, threshold, counts, metrics)
    out = {}
    for m in metrics:
        delta = treatment[m] - control[m]
        out[m] = PairedDelta(*_interval(delta, confidence), p_value=_p_value(delta))
    return out


def multiclass_bootstrap_ci(
    y_true: np.ndarray,
    proba: np.ndarray,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    metrics: tuple[str, ...] = ("macro_f1",),
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each K-class metric over resampled items."""
    _check_metrics(metrics, MULTICLASS_BOOTSTRAP_METRICS)
    counts = _compact_counts(len(y_true), n_resamples, rng)
    values = multiclass_weighted_metrics(y_true, proba, counts, metrics)
    return {m: _interval(values[m], confidence) for m in metrics}


def multiclass_paired_bootstrap(
    y_true: np.ndarray,
    control_proba: np.ndarray,
    treatment_proba: np.ndarray,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    metrics: tuple[str, ...] = ("macro_f1",),
    binary: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None,
    binary_metrics: tuple[str, ...] = (),
) -> dict[str, PairedDelta]:
    """:func:`paired_bootstrap` for a K-class benchmark: interval and p-value of ``treatment -
    control`` of each K-class metric, both runs scored on the same resampled items.

    ``binary`` = (harmful reference, control P(harmful), treatment P(harmful), threshold) adds the
    binary view's ``binary_metrics`` (names from :data:`BOOTSTRAP_METRICS`) on the same resamples,
    returned as ``binary/<metric>``.
    """
    _check_metrics(metrics, MULTICLASS_BOOTSTRAP_METRICS)
    _check_metrics(binary_metrics)
    counts = _compact_counts(len(y_true), n_resamples, rng)
    control = multiclass_weighted_metrics(y_true, control_proba, counts, metrics)
    treatment = multiclass_weighted_metrics(y_true, treatment_proba, counts, metrics)
    if binary is not None and binary_metrics:
        reference, control_score, treatment_score, threshold = binary
        for name, value in weighted_metrics(reference, control_score, threshold, counts, binary_metrics).items():
            control[f"binary/{name}"] = value
        for name, value in weighted_metrics(reference, treatment_score, threshold, counts, binary_metrics).items():
            treatment[f"binary/{name}"] = value
    out = {}
    for m in control:
        delta = treatment[m] - control[m]
        out[m] = PairedDelta(*_interval(delta, confidence), p_value=_p_value(delta))
    return out
