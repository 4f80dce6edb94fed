"""Metrics against references that share no code with them: scikit-learn, brute-force definitions
written out here, and hand-computed figures (each with its arithmetic in a comment)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    recall_score,
    roc_auc_score,
)

from smo_impact.evaluation.metrics import (
    THRESHOLD_METRICS,
    binary_metrics,
    brier_score,
    confusion_metrics,
    expected_calibration_error,
    fpr_at_recall,
    recall_at_fpr,
    roc_auc,
    threshold_metrics,
)
from tests.evaluation import references as reference

# Small scores from a five-value grid, so ties (and collinear ROC stretches) are the rule.
SCORES = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
LABELLED = st.lists(st.tuples(st.integers(0, 1), SCORES), min_size=1, max_size=12)
# (label, score, weight) rows; weight 0 drops an item, as a bootstrap resample can.
WEIGHTED = st.lists(st.tuples(st.integers(0, 1), SCORES, st.integers(0, 3)), min_size=1, max_size=10)
THRESHOLDS = st.sampled_from([0.0, 0.3, 0.5, 0.75, 1.0])


def _columns(rows):
    return tuple(np.array(column) for column in zip(*rows))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=12))
def test_threshold_metrics_equal_sklearn(rows):
    y, pred = _columns(rows)
    got = threshold_metrics(y, pred)
    expected = reference.threshold_metrics(y, pred)
    assert set(got) == set(THRESHOLD_METRICS)
    for name in THRESHOLD_METRICS:
        assert reference.same(got[name], expected[name]), name


@settings(max_examples=200, deadline=None)
@given(WEIGHTED, THRESHOLDS)
def test_weighted_metrics_equal_the_metrics_of_the_repeated_items(rows, threshold):
    y, s, w = _columns(rows)
    y_rep, s_rep = np.repeat(y, w), np.repeat(s, w)
    counted = threshold_metrics(y, s >= threshold, w)
    if w.sum() == 0:
        assert all(np.isnan(counted[m]) for m in ("accuracy", "recall", "fpr", "macro_f1", "positive_rate"))
        assert np.isnan(brier_score(y, s, w)) and np.isnan(expected_calibration_error(y, s, weights=w))
        return
    expected = reference.threshold_metrics(y_rep, (s_rep >= threshold).astype(int))
    for name in THRESHOLD_METRICS:
        assert reference.same(counted[name], expected[name]), name
    both = 0 < y_rep.sum() < len(y_rep)
    assert reference.same(roc_auc(y, s, w), roc_auc_score(y_rep, s_rep) if both else np.nan)
    assert brier_score(y, s, w) == pytest.approx(brier_score_loss(y_rep, s_rep))
    assert expected_calibration_error(y, s, weights=w) == pytest.approx(reference.ece_by_loops(y_rep, s_rep))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), SCORES, st.sampled_from([0.0, 0.5, 1.5, 2.25])), min_size=1, max_size=10))
def test_fractional_weights_equal_sklearn_sample_weight(rows):
    y, s, w = _columns(rows)
    if not (0 < y[w > 0].sum() < (w > 0).sum()):
        return  # sklearn's weighted AUC and macro-F1 need both classes with weight
    pred = (s >= 0.5).astype(int)
    counted = threshold_metrics(y, pred, w)
    assert counted["accuracy"] == pytest.approx(accuracy_score(y, pred, sample_weight=w))
    assert counted["recall"] == pytest.approx(recall_score(y, pred, sample_weight=w, zero_division=0))
    assert counted["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", labels=[0, 1], sample_weight=w, zero_division=0))
    assert roc_auc(y, s, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w))
    assert brier_score(y, s, w) == pytest.approx(brier_score_loss(y, s, sample_weight=w))


@settings(max_examples=100, deadline=None)
@given(st.lists(WEIGHTED.filter(lambda rows: len(rows) == 6), min_size=1, max_size=4), THRESHOLDS)
def test_weight_rows_are_scored_independently(tables, threshold):
    # Several resamples of the same six items, one row of item counts each: row b equals the
    # metrics of row b alone.
    y = np.array([r[0] for r in tables[0]])
    s = np.array([r[1] for r in tables[0]])
    w = np.array([[r[2] for r in rows] for rows in tables])
    per_row = threshold_metrics(y, s >= threshold, w)
    auc, brier, ece = roc_auc(y, s, w), brier_score(y, s, w), expected_calibration_error(y, s, weights=w)
    for b in range(len(w)):
        alone = threshold_metrics(y, s >= threshold, w[b])
        for name in THRESHOLD_METRICS:
            assert reference.same(per_row[name][b], alone[name]), name
        assert reference.same(auc[b], roc_auc(y, s, w[b]))
        assert reference.same(brier[b], brier_score(y, s, w[b]))
        assert reference.same(ece[b], expected_calibration_error(y, s, weights=w[b]))


@settings(max_examples=150, deadline=None)
@given(LABELLED)
def test_ranking_and_calibration_equal_sklearn_and_loops(rows):
    y, s = _columns(rows)
    m = binary_metrics(y, s)
    if 0 < y.sum() < len(y):
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s))
        assert m["pr_auc"] == pytest.approx(average_precision_score(y, s))
    else:
        assert np.isnan(m["roc_auc"]) and np.isnan(m["pr_auc"]) and np.isnan(m["macro_f1"])
    assert m["brier"] == pytest.approx(brier_score_loss(y, s))
    assert m["ece"] == pytest.approx(reference.ece_by_loops(y, s))
    assert m["n"] == len(y)


def test_confusion_metrics_broadcast_over_resamples():
    # Two resamples' counts at once; the second has no positives (recall, fnr and macro-F1 NaN).
    m = confusion_metrics(np.array([2, 0]), np.array([1, 0]), np.array([1, 1]), np.array([4, 3]))
    assert m["recall"][0] == pytest.approx(2 / 3) and np.isnan(m["recall"][1])
    assert m["precision"][1] == 0.0  # tp + fp = 1 > 0: 0 / 1
    assert np.isnan(m["macro_f1"][1]) and np.isnan(m["fnr"][1])
    assert m["fpr"][1] == pytest.approx(1 / 4)
    # No predicted positives at all: precision is 0 (sklearn's zero_division=0), not NaN.
    assert confusion_metrics(0, 2, 0, 3)["precision"] == 0.0


def test_binary_metrics_hand_computed():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.1, 0.4])
    m = binary_metrics(y, s)
    # predictions: 1 1 0 1 0 0 0 0 -> TP=2 FN=1 FP=1 TN=4
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    # F1+ = 4/6, F1- = 8/10
    assert m["macro_f1"] == pytest.approx((4 / 6 + 8 / 10) / 2)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["positive_rate"] == pytest.approx(3 / 8)


def test_single_class_reference_leaves_undefined_metrics_nan():
    m = binary_metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.9]))
    # 3 of 4 negatives below 0.5; sklearn's macro-F1 would be (0 + 6/7) / 2, averaging in the F1
    # of a class that is not there.
    assert m["accuracy"] == 0.75 and m["fpr"] == 0.25
    for name in ("roc_auc", "macro_f1", "recall", "fnr", "recall_at_fpr_0.01", "fpr_at_recall_0.8"):
        assert np.isnan(m[name]), name
    assert m["precision"] == 0.0 and m["f1"] == 0.0


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
    # Recall >= 0.8 needs all positives (the five at 0.4825 are tied): FPR 3/100.
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
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, s))
    assert m["fpr"] == pytest.approx(confusion_matrix(y, pred)[0, 1] / np.sum(y == 0))


def test_bad_weights_shape_is_an_error():
    with pytest.raises(ValueError, match=r"weights must have shape \(3,\) or \(resamples, 3\).*got shape \(2,\)"):
        threshold_metrics(np.array([1, 0, 1]), np.array([1, 1, 0]), np.array([1, 2]))


def test_operating_points_keep_thresholds_on_collinear_roc_stretches():
    # Regression (defect 3): thresholds 0.75, 0.5, 0 give ROC points (0, 1/3), (1/2, 2/3), (1, 1),
    # collinear, and roc_curve(drop_intermediate=True) dropped the middle one.
    y = np.array([1, 1, 1, 0, 0])
    s = np.array([0.75, 0.5, 0.0, 0.5, 0.0])
    points = reference.roc_scan(y, s)
    brute_recall = max(tpr for fpr, tpr in points if fpr <= 0.5)
    brute_fpr = min(fpr for fpr, tpr in points if tpr >= 2 / 3)
    assert (brute_recall, brute_fpr) == (2 / 3, 1 / 2)
    assert recall_at_fpr(y, s, 0.5) == pytest.approx(brute_recall)
    assert fpr_at_recall(y, s, 2 / 3) == pytest.approx(brute_fpr)


@settings(max_examples=400, deadline=None)
@given(LABELLED, st.sampled_from([0.0, 0.01, 0.2, 1 / 3, 0.5, 0.75, 1.0]))
def test_operating_points_equal_a_brute_force_threshold_scan(rows, level):
    y, s = _columns(rows)
    m = binary_metrics(y, s)
    if len(set(y.tolist())) < 2:
        assert np.isnan(recall_at_fpr(y, s, level)) and np.isnan(fpr_at_recall(y, s, level))
        assert np.isnan(m["recall_at_fpr_0.01"]) and np.isnan(m["fpr_at_recall_0.9"])
        return
    points = reference.roc_scan(y, s)
    assert recall_at_fpr(y, s, level) == pytest.approx(max(tpr for fpr, tpr in points if fpr <= level + 1e-12))
    assert fpr_at_recall(y, s, level) == pytest.approx(min(fpr for fpr, tpr in points if tpr >= level - 1e-12))
    assert m["recall_at_fpr_0.05"] == pytest.approx(max(tpr for fpr, tpr in points if fpr <= 0.05 + 1e-12))
    assert m["fpr_at_recall_0.8"] == pytest.approx(min(fpr for fpr, tpr in points if tpr >= 0.8 - 1e-12))
