"""A real MLflow tracking server on loopback: concurrent writers, nothing lost; a dead server fails fast."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from smo_impact.errors import TrackingError
from smo_impact.tracking.mlflow_tracker import MlflowTracker, check_server

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300  # start-up takes ~10 s idle, a minute on a loaded 2-core machine
    while True:
        try:
            check_server(uri, timeout=2)
            break
        except TrackingError:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited at start-up")
            if time.time() > deadline:
                proc.kill()
                pytest.fail("mlflow server did not answer /health within 300 s")
            time.sleep(1)
    yield uri
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_unreachable_server_fails_fast_with_one_clear_line():
    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(TrackingError, match=r"cannot reach MLflow tracking server http://127.0.0.1:\d+ within 5 s"):
        MlflowTracker(uri, "x")
    assert time.monotonic() - start < 10


@pytest.mark.integration
def test_concurrent_sweeps_against_a_server_lose_nothing(server, tmp_path, mirror):
    """Two CLI processes, each with a 2-worker local pool, log to one server at the same time."""
    procs = []
    for name in ("remote_a", "remote_b"):
        config = {
            "name": name,
            "dataset": {"name": "md-agreement"},
            "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.1}}]},
            "sweep": {"noisy": {"noise.rate": [0.1, 0.3]}},
            "seeds": [0, 1],
            "execution": {"executor": "local", "workers": 2},
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "MLFLOW_TRACKING_URI": server}
        procs.append(subprocess.Popen([str(BIN / "smo-impact"), "run", str(path)], env=env, cwd=tmp_path,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    client = MlflowClient(server)
    for name in ("remote_a", "remote_b"):
        experiment = client.get_experiment_by_name(name)
        runs = client.search_runs([experiment.experiment_id], "tags.`smo.kind` = 'run'", max_results=100)
        assert len(runs) == 6 and {r.info.status for r in runs} == {"FINISHED"}
        for run in runs:
            assert {"test/macro_f1", "test/roc_auc", "treatment/items_kept"} <= set(run.data.metrics)
            assert [a.path for a in client.list_artifacts(run.info.run_id, "predictions")] == ["predictions/test.parquet", "predictions/test.preview.csv"]
        parent = client.search_runs([experiment.experiment_id], "tags.`smo.kind` = 'experiment'")[0]
        assert parent.info.status == "FINISHED"
        assert parent.data.metrics["runs/finished"] == 6
