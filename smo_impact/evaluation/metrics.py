"""Classification metrics for a safety classifier: binary (harmful vs benign) and K-class.

Each metric is defined once here and called by the run's metrics, the slices, the bootstrap and the
analysis alike. Threshold metrics are computed from the four confusion counts
(:func:`confusion_metrics`), ranking and calibration metrics from item weights, so that one call
scores a plain set of items (every weight 1) or every bootstrap resample at once (one row of item
counts per resample).

Names are stable because they become MLflow metric names under a benchmark namespace
(``test/macro_f1``, ``test/recall_at_fpr_0.01``). MLflow names allow letters, digits and
``_ - . / space`` only, so "recall at FPR 1%" is spelled ``recall_at_fpr_0.01``.

K-class metrics take reference and predicted labels as integer codes ``0 .. K-1`` into the declared
label set (its order is the ordinal scale's order, benign to harmful). Their threshold metrics come
from the (possibly weighted) K x K confusion matrix (:func:`multiclass_confusion`,
:func:`multiclass_confusion_metrics`), exactly as the binary ones come from the four counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

HEADLINE_METRICS = ("macro_f1", "roc_auc", "recall")
# Metrics of the predicted labels, all computed from the confusion counts by confusion_metrics.
THRESHOLD_METRICS = ("accuracy", "precision", "recall", "f1", "macro_f1", "fpr", "fnr", "positive_rate")
# Over-blocking levels a safety team can tolerate, and recall levels it must reach.
FPR_LEVELS = (0.01, 0.05)
RECALL_LEVELS = (0.8, 0.9)
ECE_BINS = 10
# For these a larger value is worse; gates read a "drop" in them as an increase.
LOWER_IS_BETTER = frozenset(
    {"fpr", "fnr", "ece", "brier", "soft_cross_entropy", "mae"} | {f"fpr_at_recall_{r}" for r in RECALL_LEVELS}
)
_EPS = 1e-12

# K-class metrics of the predicted labels, all from the confusion matrix (multiclass_confusion_metrics),
# and those of ordinal scales (the labels' order is meaningful).
MULTICLASS_THRESHOLD_METRICS = ("accuracy", "macro_f1", "weighted_f1", "worst_class_recall")
ORDINAL_METRICS = ("mae", "qwk")
MULTICLASS_HEADLINE_METRICS = ("macro_f1", "weighted_f1", "roc_auc")


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
    if both_classes:
        from sklearn.metrics import average_precision_score  # here: `smo-impact validate` reads this module

        out["pr_auc"] = float(average_precision_score(y_true, score))
    else:
        out["pr_auc"] = float("nan")
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


# -- K classes -------------------------------------------------------------------------------------
def multiclass_confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> Any:
    """The K x K confusion matrix: entry ``[i, j]`` is the weight of the items of reference class
    ``i`` predicted as ``j``.

    Args:
        y_true: Reference class codes in ``0 .. n_classes - 1``.
        y_pred: Predicted class codes, likewise.
        n_classes: K, the size of the declared label set (absent classes get zero rows/columns).
        weights: None (each item once), one weight per item, or (resamples x items) item counts.

    Returns:
        A (K, K) array, or (resamples, K, K) for a 2-D ``weights``.
    """
    y = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    w, single = _weight_rows(weights, len(y))
    k = int(n_classes)
    if len(y) and (min(y.min(), pred.min()) < 0 or max(y.max(), pred.max()) >= k):
        raise ValueError(f"class codes must be in [0, {k - 1}]; got values from {min(y.min(), pred.min())} to {max(y.max(), pred.max())}")
    cell = y * k + pred
    # Items sorted by cell: each cell is a run of consecutive columns, summed per row at once.
    order = np.argsort(cell, kind="stable")
    cells, starts = np.unique(cell[order], return_index=True)
    exact = np.int64 if np.issubdtype(w.dtype, np.integer) else np.float64
    out = np.zeros((w.shape[0], k * k), dtype=exact)
    if len(cells):
        out[:, cells] = np.add.reduceat(_columns(w, order).astype(exact, copy=False), starts, axis=1)
    out = out.reshape(w.shape[0], k, k)
    return out[0] if single else out


def multiclass_confusion_metrics(confusion: np.ndarray, ordinal: bool = False) -> dict[str, np.ndarray]:
    """Every K-class threshold metric from (possibly weighted) confusion matrices.

    Vectorised: ``confusion`` is (K, K) or (rows, K, K); rows are reference classes, columns
    predictions. Definitions (``tp_c`` the diagonal, ``support_c`` the row sums, ``predicted_c`` the
    column sums, ``n`` the total):

        - ``precision`` (per class) = tp / predicted, 0 when the class is never predicted (sklearn's
          zero_division=0); ``recall`` (per class) = tp / support, NaN when the class is absent from
          the reference; ``f1`` (per class) = 2tp / (2tp + fp + fn), 0 when that is 0/0.
        - ``accuracy`` = sum(tp) / n.
        - ``macro_f1``: the mean F1 of the classes present in the reference, NaN unless at least two
          are (with K = 2 this is the binary ``macro_f1``); a class absent from the reference has no
          F1, but predicting it is still an error of the item's own class.
        - ``weighted_f1``: F1 averaged with the classes' support as weights (sklearn's "weighted").
        - ``worst_class_recall``: the lowest recall of a class present in the reference.
        - ordinal scales only (classes in scale order): ``mae`` = mean |reference rank - predicted
          rank|, and ``qwk`` = quadratic-weighted Cohen's kappa, 1 - sum(w O) / sum(w E) with
          w_ij = (i - j)^2 and E the outer product of the margins / n; NaN where sum(w E) = 0.

    Returns:
        ``{metric: array}``; per-class entries (``precision``, ``recall``, ``f1``, ``support``) have a
        trailing axis of length K, the others the leading shape of ``confusion`` without (K, K).
    """
    c = np.asarray(confusion, dtype=np.float64)
    k = c.shape[-1]
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    support = c.sum(axis=-1)
    predicted = c.sum(axis=-2)
    n = support.sum(axis=-1)
    present = support > 0
    n_present = present.sum(axis=-1)
    nan = np.float64("nan")
    f1 = _f1(tp, predicted - tp, support - tp)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "precision": np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0),
            "recall": np.where(present, tp / np.where(present, support, 1), nan),
            "f1": f1,
            "support": support,
            "accuracy": np.where(n > 0, tp.sum(axis=-1) / np.where(n > 0, n, 1), nan),
            "macro_f1": np.where(n_present >= 2, (f1 * present).sum(axis=-1) / np.maximum(n_present, 1), nan),
            "weighted_f1": np.where(n > 0, (f1 * support).sum(axis=-1) / np.where(n > 0, n, 1), nan),
        }
        recall_or_inf = np.where(present, out["recall"], np.inf)
        out["worst_class_recall"] = np.where(n_present >= 1, recall_or_inf.min(axis=-1), nan)
        if ordinal:
            rank = np.arange(k)
            gap = rank[:, None] - rank[None, :]
            out["mae"] = np.where(n > 0, (c * np.abs(gap)).sum(axis=(-2, -1)) / np.where(n > 0, n, 1), nan)
            expected = support[..., :, None] * predicted[..., None, :] / np.where(n > 0, n, 1)[..., None, None]
            observed_cost = (c * gap**2).sum(axis=(-2, -1))
            expected_cost = (expected * gap**2).sum(axis=(-2, -1))
            out["qwk"] = np.where(expected_cost > 0, 1 - observed_cost / np.where(expected_cost > 0, expected_cost, 1), nan)
    return out


def predicted_classes(proba: np.ndarray) -> np.ndarray:
    """The predicted class code per item: the most probable class (the lowest code among ties)."""
    return np.asarray(proba, dtype=float).argmax(axis=1)


def multiclass_roc_auc(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray | None = None) -> Any:
    """One-vs-rest ROC-AUC, macro-averaged: the mean over classes ``c`` of :func:`roc_auc` of
    (reference is c, P(c)), over the classes where it is defined (present and not every item);
    NaN when fewer than two are (sklearn's ``roc_auc_score(multi_class='ovr')`` when all are).

    Returns:
        A float, or an array with one value per row of a 2-D ``weights``.
    """
    y = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=float)
    w, single = _weight_rows(weights, len(y))
    per_class = np.stack([np.atleast_1d(roc_auc(y == c, proba[:, c], w)) for c in range(proba.shape[1])], axis=-1)
    defined = np.isfinite(per_class)
    count = defined.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count >= 2, np.where(defined, per_class, 0.0).sum(axis=-1) / np.maximum(count, 1), np.nan)
    return _per_row(mean, single)


def multiclass_brier(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray | None = None) -> Any:
    """Multiclass Brier score: the (weighted) mean over items of sum_k (P(k) - [reference = k])^2
    (Brier 1950; sklearn's ``brier_score_loss`` with K labels). Ranges 0..2; NaN for no items."""
    y = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=float)
    w, single = _weight_rows(weights, len(y))
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y)), y] = 1.0
    per_item = ((proba - onehot) ** 2).sum(axis=1)
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _per_row(np.where(total > 0, (w @ per_item) / np.where(total > 0, total, 1), np.nan), single)


