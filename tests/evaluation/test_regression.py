import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score
from statsmodels.stats.contingency_tables import mcnemar

from smo_impact.evaluation.bootstrap import resample_counts
from smo_impact.evaluation.regression import mcnemar_test, paired_regression


def _preds(reference, predicted, slice_values=None):
    reference = np.asarray(reference)
    predicted = np.asarray(predicted)
    return pd.DataFrame(
        {
            "task": [f"t{i}" for i in range(len(reference))],
            "text": [f"text {i}" for i in range(len(reference))],
            "domain": slice_values if slice_values is not None else ["a"] * len(reference),
            "reference": reference,
            "score": np.where(predicted == 1, 0.8, 0.2),
            "predicted": predicted,
        }
    )


def test_mcnemar_exact_known_answer():
    # 10 items the control got right and the treatment wrong, none the other way:
    # exact two-sided binomial p = 2 * 0.5**10.
    c = np.r_[np.ones(10), np.ones(30), np.zeros(5)].astype(bool)
    t = np.r_[np.zeros(10), np.ones(30), np.zeros(5)].astype(bool)
    stat, p = mcnemar_test(c, t)
    assert p == pytest.approx(2 * 0.5**10)
    assert stat == 0.0  # statsmodels' exact statistic: min(b, c)


def test_mcnemar_chi2_matches_statsmodels():
    # b = 30 control-only correct, c = 10 treatment-only correct: chi2 = (|30 - 10| - 1)^2 / 40
    c = np.r_[np.ones(30), np.zeros(10), np.ones(50)].astype(bool)
    t = np.r_[np.zeros(30), np.ones(10), np.ones(50)].astype(bool)
    stat, p = mcnemar_test(c, t)
    assert stat == pytest.approx(19**2 / 40)
    assert p == pytest.approx(mcnemar([[50, 30], [10, 0]], exact=False, correction=True).pvalue)
    assert mcnemar_test(c, c) == (0.0, 1.0)


def test_new_false_negatives_and_positives_are_counted_and_listed():
    ref = [1, 1, 1, 0, 0, 0, 1, 0]
    ctl = [1, 1, 0, 0, 0, 1, 1, 0]
    trt = [0, 1, 1, 1, 0, 0, 0, 0]
    # item 0: new FN, item 2: fixed FN, item 3: new FP, item 5: fixed FP, item 6: new FN
    control = _preds(ref, ctl, ["a", "b", "a", "b", "a", "b", "b", "a"])
    treatment = _preds(ref, trt).drop(columns=["domain"]).iloc[::-1]  # order must not matter
    result = paired_regression(control, treatment, 0.5, np.random.default_rng(0), ("domain",), n_resamples=200)
    m = result.metrics
    assert (m["new_false_negatives"], m["new_false_positives"]) == (2, 1)
    assert (m["fixed_false_negatives"], m["fixed_false_positives"]) == (1, 1)
    assert m["slice/domain/a/new_false_negatives"] == 1 and m["slice/domain/b/new_false_negatives"] == 1
    assert m["slice/domain/b/new_false_positives"] == 1
    assert m["mcnemar_pvalue"] == pytest.approx(mcnemar([[2, 3], [2, 1]], exact=True).pvalue)
    assert m["recall_ci_low"] <= m["recall_ci_high"]
    items = result.items.sort_values("task")
    assert items["task"].tolist() == ["t0", "t3", "t6"]
    assert items["regression"].tolist() == ["new_false_negative", "new_false_positive", "new_false_negative"]
    assert items["control_score"].tolist() == [0.8, 0.2, 0.8]
    assert items["treatment_score"].tolist() == [0.2, 0.8, 0.2]
    assert {"text", "domain", "reference"} <= set(items.columns)


def test_missing_treatment_items_are_an_error():
    control = _preds([1, 0], [1, 0])
    with pytest.raises(ValueError, match="treatment predictions lack task 't1'"):
        paired_regression(control, control.iloc[:1], 0.5, np.random.default_rng(0))


def test_paired_bootstrap_p_values_are_logged_next_to_the_intervals():
    rng = np.random.default_rng(5)
    ref = rng.integers(0, 2, 60)
    ctl = np.where(rng.random(60) < 0.8, ref, 1 - ref)
    trt = np.where(rng.random(60) < 0.6, ref, 1 - ref)
    control, treatment = _preds(ref, ctl), _preds(ref, trt)
    m = paired_regression(control, treatment, 0.5, np.random.default_rng(3), n_resamples=100).metrics
    # Brute force over the same resamples: recall of each run on the repeated items.
    deltas = []
    for row in resample_counts(60, 100, np.random.default_rng(3)):
        items = np.repeat(np.arange(60), row)
        deltas.append(recall_score(ref[items], trt[items]) - recall_score(ref[items], ctl[items]))
    deltas = np.array(deltas)
    assert m["recall_p"] == pytest.approx(min(1.0, 2 * min(np.mean(deltas <= 0), np.mean(deltas >= 0))))
    assert (m["recall_ci_low"], m["recall_ci_high"]) == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])))
    assert {"macro_f1_p", "roc_auc_p"} <= set(m)
    # The same predictions twice: every resampled delta is 0, so the interval is [0, 0] and p = 1.
    same = paired_regression(control, control, 0.5, np.random.default_rng(3), n_resamples=100).metrics
    for metric in ("macro_f1", "roc_auc", "recall"):
        assert (same[f"{metric}_ci_low"], same[f"{metric}_ci_high"], same[f"{metric}_p"]) == (0.0, 0.0, 1.0)
    assert not any(k.endswith("_p") for k in paired_regression(control, treatment, 0.5, rng, n_resamples=0).metrics)
