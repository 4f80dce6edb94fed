import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_1samp

from smo_impact.config import GateSpec
from smo_impact.evaluation.gates import across_seeds, arm_verdicts, run_verdict


def _metrics(delta_recall, new_fn, p=0.001, delta_fpr=0.0):
    # p is both the drop's paired-bootstrap p-value and McNemar's: each gate reads its own.
    return {
        "delta/test/recall": delta_recall,
        "delta/test/recall_p": p,
        "delta/test/fpr": delta_fpr,
        "regression/test/new_false_negatives": new_fn,
        "regression/test/fixed_false_negatives": 0.0,
        "regression/test/new_false_positives": 0.0,
        "regression/test/mcnemar_pvalue": p,
    }


def test_run_gate_fails_and_passes_as_configured():
    gates = GateSpec(max_drop={"test/recall": 0.02}, max_new_false_negatives=25)
    ok = run_verdict(_metrics(-0.01, 25), gates, ["test"])
    assert ok.passed and ok.tags() == {"smo.gate": "passed", "smo.gate_reasons": "-"}
    bad = run_verdict(_metrics(-0.05, 26), gates, ["test"])
    assert not bad.passed
    assert bad.reasons == [
        "test/recall dropped 0.0500 > max_drop 0.02 (paired bootstrap p=0.001)",
        "test: 26 new false negatives > max 25 (McNemar p=0.001)",
    ]
    assert bad.tags()["smo.gate"] == "failed"


def test_lower_is_better_metrics_drop_when_they_rise():
    gates = GateSpec(max_drop={"test/fpr": 0.01})
    assert not run_verdict(_metrics(0.0, 0, delta_fpr=0.03), gates, ["test"]).passed
    assert run_verdict(_metrics(0.0, 0, delta_fpr=-0.03), gates, ["test"]).passed


def test_require_significance_ignores_an_insignificant_violation():
    gates = GateSpec(max_drop={"test/recall": 0.02}, max_new_false_negatives=5, require_significance=True)
    assert run_verdict(_metrics(-0.05, 30, p=0.2), gates, ["test"]).passed
    assert not run_verdict(_metrics(-0.05, 30, p=0.01), gates, ["test"]).passed


def test_missing_delta_fails_the_gate():
    verdict = run_verdict({}, GateSpec(max_drop={"test/roc_auc": 0.01}), ["test"])
    assert verdict.reasons == ["test/roc_auc: no delta vs control to check max_drop 0.01"]


def test_across_seeds_matches_scipy():
    values = np.array([-0.03, -0.05, -0.04])
    mean, std, p = across_seeds(values)
    assert mean == pytest.approx(-0.04) and std == pytest.approx(0.01)
    assert p == pytest.approx(ttest_1samp(values, 0).pvalue)
    assert np.isnan(across_seeds([0.1, 0.1])[2]) and np.isnan(across_seeds([0.1])[1])


def test_arm_verdicts_use_the_mean_over_seeds():
    runs = pd.DataFrame(
        {
            "arm": ["control"] * 3 + ["noisy"] * 3 + ["mild"] * 3,
            "grid": ["-"] * 9,
            "seed": [0, 1, 2] * 3,
            "delta/test/recall": [np.nan] * 3 + [-0.03, -0.05, -0.04] + [0.01, -0.03, 0.0],
            "regression/test/new_false_negatives": [np.nan] * 3 + [30, 40, 50] + [3, 4, 5],
            "regression/test/fixed_false_negatives": [np.nan] * 3 + [1, 2, 3] + [4, 4, 4],
            "regression/test/mcnemar_pvalue": [np.nan] * 3 + [0.01] * 3 + [0.5] * 3,
        }
    )
    gates = GateSpec(max_drop={"test/recall": 0.02}, max_new_false_negatives=25)
    table = arm_verdicts(runs, gates, ["test"], "control").set_index("arm")
    assert list(table.index) == ["noisy", "mild"]
    assert table.loc["noisy", "gate"] == "failed" and table.loc["mild", "gate"] == "passed"
    assert table.loc["noisy", "drop/test/recall_mean"] == pytest.approx(0.04)
    assert table.loc["noisy", "test/new_false_negatives_mean"] == pytest.approx(40)
    # the net regression (new - fixed: 29, 38, 47) is what the t-test across seeds sees
    assert table.loc["noisy", "test/new_false_negatives_p"] == pytest.approx(ttest_1samp([29, 38, 47], 0).pvalue)
    assert "mean drop of test/recall 0.0400 > 0.02" in table.loc["noisy", "reasons"]
    significant = GateSpec(max_drop={"test/recall": 0.005}, require_significance=True)
    table = arm_verdicts(runs, significant, ["test"], "control").set_index("arm")
    # mild's mean drop 0.0067 > 0.005, but across seeds it is not significant
    assert table.loc["mild", "gate"] == "passed" and table.loc["noisy", "gate"] == "failed"


