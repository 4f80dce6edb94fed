"""Gate significance comes from a test of the gated quantity itself (issue "Correct numbers", defect 7).

A metric's drop is significant by the paired-bootstrap p-value of its own delta; McNemar's test of
paired correctness only speaks to error counts. The metric dicts below are written by hand.
"""

from __future__ import annotations

import pandas as pd
import pytest

from smo_impact.config import GateSpec
from smo_impact.evaluation.gates import arm_verdicts, run_verdict

GATES = GateSpec(max_drop={"test/recall": 0.01}, require_significance=True, alpha=0.05)


def test_a_recall_drop_is_judged_by_its_bootstrap_p_not_by_mcnemar():
    # McNemar on overall correctness is "significant", the recall delta's own test is not.
    noisy = {"delta/test/recall": -0.05, "delta/test/recall_p": 0.40, "regression/test/mcnemar_pvalue": 0.001}
    assert run_verdict(noisy, GATES, ["test"]).passed
    # ... and the other way round: McNemar sees no change in error rate, the recall drop is real.
    real = {"delta/test/recall": -0.05, "delta/test/recall_p": 0.002, "regression/test/mcnemar_pvalue": 0.9}
    verdict = run_verdict(real, GATES, ["test"])
    assert not verdict.passed
    assert verdict.reasons == ["test/recall dropped 0.0500 > max_drop 0.01 (paired bootstrap p=0.002)"]


def test_new_error_counts_keep_mcnemar():
    gates = GateSpec(max_new_false_negatives=5, require_significance=True)
    metrics = {"regression/test/new_false_negatives": 9.0, "regression/test/mcnemar_pvalue": 0.01,
               "delta/test/recall_p": 0.9}
    assert run_verdict(metrics, gates, ["test"]).reasons == ["test: 9 new false negatives > max 5 (McNemar p=0.01)"]


def test_arm_fallback_with_one_seed_uses_each_runs_bootstrap_p():
    runs = pd.DataFrame([{"arm": "noisy", "grid": "-", "seed": 0, "delta/test/recall": -0.05,
                          "delta/test/recall_p": 0.40, "regression/test/mcnemar_pvalue": 0.001}])
    table = arm_verdicts(runs, GATES, ["test"], "control")
    assert table.iloc[0]["gate"] == "passed"
    runs.loc[0, "delta/test/recall_p"] = 0.01
    table = arm_verdicts(runs, GATES, ["test"], "control")
    assert table.iloc[0]["gate"] == "failed"
    assert "paired bootstrap p<alpha in every seed" in table.iloc[0]["reasons"]


def test_validate_refuses_significance_on_a_metric_without_a_paired_test():
    from smo_impact.config import validate
    from smo_impact.errors import ConfigError

    with pytest.raises(ConfigError, match=r"evaluation.gates.max_drop.test/recall_at_fpr_0.01: require_significance "
                                          r"needs a metric with a paired bootstrap test"):
        validate({"name": "x", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]},
                  "evaluation": {"gates": {"max_drop": {"test/recall_at_fpr_0.01": 0.01}, "require_significance": True}}})
