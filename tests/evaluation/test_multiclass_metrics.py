"""K-class metrics against scikit-learn and brute-force definitions (tests/evaluation/references.py),
on random inputs that include absent classes, one-class references and tied probabilities."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, f1_score

from smo_impact.evaluation.metrics import (
    MULTICLASS_THRESHOLD_METRICS,
    ORDINAL_METRICS,
    multiclass_brier,
    multiclass_confusion,
    multiclass_confusion_metrics,
    multiclass_metrics,
    multiclass_roc_auc,
    multiclass_soft_cross_entropy,
    soft_cross_entropy,
    threshold_metrics,
    top_label_ece,
)
from tests.evaluation import references as reference

K = st.integers(2, 5)


@st.composite
def labelled(draw, weighted=False):
    """(k, reference codes, predicted codes, probabilities[, weights]); probabilities on a coarse grid
    so ties between classes happen, rows normalised."""
    k = draw(K)
    n = draw(st.integers(1, 14))
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    raw = np.array(draw(st.lists(st.lists(st.sampled_from([0, 1, 2, 4]), min_size=k, max_size=k), min_size=n, max_size=n)), dtype=float)
    raw[raw.sum(axis=1) == 0, 0] = 1.0
    proba = raw / raw.sum(axis=1, keepdims=True)
    pred = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    if weighted:
        w = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
        return k, y, pred, proba, w
    return k, y, pred, proba


def _same(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= 1e-9)))


@settings(max_examples=300, deadline=None)
@given(labelled())
def test_threshold_metrics_equal_sklearn(case):
    k, y, pred, _ = case
    got = multiclass_confusion_metrics(multiclass_confusion(y, pred, k), ordinal=True)
    expected = reference.multiclass_threshold_metrics(y, pred, k)
    assert np.array_equal(multiclass_confusion(y, pred, k), expected["confusion"])
    for name in (*MULTICLASS_THRESHOLD_METRICS, *ORDINAL_METRICS, "precision", "recall", "f1", "support"):
        assert _same(got[name], expected[name]), name


@settings(max_examples=200, deadline=None)
@given(labelled(weighted=True))
def test_weighted_confusion_equals_the_repeated_items(case):
    k, y, pred, proba, w = case
    y_rep, pred_rep, proba_rep = np.repeat(y, w), np.repeat(pred, w), np.repeat(proba, w, axis=0)
    rows = np.stack([w, np.ones_like(w)])
    confusion = multiclass_confusion(y, pred, k, rows)
    assert np.array_equal(confusion[0], multiclass_confusion(y_rep, pred_rep, k))
    assert np.array_equal(confusion[1], multiclass_confusion(y, pred, k))
    assert np.array_equal(multiclass_confusion(y, pred, k, w), confusion[0])  # 1-D weights: one row
    if w.sum() == 0:
        assert np.isnan(multiclass_brier(y, proba, w)) and np.isnan(top_label_ece(y, proba, weights=w))
        return
    assert _same(multiclass_roc_auc(y, proba, rows)[0], reference.ovr_roc_auc(y_rep, proba_rep))
    assert multiclass_brier(y, proba, rows)[0] == pytest.approx(
        brier_score_loss(y_rep, proba_rep, labels=list(range(k)), scale_by_half=False))
    assert top_label_ece(y, proba, weights=rows)[0] == pytest.approx(reference.top_label_ece_by_loops(y_rep, proba_rep))


@settings(max_examples=200, deadline=None)
@given(labelled())
def test_ranking_and_calibration_equal_references(case):
    k, y, _, proba = case
    assert _same(multiclass_roc_auc(y, proba), reference.ovr_roc_auc(y, proba))
    assert multiclass_brier(y, proba) == pytest.approx(brier_score_loss(y, proba, labels=list(range(k)), scale_by_half=False))
    assert top_label_ece(y, proba) == pytest.approx(reference.top_label_ece_by_loops(y, proba))


def test_multiclass_metrics_predict_the_most_probable_class():
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]])
    got = multiclass_metrics(y, proba, ordinal=True)
    # Predicted 0, 1, 2, 0: three right; class 2 recall 1/2; the miss is 2 ranks off.
    assert got["accuracy"] == 0.75 and got["worst_class_recall"] == 0.5 and got["mae"] == 0.5
    assert got["macro_f1"] == pytest.approx(f1_score(y, [0, 1, 2, 0], average="macro"))
    assert np.array_equal(got["confusion"], [[1, 0, 0], [0, 1, 0], [1, 0, 1]])


def test_two_classes_agree_with_the_binary_metrics():
    """With K = 2 the K-class definitions are the binary ones (macro-F1, accuracy, ROC-AUC)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    p1 = rng.random(50)
    proba = np.stack([1 - p1, p1], axis=1)
    got = multiclass_metrics(y, proba)
    binary = threshold_metrics(y, p1 > 0.5)
    assert got["macro_f1"] == pytest.approx(binary["macro_f1"]) and got["accuracy"] == pytest.approx(binary["accuracy"])
    from sklearn.metrics import roc_auc_score

    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    share = rng.random(50)
    assert multiclass_soft_cross_entropy(np.stack([1 - share, share], axis=1), proba) == pytest.approx(
        soft_cross_entropy(share, p1))


def test_soft_cross_entropy_by_hand():
    # One item, votes 2/4 on class 0 and 1/4 each on 1 and 2, predicted (0.5, 0.25, 0.25):
    # -(0.5 ln 0.5 + 0.25 ln 0.25 + 0.25 ln 0.25) = 1.0397 nats.
    got = multiclass_soft_cross_entropy(np.array([[0.5, 0.25, 0.25]]), np.array([[0.5, 0.25, 0.25]]))
    assert got == pytest.approx(-(0.5 * np.log(0.5) + 0.5 * np.log(0.25)))


def test_macro_f1_is_nan_with_one_class_present_and_qwk_when_undefined():
    got = multiclass_confusion_metrics(multiclass_confusion([1, 1], [1, 1], 3), ordinal=True)
    assert np.isnan(got["macro_f1"]) and np.isnan(got["qwk"]) and got["accuracy"] == 1.0
    assert np.isnan(got["recall"][0]) and got["recall"][1] == 1.0


def test_codes_outside_the_label_set_are_refused():
    with pytest.raises(ValueError, match=r"class codes must be in \[0, 2\]"):
        multiclass_confusion([0, 3], [0, 1], 3)
