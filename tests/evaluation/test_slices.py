import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, recall_score

from smo_impact.evaluation.slices import MIN_SLICE_SIZE, slice_report


def test_per_slice_metrics_worst_slice_and_fpr_gap():
    # group "women": 10 negatives, 3 flagged (FPR 0.3); 10 positives all caught.
    # group "men": 10 negatives, 1 flagged (FPR 0.1); 10 positives, 5 caught.
    rows = (
        [("women", 0, int(i < 3)) for i in range(10)] + [("women", 1, 1)] * 10
        + [("men", 0, int(i < 1)) for i in range(10)] + [("men", 1, int(i < 5)) for i in range(10)]
    )
    preds = pd.DataFrame(rows, columns=["target", "reference", "predicted"])
    report = slice_report(preds, ["target", "missing_column"])
    m = report.metrics
    assert m["slice/target/women/fpr"] == pytest.approx(0.3)
    assert m["slice/target/men/recall"] == pytest.approx(0.5)
    assert m["slice/target/men/n"] == 20
    assert m["fpr_gap/target"] == pytest.approx(0.2)
    # men: TP 5 FP 1 FN 5 TN 9 -> F1+ = 10/16, F1- = 18/24, accuracy 14/20;
    # women: TP 10 FP 3 TN 7 -> accuracy 17/20.
    assert m["slice/target/men/macro_f1"] == pytest.approx((10 / 16 + 18 / 24) / 2)
    assert report.worst == {"target": "men"}
    assert m["worst_slice/target/accuracy"] == pytest.approx(14 / 20)
    assert m["worst_slice/target/macro_f1"] == pytest.approx((10 / 16 + 18 / 24) / 2)
    assert list(report.table["value"]) == ["men", "women"]


def test_small_slices_are_not_named_worst():
    preds = pd.DataFrame({"g": ["a"] * 12 + ["b"] * 2, "reference": [1, 0] * 7, "predicted": [1, 0] * 6 + [0, 1]})
    report = slice_report(preds, ["g"])
    assert report.worst == {"g": "a"}
    assert "fpr_gap/g" not in report.metrics  # b has too few negatives to compare


def test_single_class_slice_has_no_macro_f1():
    # Regression (defect 4): a slice of 10 positives, all caught, has F1 1 for the positive class and
    # no negative class at all; the old per-slice macro-F1 scored the absent class 0 and logged 0.5.
    # Every HateCheck functionality is single-class, so worst_slice measured class balance.
    preds = pd.DataFrame(
        {
            "functionality": ["slur_h"] * 10 + ["mixed"] * 12,
            "reference": [1] * 10 + [1, 0] * 6,
            "predicted": [1] * 10 + [1, 1] * 6,  # mixed: 6 TP, 6 FP -> accuracy 0.5
        }
    )
    report = slice_report(preds, ["functionality"])
    m = report.metrics
    assert "slice/functionality/slur_h/macro_f1" not in m
    assert "slice/functionality/slur_h/fpr" not in m  # no negatives
    assert m["slice/functionality/slur_h/accuracy"] == 1.0 and m["slice/functionality/slur_h/recall"] == 1.0
    row = report.table.set_index("value").loc["slur_h"]
    assert np.isnan(row["macro_f1"]) and (row["positives"], row["negatives"]) == (10, 0)
    # The worst slice is the one with the lowest accuracy, not the single-class one.
    assert report.worst == {"functionality": "mixed"}
    assert m["worst_slice/functionality/accuracy"] == 0.5
    # mixed: F1+ = 12/18, F1- = 0 -> macro 1/3; it is the only slice with both classes.
    assert m["worst_slice/functionality/macro_f1"] == pytest.approx(1 / 3)


def test_no_worst_macro_f1_without_a_big_two_class_slice():
    preds = pd.DataFrame({"g": ["a"] * 10 + ["b"] * 10, "reference": [1] * 10 + [0] * 10, "predicted": [1] * 5 + [0] * 15})
    report = slice_report(preds, ["g"])
    assert report.worst == {"g": "a"} and report.metrics["worst_slice/g/accuracy"] == 0.5
    assert "worst_slice/g/macro_f1" not in report.metrics


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=40))
def test_slice_metrics_equal_sklearn_per_slice(rows):
    preds = pd.DataFrame(rows, columns=["g", "reference", "predicted"])
    report = slice_report(preds, ["g"])
    big_accuracy, big_two_class_f1 = {}, {}
    for value, group in preds.groupby("g"):
        y, pred = group["reference"].to_numpy(), group["predicted"].to_numpy()
        key = f"slice/g/{value}"
        assert report.metrics[f"{key}/n"] == len(y)
        assert report.metrics[f"{key}/accuracy"] == pytest.approx(accuracy_score(y, pred))
        if y.any():
            assert report.metrics[f"{key}/recall"] == pytest.approx(recall_score(y, pred))
        else:
            assert f"{key}/recall" not in report.metrics
        if (y == 0).any():
            assert report.metrics[f"{key}/fpr"] == pytest.approx(pred[y == 0].mean())
        else:
            assert f"{key}/fpr" not in report.metrics
        if 0 < y.sum() < len(y):
            f1 = f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)
            assert report.metrics[f"{key}/macro_f1"] == pytest.approx(f1)
            if len(y) >= MIN_SLICE_SIZE:
                big_two_class_f1[value] = f1
        else:
            assert f"{key}/macro_f1" not in report.metrics
        if len(y) >= MIN_SLICE_SIZE:
            big_accuracy[value] = accuracy_score(y, pred)
    if big_accuracy:
        assert report.metrics["worst_slice/g/accuracy"] == pytest.approx(min(big_accuracy.values()))
        assert big_accuracy[report.worst["g"]] == min(big_accuracy.values())
    else:
        assert report.worst == {} and "worst_slice/g/accuracy" not in report.metrics
    if big_two_class_f1:
        assert report.metrics["worst_slice/g/macro_f1"] == pytest.approx(min(big_two_class_f1.values()))
    else:
        assert "worst_slice/g/macro_f1" not in report.metrics
