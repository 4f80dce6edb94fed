import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
)

from smo_impact.evaluation.metrics import binary_metrics, fpr_at_recall, recall_at_fpr


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


def test_recall_at_fpr_on_constructed_scores():
    # 100 negatives scored 0.000..0.495, 10 positives: 5 above every negative, 5 just below the top 3.
    neg = np.arange(100) / 200
    pos = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.4825, 0.4825, 0.4825, 0.4825, 0.4825])
    y = np.r_[np.zeros(100), np.ones(10)]
    s = np.r_[neg, pos]
    m = binary_metrics(y, s)
    # FPR <= 1%: at most one negative above threshold -> only the 5 top positives -> recall 0.5.
    assert m["recall_at_fpr_0.01"] == pytest.approx(0.5)
    # FPR <= 5%: threshold 0.4825 lets in negatives 0.485, 0.49, 0.495 (3%) and all 10 positives.
    assert m["recall_at_fpr_0.05"] == pytest.approx(1.0)
    # Recall >= 0.8 needs all positives (the five at 0.965 are tied): FPR 3/100.
    assert m["fpr_at_recall_0.8"] == pytest.approx(0.03)


def test_calibration_and_soft_metrics_by_hand():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.9, 0.2, 0.1])
    m = binary_metrics(y, s, soft_target=np.array([0.8, 0.4, 0.6, 0.0]))
    # bins: 0.9 -> bin 9 (2 items, 1 positive: |1 - 1.8|), 0.2 -> bin 2 (|1 - 0.2|), 0.1 -> bin 1 (|0 - 0.1|)
    assert m["ece"] == pytest.approx((0.8 + 0.8 + 0.1) / 4)
    assert m["brier"] == pytest.approx(brier_score_loss(y, s)) == pytest.approx((0.01 + 0.81 + 0.64 + 0.01) / 4)
    q = np.array([0.8, 0.4, 0.6, 0.0])
    # cross-entropy against soft targets = log loss of hard labels weighted by the vote shares
    expected = log_loss(np.r_[np.ones(4), np.zeros(4)], np.r_[s, s], sample_weight=np.r_[q, 1 - q], normalize=False) / 4
    assert m["soft_cross_entropy"] == pytest.approx(expected)
    assert m["fpr"] == pytest.approx(0.5) and m["fnr"] == pytest.approx(0.5)


def test_metrics_match_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    m = binary_metrics(y, s, threshold=0.4)
    pred = s >= 0.4
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, s))
    assert m["fpr"] == pytest.approx(confusion_matrix(y, pred)[0, 1] / np.sum(y == 0))


def test_operating_points_agree_with_the_standalone_functions():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) * 0.6 + y * 0.3
    m = binary_metrics(y, s)
    assert m["recall_at_fpr_0.05"] == recall_at_fpr(y, s, 0.05)
    assert m["fpr_at_recall_0.9"] == fpr_at_recall(y, s, 0.9)
    assert np.isnan(binary_metrics(np.ones(3), np.array([0.2, 0.6, 0.9]))["recall_at_fpr_0.01"])


def _scan(y, s):
    """Brute force: (FPR, TPR) of every threshold t in {distinct scores} + {inf}, positive when s >= t."""
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    points = []
    for t in [*sorted(set(s.tolist())), np.inf]:
        flagged = s >= t
        fpr = sum(f for f, yi in zip(flagged, y) if yi == 0) / sum(1 for yi in y if yi == 0)
        tpr = sum(f for f, yi in zip(flagged, y) if yi == 1) / sum(1 for yi in y if yi == 1)
        points.append((fpr, tpr))
    return points


def test_operating_points_keep_thresholds_on_collinear_roc_stretches():
    # Regression (defect 3): thresholds 0.75, 0.5, 0 give ROC points (0, 1/3), (1/2, 2/3), (1, 1),
    # collinear, and roc_curve(drop_intermediate=True) dropped the middle one.
    y = np.array([1, 1, 1, 0, 0])
    s = np.array([0.75, 0.5, 0.0, 0.5, 0.0])
    points = _scan(y, s)
    brute_recall = max(tpr for fpr, tpr in points if fpr <= 0.5)
    brute_fpr = min(fpr for fpr, tpr in points if tpr >= 2 / 3)
    assert (brute_recall, brute_fpr) == (2 / 3, 1 / 2)
    assert recall_at_fpr(y, s, 0.5) == pytest.approx(brute_recall)
    assert fpr_at_recall(y, s, 2 / 3) == pytest.approx(brute_fpr)


# Small scores from a five-value grid, so ties (and collinear ROC stretches) are the rule.
SCORES = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
LABELLED = st.lists(st.tuples(st.integers(0, 1), SCORES), min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(LABELLED, st.sampled_from([0.0, 0.01, 0.2, 1 / 3, 0.5, 0.75, 1.0]))
def test_operating_points_equal_a_brute_force_threshold_scan(rows, level):
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    if len(set(y.tolist())) < 2:
        assert np.isnan(recall_at_fpr(y, s, level)) and np.isnan(fpr_at_recall(y, s, level))
        return
    points = _scan(y, s)
    assert recall_at_fpr(y, s, level) == pytest.approx(max(tpr for fpr, tpr in points if fpr <= level + 1e-12))
    assert fpr_at_recall(y, s, level) == pytest.approx(min(fpr for fpr, tpr in points if tpr >= level - 1e-12))
