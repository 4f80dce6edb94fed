"""Classification metrics for a binary safety classifier.

Each metric is defined once here and called by the run's metrics, the slices, the bootstrap and the
analysis alike. Threshold metrics are computed from the four confusion counts
(:func:`confusion_metrics`), ranking and calibration metrics from item weights, so that one call
scores a plain set of items (every weight 1) or every bootstrap resample at once (one row of item
counts per resample).

Names are stable because they become MLflow metric names under a benchmark namespace
(``test/macro_f1``, ``test/recall_at_fpr_0.01``). MLflow names allow letters, digits and
``_ - . / space`` only, so "recall at FPR 1%" is spelled ``recall_at_fpr_0.01``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

HEADLINE_METRICS = ("macro_f1", "roc_auc", "recall")
# Metrics of the predicted labels, all computed from the confusion counts by confusion_metrics.
THRESHOLD_METRICS = ("accuracy", "precision", "recall", "f1", "macro_f1", "fpr", "fnr", "positive_rate")
# Over-blocking levels a safety team can tolerate, and recall levels it must reach.
FPR_LEVELS = (0.01, 0.05)
RECALL_LEVELS = (0.8, 0.9)
ECE_BINS = 10
# For these a larger value is worse; gates read a "drop" in them as an increase.
LOWER_IS_BETTER = frozenset(
    {"fpr", "fnr", "ece", "brier", "soft_cross_entropy"} | {f"fpr_at_recall_{r}" for r in RECALL_LEVELS}
)
_EPS = 1e-12


def _weight_rows(weights: np.ndarray | None, n_items: int) -> tuple[np.ndarray, bool]:
    """Item weights as a (rows x items) matrix, and whether one set of items was asked for.

    ``None`` counts every item once; a 1-D array weighs each item; a 2-D array holds one row of item
    weights per resample (the bootstrap's item counts).
    """
    if weights is None:
        return np.ones((1, n_items), dtype=np.int64), True
    w = np.asarray(weights)
    if w.ndim not in (1, 2) or w.shape[-1] != n_items:
        raise ValueError(
            f"weights must have shape ({n_items},) or (resamples, {n_items}), one weight per item; "
            f"got shape {w.shape}"
        )
    return (w[None, :], True) if w.ndim == 1 else (w, False)


def _per_row(values: np.ndarray, single: bool) -> Any:
    """A float for one set of items, else the array of one value per weight row."""
    return float(values[0]) if single else values


def _columns(w: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``w[:, index]``: a view when ``index`` is a run of consecutive columns (free), else a
    row-major copy (``np.take``; ``w[:, index]`` returns a column-major one, on which per-row sums
    and cumsums run several times slower)."""
    if len(index) and np.all(np.diff(index) == 1):
        return w[:, index[0] : index[0] + len(index)]
    return np.take(w, index, axis=1)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray | None = None) -> tuple[Any, Any, Any, Any]:
    """``tp, fn, fp, tn``: the weight of the items in each cell of the confusion matrix.

    Args:
        y_true: Reference labels, 1 = positive.
        y_pred: Predicted labels, 1 = positive.
        weights: None (each item counts once), one weight per item, or a (resamples x items)
            matrix of item counts.

    Returns:
        Four floats, or four arrays with one value per row of a 2-D ``weights``.
    """
    y = np.asarray(y_true).astype(bool)
    pred = np.asarray(y_pred).astype(bool)
    w, single = _weight_rows(weights, len(y))
    cells = (y & pred, y & ~pred, ~y & pred, ~y & ~pred)
    return tuple(_per_row(_columns(w, np.flatnonzero(cell)).sum(axis=1), single) for cell in cells)  # type: ignore[return-value]


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """One class's F1, ``2tp / (2tp + fp + fn)``; 0 when the class is neither present nor predicted."""
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 0.0)


