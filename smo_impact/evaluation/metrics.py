"""Classification metrics for a binary safety classifier.

Names are stable because they become MLflow metric names under a benchmark namespace
(``test/macro_f1``).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

HEADLINE_METRICS = ("macro_f1", "roc_auc", "recall")


def binary_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Metrics of the positive class (label 1) and macro-F1.

    Args:
        y_true: Reference labels, 1 = positive (harmful).
        score: Predicted probability of the positive class.
        threshold: Predict positive when ``score >= threshold``.
    """
    y_true = np.asarray(y_true).astype(int)
    score = np.asarray(score, dtype=float)
    y_pred = (score >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, score)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y_true, score)) if both_classes else float("nan"),
        "positive_rate": float(y_pred.mean()),
        "n": float(len(y_true)),
    }
