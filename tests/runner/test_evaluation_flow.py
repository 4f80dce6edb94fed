"""Benchmarks, paired regressions and gates through a whole experiment, read back from MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from smo_impact.config import ExperimentConfig, validate
from smo_impact.data.schema import AnnotationSet
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset


def _config(gates=None, benchmarks=None, seeds=(0, 1)):
    return validate(
        {
            "name": "evalflow",
            "dataset": {"name": "md-agreement"},
            "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.35}}]},
            "seeds": list(seeds),
            "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
            "evaluation": {"bootstrap": 200, "benchmarks": benchmarks or [{"name": "dev_view", "split": "dev"}],
                           "gates": gates or {}},
        }
    )


@pytest.fixture
def store(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _children(client, parent_id):
    parent = client.get_run(parent_id)
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")


def _frame(client, run_id, path, tmp_path):
    return pd.read_parquet(client.download_artifacts(run_id, path, str(tmp_path)))


def test_regressions_are_paired_logged_and_gated(store, tmp_path):
    gates = {"max_drop": {"test/recall": 0.0}, "max_new_false_negatives": 0}
    result = run_experiment(_config(gates), lambda: MlflowTracker(store, "evalflow"), dataset=make_text_dataset(400))
    client = MlflowClient(store)
    runs = {(r.data.tags["smo.arm"], r.data.tags["smo.seed"]): r for r in _children(client, result.parent_run_id)}
    noisy, control = runs[("noisy", "0")], runs[("control", "0")]
    m = noisy.data.metrics
    for name in ("test/recall_at_fpr_0.01", "test/ece", "test/soft_cross_entropy", "test/macro_f1_ci_low",
                 "dev_view/macro_f1", "delta/dev_view/macro_f1", "regression/dev_view/new_false_negatives",
                 "delta/test/macro_f1_ci_high", "regression/test/mcnemar_pvalue", "test/slice/domain/a/accuracy"):
        assert name in m, name

    # The regression counts are what the two runs' logged predictions say, item by item.
    before = _frame(client, control.info.run_id, "predictions/test.parquet", tmp_path / "c")
    after = _frame(client, noisy.info.run_id, "predictions/test.parquet", tmp_path / "t").set_index("task").loc[before["task"]]
    new_fn = (before["reference"].to_numpy() == 1) & (before["predicted"].to_numpy() == 1) & (after["predicted"].to_numpy() == 0)
    new_fp = (before["reference"].to_numpy() == 0) & (before["predicted"].to_numpy() == 0) & (after["predicted"].to_numpy() == 1)
    assert m["regression/test/new_false_negatives"] == new_fn.sum() > 0
    assert m["regression/test/new_false_positives"] == new_fp.sum()
    assert m["delta/test/recall"] == pytest.approx(m["test/recall"] - control.data.metrics["test/recall"])
    regressed = _frame(client, noisy.info.run_id, "regression/regressed_items.parquet", tmp_path / "r")
    test_items = regressed[regressed["benchmark"] == "test"]
    assert len(test_items) == new_fn.sum() + new_fp.sum()
    assert {"text", "domain", "control_score", "treatment_score", "regression"} <= set(regressed.columns)

    # Gates: every noisy run fails, the control is not gated, and the arm verdict is on the parent.
    assert noisy.data.tags["smo.gate"] == "failed" and "new false negatives > max 0" in noisy.data.tags["smo.gate_reasons"]
    assert "smo.gate" not in control.data.tags
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["smo.gate"] == "failed" and parent.data.tags["smo.gate.noisy"] == "failed"
    assert result.gate_failed and result.gates.iloc[0]["seeds"] == 2
    assert result.summary.set_index("arm").loc["noisy", "gate"] == "failed"
    assert "delta/test/macro_f1_ttest_p" in result.summary.columns  # t-test across the two seeds
    assert "gates.csv" in {a.path.split("/")[-1] for a in client.list_artifacts(parent.info.run_id, "summary")}
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/regressions_test.png", "plots/regressions_dev_view.png"} <= plots


def test_generous_gates_pass(store):
    gates = {"max_drop": {"test/recall": 1.0}, "max_new_false_negatives": 10_000}
    result = run_experiment(_config(gates, seeds=(0,)), lambda: MlflowTracker(store, "ok"), dataset=make_text_dataset(300))
    assert not result.gate_failed and list(result.gates["gate"]) == ["passed"]
    assert MlflowClient(store).get_run(result.parent_run_id).data.tags["smo.gate"] == "passed"


def test_same_seed_gives_same_intervals_and_regressions(store):
    data = make_text_dataset(300)
    a = run_experiment(_config(seeds=(0,)), lambda: MlflowTracker(store, "a"), dataset=data)
    b = run_experiment(_config(seeds=(0,)), lambda: MlflowTracker(store, "b"), dataset=data)
    cols = [c for c in a.runs.columns if c.startswith(("test/", "delta/", "regression/"))]
    assert any(c.endswith("_ci_low") for c in cols)
    assert np.allclose(a.runs[cols].to_numpy(float), b.runs[cols].to_numpy(float), equal_nan=True)


def test_functional_suite_is_scored_in_every_run(store, tmp_path):
    suite = AnnotationSet(
        "hatecheck",
        pd.DataFrame({
            "task": ["1", "2", "3", "4"],
            "text": ["you stupid idiot", "what a lovely kind day", "people hate trash", "thanks friendly people"],
            "split": "test",
            "functionality": ["derog_h", "pos_nh", "derog_h", "pos_nh"],
            "target_ident": ["women", "women", "gay people", None],
            "label_gold": ["hateful", "non-hateful", "hateful", "non-hateful"],
        }),
        pd.DataFrame({"task": ["1", "2", "3", "4"], "worker": "a", "label": [1, 0, 1, 0]}),
    )
    # 'hatecheck' may not be in the catalog yet, so the spec is built without the registry check.
    raw = _config().to_dict() | {"seeds": [0]}
    raw["evaluation"]["benchmarks"] = [{"name": "hatecheck", "suite": "hatecheck"}]
    config = ExperimentConfig.model_validate(raw)
    result = run_experiment(config, lambda: MlflowTracker(store, "suite"), dataset=make_text_dataset(300),
                            suites={"hatecheck": suite})
    assert result.failures == []
    control = result.runs.set_index("arm").loc["control"]
    # These texts are made of the generator's own words: a working model passes all four cases.
    assert control["hatecheck/accuracy"] == 1.0
    assert control["hatecheck/functionality/derog_h/accuracy"] == 1.0
    assert control["hatecheck/target/gay_people/accuracy"] == 1.0
    assert "regression/hatecheck/new_false_negatives" in result.runs.columns
    client = MlflowClient(store)
    assert "plots/functional_hatecheck.png" in {a.path for a in client.list_artifacts(result.parent_run_id, "plots")}
    noisy = result.runs.set_index("arm").loc["noisy", "run_id"]
    failed = {a.path for a in client.list_artifacts(noisy, "functional")}
    assert {"functional/hatecheck_failed_cases.parquet", "functional/hatecheck_per_functionality.csv"} <= failed


@pytest.mark.slow  # three sweeps into one store: ~40 s on 2 busy cores
def test_resumed_sweep_compares_new_runs_with_the_stored_control(store, tmp_path):
    """A treatment computed after its control was reused from the store is still paired item by item."""
    data = make_text_dataset(300)
    first = validate(_config(seeds=(0,)).to_dict())
    run_experiment(first, lambda: MlflowTracker(store, "resume"), dataset=data)
    raw = first.to_dict()
    raw["arms"]["harsher"] = ["aggregate", {"noise": {"rate": 0.45}}]
    second = run_experiment(validate(raw), lambda: MlflowTracker(store, "resume"), dataset=data)
    assert second.reused == 2 and second.computed == 1
    client = MlflowClient(store)
    row = second.runs.set_index("arm").loc["harsher"]
    control_id = second.runs.set_index("arm").loc["control", "run_id"]
    before = _frame(client, control_id, "predictions/test.parquet", tmp_path / "c")
    after = _frame(client, row["run_id"], "predictions/test.parquet", tmp_path / "t").set_index("task").loc[before["task"]]
    new_fn = (before["reference"].to_numpy() == 1) & (before["predicted"].to_numpy() == 1) & (after["predicted"].to_numpy() == 0)
    assert row["regression/test/new_false_negatives"] == new_fn.sum()
    assert "delta/test/macro_f1_ci_low" in second.runs.columns
