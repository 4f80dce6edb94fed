"""Runs whole experiments into a real (temporary SQLite) MLflow store and reads them back."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from smo_impact.config import validate
from smo_impact.runner import executors as executors_module
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset


def _config(name="toy", rates=(0.1, 0.4), seeds=(0, 1), dataset="md-agreement"):
    return validate(
        {
            "name": name,
            "dataset": {"name": dataset},
            "arms": {"control": ["aggregate"], "label_noise": ["aggregate", {"noise": {"rate": 0.1}}]},
            "sweep": {"label_noise": {"noise.rate": list(rates)}},
            "seeds": list(seeds),
            "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
        }
    )


@pytest.fixture
def store(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _children(client, parent_id):
    parent = client.get_run(parent_id)
    return client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'", max_results=1000
    )


def test_generated_experiment_logs_every_run(store):
    config = _config()
    result = run_experiment(config, lambda: MlflowTracker(store, "toy"), dataset=make_text_dataset(300))
    client = MlflowClient(store)
    children = _children(client, result.parent_run_id)
    assert len(children) == 2 + 2 * 2
    assert {r.info.status for r in children} == {"FINISHED"}
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"
    noisy = [r for r in children if r.data.tags["smo.arm"] == "label_noise"]
    for run in noisy:
        assert "delta/test/macro_f1" in run.data.metrics
        assert run.data.params["treatment.noise.rate"] in ("0.1", "0.4")
        assert run.data.tags["smo.grid"].startswith("noise.rate=")
    artifacts = {a.path for a in client.list_artifacts(noisy[0].info.run_id)}
    assert {"config", "predictions", "treatment"} <= artifacts


def test_failed_run_is_marked_failed_and_sweep_continues(store, monkeypatch):
    real = executors_module.execute_run

    def flaky(spec, ctx):
        if spec.arm == "label_noise" and spec.seed == 1 and spec.grid == (("noise.rate", 0.4),):
            raise RuntimeError("disk full while training")
        return real(spec, ctx)

    monkeypatch.setattr(executors_module, "execute_run", flaky)
    result = run_experiment(_config(), lambda: MlflowTracker(store, "toy"), dataset=make_text_dataset(300))
    assert result.failures == [("label_noise rate=0.4 s1", "RuntimeError: disk full while training")]
    client = MlflowClient(store)
    statuses = sorted(r.info.status for r in _children(client, result.parent_run_id))
    assert statuses == ["FAILED"] + ["FINISHED"] * 5
    failed = next(r for r in _children(client, result.parent_run_id) if r.info.status == "FAILED")
    assert "disk full" in failed.data.tags["smo.error"]
    assert [a.path for a in client.list_artifacts(failed.info.run_id, "error")] == ["error/traceback.txt"]
    assert client.get_run(result.parent_run_id).info.status == "FAILED"


def test_ctrl_c_marks_runs_killed(store, monkeypatch):
    def interrupted(spec, ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(executors_module, "execute_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(_config(), lambda: MlflowTracker(store, "toy"), dataset=make_text_dataset(300))
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
    # children are written only once computed, so the interrupted sweep leaves just the parent, KILLED
    assert [r.info.status for r in runs] == ["KILLED"]


def test_same_config_and_seed_give_same_numbers(store):
    data = make_text_dataset(300)
    a = run_experiment(_config(), lambda: MlflowTracker(store, "a"), dataset=data)
    b = run_experiment(_config(), lambda: MlflowTracker(store, "b"), dataset=data)
    cols = [c for c in a.runs.columns if c.startswith(("test/", "delta/", "treatment/"))]
    assert np.allclose(a.runs[cols].to_numpy(float), b.runs[cols].to_numpy(float), equal_nan=True)


@pytest.mark.integration
def test_md_agreement_noise_sweep_into_mlflow(mirror, store):
    """The acceptance check of the foundation: a real sweep, read back from the store."""
    config = _config(name="it", rates=(0.1, 0.4), seeds=(0, 1))
    config = config.model_copy(update={"model": config.model.model_copy(update={"params": {**config.model.params, "min_df": 2}})})
    result = run_experiment(config, lambda: MlflowTracker(store, "it"))
    client = MlflowClient(store)
    children = _children(client, result.parent_run_id)
    assert len(children) == 6 and {r.info.status for r in children} == {"FINISHED"}
    for run in children:
        tags = run.data.tags
        assert {"smo.arm", "smo.seed", "smo.grid", "smo.config_hash", "smo.code_version", "smo.data_digest", "smo.run_key"} <= set(tags)
        assert {"test/macro_f1", "test/roc_auc", "test/recall", "test/pr_auc", "treatment/items_kept"} <= set(run.data.metrics)
        assert run.inputs.dataset_inputs[0].dataset.digest == tags["smo.data_digest"]
        if tags["smo.arm"] == "label_noise":
            rate = float(run.data.params["treatment.noise.rate"])
            n = run.data.metrics["treatment/items_kept"]
            assert abs(run.data.metrics["treatment/realized_flip_rate"] - rate) < 4 * np.sqrt(rate * (1 - rate) / n)
            assert "delta/test/macro_f1" in run.data.metrics
    control = np.mean([r.data.metrics["test/macro_f1"] for r in children if r.data.tags["smo.arm"] == "control"])
    noisy40 = np.mean([r.data.metrics["test/macro_f1"] for r in children if r.data.params.get("treatment.noise.rate") == "0.4"])
    assert 0.64 < control < 0.72  # reference figure: 0.68
    assert noisy40 < control - 0.05  # noise at 40% costs macro-F1 (reference: 0.53)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.metrics["summary/control/test/macro_f1_mean"] == pytest.approx(control)
    assert {"summary", "config", "plots"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_sqlite_store_keeps_artifacts_beside_the_database(tmp_path, monkeypatch):
    """Not under the directory the command ran from (MLflow's ./mlruns default)."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    config = _config(rates=(0.1,), seeds=(0,))
    result = run_experiment(config, lambda: MlflowTracker(store, "toy/artifacts here"), dataset=make_text_dataset(200))
    client = MlflowClient(store)
    location = client.get_experiment_by_name("toy/artifacts here").artifact_location
    assert location == (tmp_path / "store" / "mlruns" / "toy_artifacts_here").as_uri()
    assert client.list_artifacts(result.parent_run_id)  # logged, and readable back
    assert list((tmp_path / "store" / "mlruns" / "toy_artifacts_here").iterdir())
    assert list(elsewhere.iterdir()) == []
