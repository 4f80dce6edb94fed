"""What the MLflow UI shows of a sweep (issue 19): short run names, the parent's description and
tables, no empty params, degenerate runs flagged, Parquet previews."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from mlflow import MlflowClient

from smo_impact.config import validate
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset


def _config(C=4.0, **evaluation):
    return validate({
        "name": "ui", "description": "Does label noise hurt?",
        "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "label_noise": ["aggregate", {"noise": {"rate": 0.1}}]},
        "sweep": {"label_noise": {"noise.rate": [0.1, 0.3, 0.5]}},
        "seeds": [0, 1],
        "model": {"name": "tfidf_logreg", "params": {"min_df": 1, "C": C}},
        "evaluation": {"bootstrap": 50, **evaluation},
    })


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    store = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'mlflow.db'}"
    result = run_experiment(_config(gates={"min": {"test/roc_auc": 0.6}}), lambda: MlflowTracker(store, "ui"),
                            dataset=make_text_dataset(300))
    return store, result


def _children(client, parent_id):
    experiment = client.get_run(parent_id).info.experiment_id
    return client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_id}'", max_results=100)


def test_child_runs_have_short_names_with_what_differs_first(swept):
    store, result = swept
    names = sorted(r.info.run_name for r in _children(MlflowClient(store), result.parent_run_id))
    assert names == ["control s0", "control s1", *(f"label_noise rate={r} s{s}" for r in (0.1, 0.3, 0.5) for s in (0, 1))]


def test_parent_description_is_the_takeaway_and_the_summary_table(swept):
    store, result = swept
    parent = MlflowClient(store).get_run(result.parent_run_id)
    note = parent.data.tags["mlflow.note.content"]
    # The takeaway comes from the noise fit: a slope over the swept rate, in points per grid step.
    assert re.fullmatch(r"Each \+0\.2 of rate \(label_noise\) costs \d+\.\d points of macro-F1 \(95% CI \d+\.\d to \d+\.\d, R² 0\.\d\d\); "
                        r"(every arm passed its gates \(4 checked\)|\d of 4 arms failed a gate: .*)\.", result.takeaway)
    assert note.startswith(f"**{result.takeaway}**\n\nDoes label noise hurt?\n")
    assert parent.data.tags["smo.takeaway"] == result.takeaway
    assert "| arm | grid | n | macro-F1 | ROC-AUC |" in note and "| label_noise | noise.rate=0.3 | 2 |" in note
    assert "`smo-impact report ui`" in note


def test_summary_and_slices_are_ui_tables(swept):
    store, result = swept
    client = MlflowClient(store)
    parent = client.get_run(result.parent_run_id)
    tables = json.loads(parent.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "summary/summary_table.json", "type": "table"} in tables
    assert {"path": "summary/slices_table.json", "type": "table"} in tables
    with open(client.download_artifacts(result.parent_run_id, "summary/summary_table.json")) as handle:
        summary = json.load(handle)
    assert summary["columns"][:4] == ["arm", "grid", "n", "macro-F1"]
    assert [row[:2] for row in summary["data"]] == [["control", "-"], *[["label_noise", f"noise.rate={r}"] for r in (0.1, 0.3, 0.5)]]
    with open(client.download_artifacts(result.parent_run_id, "summary/slices_table.json")) as handle:
        slices = pd.DataFrame(**json.load(handle))
    assert list(slices.columns[:5]) == ["arm", "grid", "benchmark", "column", "slice"]
    # Checked against the children's own per-slice scalars: the mean over the two seeds.
    runs = [r for r in _children(client, result.parent_run_id) if r.data.tags["smo.arm"] == "control"]
    value = slices[(slices["arm"] == "control") & (slices["column"] == "domain")].iloc[0]
    metric = f"test/slice/domain/{value['slice']}/accuracy"
    assert value["accuracy"] == pytest.approx(sum(r.data.metrics[metric] for r in runs) / 2)


def test_no_param_is_empty_or_none(swept):
    store, result = swept
    client = MlflowClient(store)
    for run in [client.get_run(result.parent_run_id), *_children(client, result.parent_run_id)]:
        empty = {k: v for k, v in run.data.params.items() if v in ("", "[]", "{}", "None")}
        assert not empty, (run.info.run_name, empty)


def test_parquet_artifacts_have_a_csv_preview(swept):
    store, result = swept
    client = MlflowClient(store)
    run = next(r for r in _children(client, result.parent_run_id) if r.info.run_name == "label_noise rate=0.5 s0")
    for folder, name in (("predictions", "test"), ("regression", "regressed_items"), ("treatment", "changes")):
        paths = {a.path for a in client.list_artifacts(run.info.run_id, folder)}
        assert {f"{folder}/{name}.parquet", f"{folder}/{name}.preview.csv"} <= paths, paths
    preview = pd.read_csv(client.download_artifacts(run.info.run_id, "predictions/test.preview.csv"))
    full = pd.read_parquet(client.download_artifacts(run.info.run_id, "predictions/test.parquet"))
    assert len(preview) == min(50, len(full)) and list(preview["task"]) == list(full["task"].head(50))


def test_a_model_predicting_one_class_is_tagged_and_fails_a_floor(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # C tiny: the logistic regression shrinks to its intercept and predicts the majority class everywhere.
    config = _config(C=1e-6, gates={"min": {"test/positive_rate": 0.01}})
    config = config.model_copy(update={"sweep": {"label_noise": {"noise.rate": [0.1]}}, "seeds": [0]})
    result = run_experiment(config, lambda: MlflowTracker(store, "flat"), dataset=make_text_dataset(200))
    assert result.degenerate == ["control s0", "label_noise rate=0.1 s0"]
    client = MlflowClient(store)
    for run in _children(client, result.parent_run_id):
        assert run.data.tags["smo.degenerate"] == "true"
        assert run.data.tags["smo.degenerate_reason"] == "test: every item predicted 0"
    assert "2 run(s) predict a single class for every item (control s0, label_noise rate=0.1 s0)" in result.takeaway
    assert "no arm passed its gates: control (test/positive_rate 0.0000 < min 0.01)" in result.takeaway
    assert result.gate_failed