def confusion_metrics(tp: Any, fn: Any, fp: Any, tn: Any) -> dict[str, np.ndarray]:
    """Every metric of :data:`THRESHOLD_METRICS` from (possibly weighted) confusion counts.

    Vectorised: the counts may be scalars or arrays of one value per resample (they broadcast).

    Definitions (positive class = 1):
        - ``accuracy`` = (tp + tn) / n; ``positive_rate`` = (tp + fp) / n; NaN when n = 0.
        - ``precision`` = tp / (tp + fp), 0 without predicted positives (sklearn's zero_division=0).
        - ``recall`` = tp / (tp + fn) and ``fnr`` = fn / (tp + fn), NaN without positives.
        - ``fpr`` = fp / (fp + tn), NaN without negatives.
        - ``f1`` = 2tp / (2tp + fp + fn), 0 when that denominator is 0.
        - ``macro_f1``: the mean of the two classes' F1 (each as ``f1``), NaN unless the reference
          holds both classes: where a class is absent its F1 is undefined, and sklearn's average
          would count a meaningless 0 or 1 for it.

    Returns:
        Arrays shaped like the broadcast counts (0-d for scalars).
    """
    tp, fn, fp, tn = (np.asarray(x, dtype=np.float64) for x in (tp, fn, fp, tn))
    positives, negatives, flagged = tp + fn, fp + tn, tp + fp
    n = positives + negatives
    f1_positive, f1_negative = _f1(tp, fp, fn), _f1(tn, fn, fp)
    nan = np.float64("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "accuracy": np.where(n > 0, (tp + tn) / n, nan),
            "precision": np.where(flagged > 0, tp / flagged, 0.0),
            "recall": np.where(positives > 0, tp / positives, nan),
            "f1": f1_positive,
            "macro_f1": np.where((positives > 0) & (negatives > 0), (f1_positive + f1_negative) / 2, nan),
            "fpr": np.where(negatives > 0, fp / negatives, nan),
            "fnr": np.where(positives > 0, fn / positives, nan),
            "positive_rate": np.where(n > 0, flagged / n, nan),
        }


def threshold_metrics(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray | None = None) -> dict[str, Any]:
    """:data:`THRESHOLD_METRICS` of predicted labels: counts the confusion matrix, then
    :func:`confusion_metrics`.

    Args:
        y_true: Reference labels, 1 = positive.
        y_pred: Predicted labels, 1 = positive.
        weights: None (each item once), one weight per item, or (resamples x items) item counts.

    Returns:
        ``{metric: float}``, or ``{metric: array}`` with one value per row of a 2-D ``weights``.
    """
    counts = confusion_counts(y_true, y_pred, weights)
    values = confusion_metrics(*counts)
    if np.ndim(counts[0]) == 0:
        return {name: float(v) for name, v in values.items()}
    return values


