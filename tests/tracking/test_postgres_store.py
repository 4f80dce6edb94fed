"""A real PostgreSQL tracking store: a throwaway cluster (initdb + pg_ctl on loopback), a sweep on
a 2-worker pool logging into it directly (an SQLAlchemy URI, as a team's `mlflow server
--backend-store-uri` would use), then a resumed rerun that recomputes nothing.

Skips when the PostgreSQL server binaries or psycopg (`pip install 'smo-impact[postgres]'`) are
missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from smo_impact.config import validate
from smo_impact.runner.executors import LocalExecutor
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset


def _server_binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return shutil.which(name) or (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_uri():
    pytest.importorskip("psycopg", reason="PostgreSQL stores need psycopg: pip install 'smo-impact[postgres]'")
    initdb, pg_ctl = _server_binary("initdb"), _server_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    # PostgreSQL refuses to run as root: run it as the 'postgres' user when we are root.
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="smo-pg-"))  # not under pytest's 0700 tmp: the server user must enter it
    if as_user:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
    try:
        run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "start",
            "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL cluster: {(exc.stderr or exc.stdout).strip()[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


CONFIG = {
    "name": "pg",
    "dataset": {"name": "md-agreement"},
    "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.1}}]},
    "sweep": {"noisy": {"noise.rate": [0.1, 0.3]}},
    "seeds": [0, 1],
    "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
}


def test_sweep_logs_into_postgres_and_resumes(postgres_uri, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # a direct database URI keeps MLflow's ./mlruns artifact default
    data, config = make_text_dataset(300), validate(CONFIG)
    first = run_experiment(config, lambda: MlflowTracker(postgres_uri, "pg-team"), dataset=data, executor=LocalExecutor(2))
    client = MlflowClient(postgres_uri)
    experiment = client.get_experiment_by_name("pg-team")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == len(first.runs) == 6
    assert {r.info.status for r in runs} == {"FINISHED"}
    for run in children:
        assert 0.0 <= run.data.metrics["test/macro_f1"] <= 1.0
        assert run.data.tags["smo.run_key"]
    logged = {r.data.tags["smo.run_key"]: r.data.metrics["test/macro_f1"] for r in children}

    again = run_experiment(config, lambda: MlflowTracker(postgres_uri, "pg-team"), dataset=data, executor=LocalExecutor(2))
    after = client.search_runs([experiment.experiment_id], max_results=100)
    assert len(after) == len(runs)  # nothing re-run, the parent reused
    assert again.parent_run_id == first.parent_run_id
    assert {r.data.tags["smo.run_key"]: r.data.metrics["test/macro_f1"] for r in after if "mlflow.parentRunId" in r.data.tags} == logged
