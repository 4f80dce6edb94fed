import pandas as pd
import pytest

from smo_impact.evaluation.slices import slice_report


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
    # men: TP 5 FP 1 FN 5 TN 9 -> F1+ = 10/16, F1- = 18/24; women: F1+ = 20/23, F1- = 14/17
    assert m["slice/target/men/macro_f1"] == pytest.approx((10 / 16 + 18 / 24) / 2)
    assert report.worst == {"target": "men"}
    assert m["worst_slice/target/macro_f1"] == pytest.approx((10 / 16 + 18 / 24) / 2)
    assert list(report.table["value"]) == ["men", "women"]


def test_small_slices_are_not_named_worst():
    preds = pd.DataFrame({"g": ["a"] * 12 + ["b"] * 2, "reference": [1, 0] * 7, "predicted": [1, 0] * 6 + [0, 1]})
    report = slice_report(preds, ["g"])
    assert report.worst == {"g": "a"}
    assert "fpr_gap/g" not in report.metrics  # b has too few negatives to compare
