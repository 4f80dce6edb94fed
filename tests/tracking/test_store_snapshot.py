"""What a small sweep leaves in the store, compared with a snapshot (issue 16, target 2).

A SNAPSHOT, not a check of correctness: ``store_snapshot.json`` was pinned from the code as it was
before the per-run logging was batched (commit 0831135), so that the batched logging is shown to
write the same runs, params, tags, metrics and artifact paths, and the same metric values to 1e-9.
Whether those values are right is tested elsewhere (tests/runner/test_correct_numbers.py, the
metric tests). Regenerate it only for a change that means to alter the store's contents:

    SMO_IMPACT_PIN_SNAPSHOT=1 pytest tests/tracking/test_store_snapshot.py
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from smo_impact.config import validate
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset

SNAPSHOT = Path(__file__).with_name("store_snapshot.json")
# Tags and metrics that differ between two identical sweeps: ids, times, host, code version.
VOLATILE_TAGS = {"mlflow.parentRunId", "mlflow.user", "mlflow.source.name", "mlflow.source.type",
                 "mlflow.source.git.commit", "smo.code_version", "smo.host", "smo.pid", "smo.model_uri",
                 "mlflow.log-model.history", "mlflow.runColor"}


def _config():
    return validate({
        "name": "snap", "description": "Does label noise hurt?",
        "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "label_noise": ["aggregate", {"noise": {"rate": 0.1}}]},
        "sweep": {"label_noise": {"noise.rate": [0.1, 0.4]}},
        "seeds": [0, 1],
        "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
        "evaluation": {"bootstrap": 50, "gates": {"max_drop": {"test/macro_f1": 0.05}}},
        "tracking": {"log_models": "control"},
    })


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    out = []
    for entry in client.list_artifacts(run_id, path):
        out.extend(_artifacts(client, run_id, entry.path) if entry.is_dir else [entry.path])
    return sorted(out)


def snapshot(store: str, parent_id: str, folder: str) -> dict:
    """The store's contents by run name: params, tags, metrics (not timings), artifact paths."""
    client = MlflowClient(store)
    parent = client.get_run(parent_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")

    def clean(text: str) -> str:
        return text.replace(folder, "<store>")

    out = {}
    for run in [parent, *children]:
        out[run.info.run_name] = {
            "status": run.info.status,
            "params": {k: clean(v) for k, v in sorted(run.data.params.items())},
            "tags": {k: clean(v) for k, v in sorted(run.data.tags.items()) if k not in VOLATILE_TAGS},
            "metrics": {k: v for k, v in sorted(run.data.metrics.items()) if not k.startswith("time/")},
            "artifacts": _artifacts(client, run.info.run_id),
            "model_uri_tagged": "smo.model_uri" in run.data.tags,
        }
    return out


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snap")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    result = run_experiment(_config(), lambda: MlflowTracker(store, "snap"), dataset=make_text_dataset(300))
    return snapshot(store, result.parent_run_id, str(folder))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9


def test_store_contents_match_the_pinned_snapshot(swept):
    if os.environ.get("SMO_IMPACT_PIN_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(swept, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(SNAPSHOT.read_text())
    assert sorted(swept) == sorted(pinned)
    for name, run in pinned.items():
        now = swept[name]
        assert now["status"] == run["status"], name
        assert now["params"] == run["params"], name
        assert now["tags"] == run["tags"], name
        assert now["artifacts"] == run["artifacts"], name
        assert now["model_uri_tagged"] == run["model_uri_tagged"], name


def test_metrics_match_the_pinned_snapshot_to_1e_9(swept):
    pinned = json.loads(SNAPSHOT.read_text())
    for name, run in pinned.items():
        now = swept[name]["metrics"]
        assert sorted(now) == sorted(run["metrics"]), name
        different = {k: (v, now[k]) for k, v in run["metrics"].items() if not _same(v, now[k])}
        assert not different, (name, different)
