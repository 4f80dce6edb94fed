import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from smo_impact.evaluation.metrics import binary_metrics


def test_binary_metrics_hand_computed():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.1, 0.4])
    m = binary_metrics(y, s)
    # predictions: 1 1 0 1 0 0 0 0 -> TP=2 FN=1 FP=1 TN=4
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["macro_f1"] == pytest.approx(f1_score(y, s >= 0.5, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["positive_rate"] == pytest.approx(3 / 8)


def test_single_class_gives_nan_auc():
    m = binary_metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.9]))
    assert np.isnan(m["roc_auc"]) and m["accuracy"] == 0.75