def _weight_times_below(pos_weight: np.ndarray, below: np.ndarray, k: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Per row, the sum over positive scores ``j`` in ``which`` of ``pos_weight[:, j]`` times the
    weight of the ``k[j]`` lowest-scored negatives (``below[:, k - 1]``; 0 for k = 0)."""
    exact = np.int64 if np.issubdtype(below.dtype, np.integer) else np.float64
    which = which[k[which] > 0]
    if not len(which):
        return np.zeros(pos_weight.shape[0], dtype=exact)
    return np.einsum("ij,ij->i", _columns(pos_weight, which), np.take(below, k[which] - 1, axis=1), dtype=exact)


def roc_auc(y_true: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None) -> Any:
    """ROC-AUC: P(score of a positive > score of a negative) + 1/2 P(tie), pairs weighted by the
    product of their items' weights; NaN without both classes.

    Rank-based and vectorised over weight rows: the negatives are sorted by score once, and per row
    a cumulative sum gives the negative weight below and tied with each positive's score. (Fastest
    when the items come as negatives then positives, each by ascending score, as the bootstrap lays
    them out: then no columns are gathered.)

    Args:
        y_true: Reference labels, 1 = positive.
        score: Predicted probability of the positive class.
        weights: None, one weight per item, or (resamples x items) item counts.

    Returns:
        A float, or an array with one value per row of a 2-D ``weights``.
    """
    y = np.asarray(y_true).astype(bool)
    score = np.asarray(score, dtype=float)
    w, single = _weight_rows(weights, len(y))
    negatives = np.flatnonzero(~y)
    negatives = negatives[np.argsort(score[negatives], kind="stable")]
    positives = np.flatnonzero(y)
    positives = positives[np.argsort(score[positives], kind="stable")]
    neg_scores = score[negatives]
    pos_scores, starts = np.unique(score[positives], return_index=True)
    neg_weight = _columns(w, negatives)
    integer = np.issubdtype(w.dtype, np.integer)
    neg_total = neg_weight.sum(axis=1, dtype=np.int64 if integer else np.float64)
    # below[:, k - 1] = weight of the k lowest-scored negatives. Integer weights stay exact, and
    # stay int32 when they fit (the bootstrap's counts do: half the memory traffic of int64).
    int32 = w.dtype.itemsize <= 4 and (not len(neg_total) or neg_total.max() < 2**31)
    below = np.cumsum(neg_weight, axis=1, dtype=(np.int32 if int32 else np.int64) if integer else np.float64)
    # Positive weight per distinct positive score (summed only where positives tie).
    pos_weight = _columns(w, positives)
    if len(pos_scores) < len(positives):
        pos_weight = np.add.reduceat(pos_weight, starts, axis=1)
    # A positive scored s beats the lo negatives scored under s and ties the hi - lo scored s.
    lo = np.searchsorted(neg_scores, pos_scores, side="left")
    hi = np.searchsorted(neg_scores, pos_scores, side="right")
    every, tied = np.arange(len(pos_scores)), np.flatnonzero(hi > lo)
    twice_wins = 2 * _weight_times_below(pos_weight, below, lo, every)
    if len(tied):
        twice_wins = twice_wins + _weight_times_below(pos_weight, below, hi, tied) - _weight_times_below(pos_weight, below, lo, tied)
    pairs = pos_weight.sum(axis=1, dtype=neg_total.dtype) * neg_total
    with np.errstate(divide="ignore", invalid="ignore"):
        return _per_row(np.where(pairs > 0, twice_wins / (2 * np.where(pairs > 0, pairs, 1)), np.nan), single)


def brier_score(y_true: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None) -> Any:
    """Brier score: the (weighted) mean of ``(score - y)^2``; NaN for no items.

    Returns a float, or an array with one value per row of a 2-D ``weights``.
    """
    y = np.asarray(y_true, dtype=float)
    score = np.asarray(score, dtype=float)
    w, single = _weight_rows(weights, len(y))
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _per_row(np.where(total > 0, (w @ (score - y) ** 2) / np.where(total > 0, total, 1), np.nan), single)


def expected_calibration_error(
    y_true: np.ndarray, score: np.ndarray, bins: int = ECE_BINS, weights: np.ndarray | None = None
) -> Any:
    """ECE of P(positive): sum over equal-width bins of |positive share - mean score| x bin share.

    Bins are ``[0, 1/bins), ..., [(bins-1)/bins, 1]`` (a score of exactly 1 falls in the last bin).
    With weights, each item counts as often as its weight. NaN for no items.

    Returns:
        A float, or an array with one value per row of a 2-D ``weights``.
    """
    y = np.asarray(y_true, dtype=float)
    score = np.asarray(score, dtype=float)
    w, single = _weight_rows(weights, len(y))
    which = np.minimum((score * bins).astype(int), bins - 1)
    # Per bin: weight of positives minus weight of scores; |that| summed is the binned gap.
    gap = np.zeros((len(y), bins))
    gap[np.arange(len(y)), which] = y - score
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _per_row(np.where(total > 0, np.abs(w @ gap).sum(axis=1) / np.where(total > 0, total, 1), np.nan), single)


def _roc_points(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and TPR of every threshold ``t`` in {distinct scores} + {+inf}, predicting positive when
    ``score >= t``, from the highest threshold down. Every threshold is kept: sklearn's ``roc_curve``
    drops those on collinear stretches by default, and an operating point can fall on one.
    """
    y = np.asarray(y_true).astype(int)
    score = np.asarray(score, dtype=float)
    order = np.argsort(-score, kind="stable")
    s, y = score[order], y[order]
    # The last position of each run of equal scores: all items with score >= that score are in.
    last = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, dtype=bool)
    tp = np.r_[0, np.cumsum(y)[last]]
    fp = np.r_[0, np.cumsum(1 - y)[last]]
    return fp / fp[-1], tp / tp[-1]


