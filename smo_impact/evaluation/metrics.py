"""Classification metrics for a binary safety classifier.

Names are stable because they become MLflow metric names under a benchmark namespace
(``test/macro_f1``, ``test/recall_at_fpr_0.01``). MLflow names allow letters, digits and
``_ - . / space`` only, so "recall at FPR 1%" is spelled ``recall_at_fpr_0.01``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

HEADLINE_METRICS = ("macro_f1", "roc_auc", "recall")
# Over-blocking levels a safety team can tolerate, and recall levels it must reach.
FPR_LEVELS = (0.01, 0.05)
RECALL_LEVELS = (0.8, 0.9)
ECE_BINS = 10
# For these a larger value is worse; gates read a "drop" in them as an increase.
LOWER_IS_BETTER = frozenset(
    {"fpr", "fnr", "ece", "brier", "soft_cross_entropy"} | {f"fpr_at_recall_{r}" for r in RECALL_LEVELS}
)
_EPS = 1e-12


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


def expected_calibration_error(y_true: np.ndarray, score: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of P(positive): sum over equal-width bins of |positive share - mean score| x bin share.

    Bins are ``[0, 1/bins), ..., [(bins-1)/bins, 1]`` (a score of exactly 1 falls in the last bin).
    """
    y_true = np.asarray(y_true, dtype=float)
    score = np.asarray(score, dtype=float)
    if len(y_true) == 0:
        return float("nan")
    which = np.minimum((score * bins).astype(int), bins - 1)
    n = np.bincount(which, minlength=bins)
    pos = np.bincount(which, weights=y_true, minlength=bins)
    conf = np.bincount(which, weights=score, minlength=bins)
    used = n > 0
    return float(np.sum(np.abs(pos[used] - conf[used])) / len(y_true))


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
        (and ``soft_cross_entropy``). Threshold-free metrics are NaN when one class is absent.
    """
    y_true = np.asarray(y_true).astype(int)
    score = np.asarray(score, dtype=float)
    y_pred = (score >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    negatives = y_true == 0
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, score)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y_true, score)) if both_classes else float("nan"),
        "fpr": float(y_pred[negatives].mean()) if negatives.any() else float("nan"),
        "fnr": float(1 - y_pred[~negatives].mean()) if (~negatives).any() else float("nan"),
    }
    for level in FPR_LEVELS:
        out[f"recall_at_fpr_{level}"] = recall_at_fpr(y_true, score, level)
    for level in RECALL_LEVELS:
        out[f"fpr_at_recall_{level}"] = fpr_at_recall(y_true, score, level)
    out["ece"] = expected_calibration_error(y_true, score)
    out["brier"] = float(brier_score_loss(y_true, score, pos_label=1)) if len(y_true) else float("nan")
    if soft_target is not None:
        out["soft_cross_entropy"] = soft_cross_entropy(soft_target, score)
    out["positive_rate"] = float(y_pred.mean())
    out["n"] = float(len(y_true))
    return out
