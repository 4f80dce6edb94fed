"""The CI smoke experiment can fail (issue 19): a model that learned nothing fails its gates."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from tests.test_cli import REPO, cli

SMOKE = str(REPO / "experiments" / "smoke_tiny.yaml")


def _env(tmp_path):
    # One torch thread: the tiny model gains nothing from more, and a busy CPU makes them slow.
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "SMO_IMPACT_TORCH_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.mark.integration
def test_smoke_fails_its_gate_when_the_model_is_broken(mirror, tmp_path):
    # A learning rate of 1e-9 leaves the random weights as they were: the model ranks at chance.
    result = cli("run", SMOKE, "--gate", "--set", "model.params.learning_rate=1e-9", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 3, result.stderr[-3000:]
    out = " ".join(result.stdout.split())
    for arm in ("control", "label_noise", "soft_labels"):
        assert f"gate {arm} [-]: failed: test/roc_auc 0." in out
    assert "gate failed (see the gate lines above)" in result.stderr
    client = MlflowClient(_env(tmp_path)["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("smoke_tiny").experiment_id
    parent = client.search_runs([experiment], "tags.`smo.kind` = 'experiment'")[0]
    assert parent.data.tags["smo.gate"] == "failed"
    assert "no arm passed its gates" in parent.data.tags["smo.takeaway"]
    # Untrained, it flags nothing at threshold 0.5: each run is tagged and named in the warning.
    children = client.search_runs([experiment], "tags.`smo.kind` = 'run'")
    if all(r.data.metrics["test/positive_rate"] in (0.0, 1.0) for r in children):
        assert {r.data.tags.get("smo.degenerate") for r in children} == {"true"}
        assert "3 run(s) predict one class for every item" in " ".join(result.stderr.split())


@pytest.mark.integration
@pytest.mark.slow
def test_smoke_passes_its_gate_with_the_shipped_model(mirror, tmp_path):
    result = cli("run", SMOKE, "--gate", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = " ".join(result.stdout.split())
    assert all(f"gate {arm} [-]: passed" in out for arm in ("control", "label_noise", "soft_labels"))
    assert "predict one class" not in result.stderr
