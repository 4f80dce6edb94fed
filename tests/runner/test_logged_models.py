"""Trained models as MLflow models (issue 19.4): which runs keep theirs, and that they serve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from smo_impact.config import validate
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset


def _config(log_models=None, model="tfidf_logreg", params=None):
    return validate({
        "name": "models", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.3}}]},
        "seeds": [0, 1], "model": {"name": model, "params": params or {"min_df": 1}},
        "evaluation": {"bootstrap": 0},
        "tracking": {} if log_models is None else {"log_models": log_models},
    })


def _runs(store, result):
    client = MlflowClient(store)
    return {client.get_run(r).info.run_name: client.get_run(r) for r in result.runs["run_id"]}


def test_log_models_control_keeps_the_control_models_and_they_serve_the_logged_scores(tmp_path):
    import mlflow.pyfunc

    assert _config().tracking.log_models == "none"  # the default: keeping a TF-IDF model costs ~2/3 of its run
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data = make_text_dataset(300)
    result = run_experiment(_config("control"), lambda: MlflowTracker(store, "models"), dataset=data)
    runs = _runs(store, result)
    assert sorted(n for n, r in runs.items() if "smo.model_uri" in r.data.tags) == ["control s0", "control s1"]
    client = MlflowClient(store)
    assert client.list_artifacts(runs["noisy s0"].info.run_id, "model") == []
    control = runs["control s0"]
    # The Models column of the runs table lists the run's logged model.
    assert [o.model_id for o in control.outputs.model_outputs] == [control.data.tags["smo.model_uri"].split("/")[-1]]
    assert control.data.metrics["time/log_model_seconds"] > 0
    # Served from raw text, the model gives the scores the run logged for its test items.
    model = mlflow.pyfunc.load_model(control.data.tags["smo.model_uri"])
    assert model.metadata.get_input_schema().input_names() == ["text"]
    logged = pd.read_parquet(client.download_artifacts(control.info.run_id, "predictions/test.parquet", str(tmp_path)))
    texts = data.items.set_index("task").loc[logged["task"], ["text"]].reset_index(drop=True)
    served = np.asarray(model.predict(texts))[:, 1]
    np.testing.assert_allclose(served, logged["score"].to_numpy(), rtol=1e-5, atol=1e-6)


def test_log_models_all_and_none(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data = make_text_dataset(200)
    every = run_experiment(_config("all"), lambda: MlflowTracker(store, "all"), dataset=data)
    assert all("smo.model_uri" in r.data.tags for r in _runs(store, every).values())
    none = run_experiment(_config("none"), lambda: MlflowTracker(store, "none"), dataset=data)
    for run in _runs(store, none).values():
        assert "smo.model_uri" not in run.data.tags and not run.outputs.model_outputs
        assert MlflowClient(store).list_artifacts(run.info.run_id, "model") == []


def test_embedding_logreg_logs_its_head_on_the_embeddings(tmp_path):
    import mlflow.pyfunc

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = _config("control", model="embedding_logreg", params={"encoder": "tiny", "max_length": 32})
    result = run_experiment(config, lambda: MlflowTracker(store, "emb"), dataset=make_text_dataset(160))
    control = _runs(store, result)["control s0"]
    model = mlflow.pyfunc.load_model(control.data.tags["smo.model_uri"])
    probabilities = np.asarray(model.predict(np.zeros((2, 64), dtype=np.float32)))
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert {a.path for a in MlflowClient(store).list_artifacts(control.info.run_id, "model")} == {"model/head.skops", "model/model.json"}


@pytest.mark.parametrize("log_models", ["all", "control"])
def test_register_names_the_best_arm(tmp_path, log_models):
    from smo_impact.runner.logged_models import best_model
    from smo_impact.errors import ConfigError

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_experiment(_config(log_models), lambda: MlflowTracker(store, "reg"), dataset=make_text_dataset(200))
    best = result.summary.loc[result.summary["test/macro_f1_mean"].idxmax(), "arm"]
    if log_models == "control" and best != "control":
        with pytest.raises(ConfigError, match=r"--register: the best arm \(noisy, mean test/macro_f1 0\.\d+\) has no logged MLflow model"):
            best_model(result.summary, result.runs, "test")
        return
    label, run_id, uri = best_model(result.summary, result.runs, "test")
    runs = result.runs[result.runs["arm"] == best]
    assert label == best and run_id == runs.loc[runs["test/macro_f1"].idxmax(), "run_id"]
    version = MlflowTracker(store, "reg").register_model(uri, "safety-clf")
    assert version == "1"
    assert MlflowClient(store).get_model_version("safety-clf", "1").run_id == run_id
