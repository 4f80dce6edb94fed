"""Transformer models through the whole runner: dev split, soft labels, curves and model logging."""

import pytest
from mlflow import MlflowClient

from smo_impact.config import validate
from smo_impact.models.features import FeatureCache
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import REPO, make_text_dataset

TINY = {"encoder": "tiny", "max_length": 32, "batch_size": 16, "learning_rate": 1e-2, "epochs": 2, "monitor": "dev/loss"}


def _config(model: dict, uri: str, seeds=(0,)):
    return validate(
        {
            "name": "tiny_runs",
            "dataset": {"name": "md-agreement"},  # replaced by generated data below
            "arms": {
                "control": [{"aggregate": {"method": "majority"}}],
                "soft": [{"aggregate": {"method": "majority", "soft": True}}],
            },
            "seeds": list(seeds),
            "model": model,
            "tracking": {"experiment": "tiny_runs", "uri": uri, "log_models": "all"},  # every run keeps its model
        }
    )


def test_finetune_runs_log_curves_soft_labels_and_the_model(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = _config({"name": "finetune", "params": TINY}, uri)
    result = run_experiment(config, lambda: MlflowTracker(uri, "tiny_runs"), dataset=make_text_dataset(200))
    assert not result.failures and len(result.runs) == 2
    client = MlflowClient(uri)
    for row in result.runs.itertuples():
        run = client.get_run(row.run_id)
        assert run.data.params["model.params.encoder"] == "tiny"
        assert run.data.metrics["train/soft_labels"] == (1.0 if row.arm == "soft" else 0.0)
        assert run.data.metrics["test/macro_f1"] > 0.8
        losses = client.get_metric_history(row.run_id, "train/loss")
        dev = client.get_metric_history(row.run_id, "dev/macro_f1")
        assert len(losses) == run.data.metrics["train/steps"] == 2 * 8  # 120 train items / 16
        assert [m.step for m in dev] == [8, 16]
        files = {a.path for a in client.list_artifacts(row.run_id, "model")}
        assert {"model/model.safetensors", "model/config.json", "model/tokenizer.json"} <= files


def test_embedding_runs_reuse_cached_embeddings_across_seeds_and_experiments(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    dataset = make_text_dataset(200)
    config = _config({"name": "embedding_logreg", "params": {"encoder": "tiny", "max_length": 32}}, uri, seeds=(0, 1))
    cache = FeatureCache(directory=tmp_path / "features")
    first = run_experiment(config, lambda: MlflowTracker(uri, "tiny_runs"), cache=cache, dataset=dataset)
    assert first.cache_stats["features/misses"] == 1 and len(first.runs) == 4
    # Another experiment (different seeds, different head) in a new process: read from disk.
    other = _config({"name": "embedding_logreg", "params": {"encoder": "tiny", "max_length": 32, "C": 0.5}}, uri, seeds=(5,))
    second = run_experiment(other, lambda: MlflowTracker(uri, "tiny_runs"), cache=FeatureCache(directory=tmp_path / "features"), dataset=dataset)
    assert (second.cache_stats["features/misses"], second.cache_stats["features/disk_hits"]) == (0, 1)
    client = MlflowClient(uri)
    assert {a.path for a in client.list_artifacts(second.runs["run_id"].iloc[0], "model")} == {"model/head.skops", "model/model.json"}


@pytest.mark.integration
@pytest.mark.slow
def test_smoke_tiny_experiment_on_the_mirror(mirror, tmp_path):
    from smo_impact.config import load_config

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = load_config(REPO / "experiments" / "smoke_tiny.yaml", [f"tracking.uri={uri}"])
    result = run_experiment(config, lambda: MlflowTracker(uri, config.experiment_name))
    assert not result.failures and set(result.runs["arm"]) == {"control", "label_noise", "soft_labels"}
    assert (result.runs["train/steps"] > 0).all()


def test_fine_tuning_runs_log_system_metrics_and_sklearn_runs_do_not(tmp_path, monkeypatch):
    # Sample every 0.2 s (default 5 s) so that a run of a few seconds gets several samples.
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    dataset = make_text_dataset(200)
    tuned = run_experiment(_config({"name": "finetune", "params": {**TINY, "epochs": 3}}, uri),
                           lambda: MlflowTracker(uri, "tiny_runs"), dataset=dataset)
    fast = run_experiment(_config({"name": "tfidf_logreg", "params": {"min_df": 1}}, uri),
                          lambda: MlflowTracker(uri, "tiny_runs"), dataset=dataset)
    client = MlflowClient(uri)
    for run_id in tuned.runs["run_id"]:
        run = client.get_run(run_id)
        assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(run.data.metrics)
        cpu = client.get_metric_history(run_id, "system/cpu_utilization_percentage")
        assert len(cpu) >= 2 and all(0.0 <= m.value <= 100.0 for m in cpu)
        # Sampled while that run trained: between its start and end, not during the other run.
        assert all(run.info.start_time <= m.timestamp <= run.info.end_time for m in cpu)
        assert run.info.status == "FINISHED"
    for run_id in fast.runs["run_id"]:
        assert not [k for k in client.get_run(run_id).data.metrics if k.startswith("system/")]