def top_label_ece(y_true: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS, weights: np.ndarray | None = None) -> Any:
    """Top-label ECE: :func:`expected_calibration_error` of the predicted class's probability
    (the confidence) against whether the prediction is right (Guo et al., 2017)."""
    proba = np.asarray(proba, dtype=float)
    correct = (predicted_classes(proba) == np.asarray(y_true, dtype=np.int64)).astype(float)
    return expected_calibration_error(correct, proba.max(axis=1), bins, weights)


def multiclass_soft_cross_entropy(soft_target: np.ndarray, proba: np.ndarray) -> float:
    """Mean cross-entropy (nats) of the predicted distribution against the raters' K-way vote
    shares: ``-mean_i sum_k q_ik log p_ik``, ``p`` clipped to ``[1e-12, 1]``. With K = 2 it is
    :func:`soft_cross_entropy` of P(class 1) against class 1's vote share."""
    q = np.asarray(soft_target, dtype=float)
    p = np.clip(np.asarray(proba, dtype=float), _EPS, 1.0)
    return float(-np.mean((q * np.log(p)).sum(axis=1)))


def multiclass_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    ordinal: bool = False,
    soft_target: np.ndarray | None = None,
) -> dict[str, Any]:
    """K-class metrics of one set of items; the prediction is the most probable class.

    Args:
        y_true: Reference class codes ``0 .. K-1`` (K = ``proba.shape[1]``).
        proba: Predicted probability of each class, one row per item.
        ordinal: The classes are an ordered scale: adds ``mae`` and ``qwk``.
        soft_target: Optional (items x K) vote shares; adds ``soft_cross_entropy``.

    Returns:
        ``accuracy, macro_f1, weighted_f1, worst_class_recall, roc_auc`` (one-vs-rest, macro),
        ``ece`` (top-label), ``brier`` (multiclass), ``n``, ``confusion`` (K x K counts) and the
        per-class arrays ``precision``, ``recall``, ``f1``, ``support`` (length K).
    """
    y = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=float)
    confusion = multiclass_confusion(y, predicted_classes(proba), proba.shape[1])
    counted = multiclass_confusion_metrics(confusion, ordinal)
    out: dict[str, Any] = {
        name: float(counted[name]) for name in (*MULTICLASS_THRESHOLD_METRICS, *(ORDINAL_METRICS if ordinal else ()))
    }
    out["roc_auc"] = multiclass_roc_auc(y, proba)
    out["ece"] = top_label_ece(y, proba)
    out["brier"] = multiclass_brier(y, proba)
    if soft_target is not None:
        out["soft_cross_entropy"] = multiclass_soft_cross_entropy(soft_target, proba)
    out["n"] = float(len(y))
    out["confusion"] = confusion
    for name in ("precision", "recall", "f1", "support"):
        out[name] = counted[name]
    return out