def recall_at_fpr(y_true: np.ndarray, score: np.ndarray, max_fpr: float) -> float:
    """The highest recall (TPR) reachable by a threshold whose false-positive rate is <= ``max_fpr``.

    Thresholds are every distinct score and +inf (predict positive when ``score >= t``); NaN when
    ``y_true`` holds one class only.
    """
    y_true = np.asarray(y_true).astype(int)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    fpr, tpr = _roc_points(y_true, score)
    return float(tpr[fpr <= max_fpr + _EPS].max())


def fpr_at_recall(y_true: np.ndarray, score: np.ndarray, min_recall: float) -> float:
    """The lowest false-positive rate of a threshold whose recall is >= ``min_recall``.

    Same thresholds as :func:`recall_at_fpr`; NaN when ``y_true`` holds one class only.
    """
    y_true = np.asarray(y_true).astype(int)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    fpr, tpr = _roc_points(y_true, score)
    return float(fpr[tpr >= min_recall - _EPS].min())


def soft_cross_entropy(soft_target: np.ndarray, score: np.ndarray) -> float:
    """Mean cross-entropy (nats) of P(positive) against the human vote share (LeWiDi's soft metric).

    ``-mean(q log p + (1 - q) log(1 - p))`` with ``q`` the share of raters who chose the positive
    label; ``p`` is clipped to ``[1e-12, 1 - 1e-12]``.
    """
    q = np.asarray(soft_target, dtype=float)
    p = np.clip(np.asarray(score, dtype=float), _EPS, 1 - _EPS)
    return float(-np.mean(q * np.log(p) + (1 - q) * np.log(1 - p)))


def binary_metrics(
    y_true: np.ndarray,
    score: np.ndarray,
    threshold: float = 0.5,
    soft_target: np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics of the positive class (label 1), macro-F1, ranking, operating-point and calibration.

    Args:
        y_true: Reference labels, 1 = positive (harmful).
        score: Predicted probability of the positive class.
        threshold: Predict positive when ``score >= threshold``.
        soft_target: Optional share of raters voting positive per item; adds ``soft_cross_entropy``.

    Returns:
        ``accuracy, precision, recall, f1, macro_f1, roc_auc, pr_auc, fpr, fnr,
        recall_at_fpr_{0.01,0.05}, fpr_at_recall_{0.8,0.9}, ece, brier, positive_rate, n``
        (and ``soft_cross_entropy``). Undefined metrics are NaN: threshold-free ones and
        ``macro_f1`` when one class is absent, ``recall``/``fnr`` without positives, ``fpr``
        without negatives (see :func:`confusion_metrics`).
    """
    y_true = np.asarray(y_true).astype(int)
    score = np.asarray(score, dtype=float)
    both_classes = len(np.unique(y_true)) == 2
    counted = threshold_metrics(y_true, score >= threshold)
    out = {name: counted[name] for name in ("accuracy", "precision", "recall", "f1", "macro_f1")}
    out["roc_auc"] = roc_auc(y_true, score)
    out["pr_auc"] = float(average_precision_score(y_true, score)) if both_classes else float("nan")
    out["fpr"], out["fnr"] = counted["fpr"], counted["fnr"]
    for level in FPR_LEVELS:
        out[f"recall_at_fpr_{level}"] = recall_at_fpr(y_true, score, level)
    for level in RECALL_LEVELS:
        out[f"fpr_at_recall_{level}"] = fpr_at_recall(y_true, score, level)
    out["ece"] = expected_calibration_error(y_true, score)
    out["brier"] = brier_score(y_true, score)
    if soft_target is not None:
        out["soft_cross_entropy"] = soft_cross_entropy(soft_target, score)
    out["positive_rate"] = counted["positive_rate"]
    out["n"] = float(len(y_true))
    return out