def test_missing_paired_comparison_fails_a_count_gate():
    verdict = run_verdict({"delta/test/n": 0.0}, GateSpec(max_new_false_negatives=3), ["test"])
    assert verdict.reasons == [
        "test: no paired comparison to count new false negatives (the treatment run's predictions were not "
        "logged: tracking.log_predictions is false; rerun with --force)"
    ]


def test_absolute_bounds_judge_every_arm_on_its_worst_run():
    # Issue 19: a smoke run whose model ranks at chance, or predicts one class, must fail --gate,
    # the control too (it has no delta to drop).
    runs = pd.DataFrame({
        "arm": ["control", "control", "noisy", "noisy", "flat"],
        "grid": ["-", "-", "rate=0.2", "rate=0.2", "-"],
        "test/roc_auc": [0.80, 0.55, 0.70, 0.75, 0.90],
        "test/positive_rate": [0.2, 0.1, 0.3, 0.2, 0.0],
        "delta/test/roc_auc": [np.nan, np.nan, -0.1, 0.2, 0.2],
    })
    gates = GateSpec(min={"test/roc_auc": 0.6, "test/positive_rate": 0.01}, max={"test/positive_rate": 0.99})
    table = arm_verdicts(runs, gates, ["test"], "control").set_index("arm")
    assert table["gate"].to_dict() == {"control": "failed", "noisy": "passed", "flat": "failed"}
    assert table.loc["control", "reasons"] == "test/roc_auc 0.5500 < min 0.6 in the worst of 2 seeds"
    assert table.loc["flat", "reasons"] == "test/positive_rate 0.0000 < min 0.01"
    assert table.loc["noisy", "min/test/roc_auc"] == 0.70 and table.loc["flat", "max/test/positive_rate"] == 0.0
    # A bound on a metric a run did not log is a failure, not a silent pass.
    missing = arm_verdicts(runs.drop(columns="test/roc_auc"), GateSpec(min={"test/roc_auc": 0.6}), ["test"], "control")
    assert set(missing["gate"]) == {"failed"}
    assert missing["reasons"].iloc[0] == "test/roc_auc: not logged by 2 run(s), min 0.6 unchecked"
    # Without bounds the control is not judged (as before).
    assert "control" not in set(arm_verdicts(runs, GateSpec(max_drop={"test/roc_auc": 0.5}), ["test"], "control")["arm"])


def test_bounds_name_a_benchmark_metric():
    from smo_impact.config import validate
    from smo_impact.errors import ConfigError

    raw = {"name": "b", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]},
           "evaluation": {"gates": {"min": {"dev/roc_auc": 0.6, "test/roc_auc": 0.6}}}}
    with pytest.raises(ConfigError, match=r"evaluation\.gates\.min\.dev/roc_auc: name a benchmark metric "
                                          r"'<namespace>/<metric>' with namespace one of test, e\.g\. test/roc_auc"):
        validate(raw)
    raw["evaluation"]["gates"]["min"].pop("dev/roc_auc")
    assert validate(raw).evaluation.gates.active
