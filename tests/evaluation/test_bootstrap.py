import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from smo_impact.evaluation.bootstrap import bootstrap_ci, paired_bootstrap_ci, resample_counts, weighted_metrics


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.round(np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1), 2)  # rounded: many tied scores
    return y, s


def test_unit_weights_equal_sklearn():
    y, s = _data()
    m = {k: v[0] for k, v in weighted_metrics(y, s, 0.5, np.ones((1, len(y)))).items()}
    pred = s >= 0.5
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(precision_score(y, pred))
    assert m["recall"] == pytest.approx(recall_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s))


def test_resample_weights_equal_sklearn_on_the_resampled_items():
    y, s = _data(50)
    rng = np.random.default_rng(1)
    counts = resample_counts(50, 3, np.random.default_rng(1))
    draws = rng.integers(0, 50, size=(3, 50))  # the same draws resample_counts made
    values = weighted_metrics(y, s, 0.5, counts)
    for b in range(3):
        idx = draws[b]
        assert counts[b].sum() == 50
        assert values["roc_auc"][b] == pytest.approx(roc_auc_score(y[idx], s[idx]))
        assert values["f1"][b] == pytest.approx(f1_score(y[idx], s[idx] >= 0.5))


def test_ci_contains_the_estimate_and_is_seeded():
    y, s = _data(400)
    a = bootstrap_ci(y, s, 0.5, np.random.default_rng(7))
    b = bootstrap_ci(y, s, 0.5, np.random.default_rng(7))
    assert a == b
    auc = roc_auc_score(y, s)
    low, high = a["roc_auc"]
    assert low < auc < high and high - low < 0.15


def test_paired_bootstrap_identical_models_give_zero_and_a_shift_is_detected():
    y, s = _data(400)
    same = paired_bootstrap_ci(y, s, s, 0.5, np.random.default_rng(0))
    assert same["macro_f1"] == (0.0, 0.0)
    # The treatment flips every true positive at score >= 0.5 to 0.4: recall falls to 0.
    worse = np.where((y == 1) & (s >= 0.5), 0.4, s)
    ci = paired_bootstrap_ci(y, s, worse, 0.5, np.random.default_rng(0))
    assert ci["recall"][1] < -0.5
