"""Resume and idempotency: nothing lost, nothing double-counted, nothing recomputed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from smo_impact.config import validate
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset

CONFIG = {
    "name": "resume",
    "dataset": {"name": "md-agreement"},
    "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.1}}]},
    "sweep": {"noisy": {"noise.rate": [0.1, 0.2, 0.3, 0.4]}},
    "seeds": [0, 1, 2, 3],
}


def test_rerun_skips_finished_runs_and_reuses_parent(tmp_path):
    data = make_text_dataset(200)
    store = f"sqlite:///{tmp_path / 'm.db'}"
    config = validate({**CONFIG, "seeds": [0]})
    first = run_experiment(config, lambda: MlflowTracker(store, "r"), dataset=data)
    second = run_experiment(config, lambda: MlflowTracker(store, "r"), dataset=data)
    assert (first.computed, first.reused) == (5, 0)
    assert (second.computed, second.reused) == (0, 5)
    assert second.parent_run_id == first.parent_run_id
    assert sorted(second.runs["run_id"]) == sorted(first.runs["run_id"])
    # a new seed computes only the new runs; --force recomputes all
    more = run_experiment(validate({**CONFIG, "seeds": [0, 1]}), lambda: MlflowTracker(store, "r"), dataset=data)
    assert (more.computed, more.reused) == (5, 5)
    forced = run_experiment(config, lambda: MlflowTracker(store, "r"), dataset=data, force=True)
    assert (forced.computed, forced.reused) == (5, 0)


@pytest.mark.integration
def test_sigkill_mid_sweep_then_resume(tmp_path, mirror):
    """Kill the CLI with SIGKILL part-way; the rerun finishes the sweep without redoing anything."""
    config_path = tmp_path / "exp.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    store = f"sqlite:///{tmp_path / 'm.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    exe = str(Path(sys.executable).parent / "smo-impact")
    client = MlflowClient(store)
    client.search_experiments()  # create the store's tables now, not racing the command for them
    proc = subprocess.Popen([exe, "run", str(config_path)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before: dict[str, str] = {}
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                runs = _runs(client)
            except Exception:  # noqa: BLE001 - the store may not exist yet
                continue
            finished = [r for r in runs if r.info.status == "FINISHED"]
            if len(finished) >= 4:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    before = {r.data.tags["smo.run_key"]: r.info.run_id for r in _runs(client) if r.info.status == "FINISHED"}
    assert 4 <= len(before) < 20

    rerun = subprocess.run([exe, "run", str(config_path)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed: {len(before)} finished run(s) reused" in rerun.stdout

    runs = _runs(client)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    keys = [r.data.tags["smo.run_key"] for r in finished]
    assert len(keys) == len(set(keys)) == 20  # exactly one FINISHED run per key
    assert not [r for r in runs if r.info.status == "RUNNING"]
    for key, run_id in before.items():  # runs finished before the kill were not recomputed
        assert {r.info.run_id for r in finished if r.data.tags["smo.run_key"] == key} == {run_id}
    parents = client.search_runs([client.get_experiment_by_name("resume").experiment_id], "tags.`smo.kind` = 'experiment'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def _runs(client):
    experiment = client.get_experiment_by_name("resume")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], "tags.`smo.kind` = 'run'", max_results=1000)


@pytest.mark.integration
@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_ctrl_c_leaves_nothing_running(tmp_path, mirror, executor):
    config_path = tmp_path / "exp.yaml"
    config_path.write_text(yaml.safe_dump({**CONFIG, "execution": {"executor": executor, "workers": 2}}))
    store = f"sqlite:///{tmp_path / 'm.db'}"
    exe = str(Path(sys.executable).parent / "smo-impact")
    client = MlflowClient(store)
    client.search_experiments()  # create the store's tables now, not racing the command for them
    proc = subprocess.Popen([exe, "run", str(config_path)], env={**os.environ, "MLFLOW_TRACKING_URI": store},
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        try:
            if sum(r.info.status == "FINISHED" for r in _runs(client)) >= 2:
                break
        except Exception:  # noqa: BLE001 - the store may not exist yet
            continue
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    experiment = client.get_experiment_by_name("resume")
    everything = client.search_runs([experiment.experiment_id], max_results=1000)
    assert not [r for r in everything if r.info.status == "RUNNING"]
    parent = [r for r in everything if r.data.tags.get("smo.kind") == "experiment"]
    assert [p.info.status for p in parent] == ["KILLED"]


@pytest.mark.slow
def test_resume_after_sigkill_prints_no_artifact_download_bars(tmp_path):
    """Issue 19.11: the rerun after a kill -9 reads the stored predictions of the controls back
    (to compare the treatment runs it computes with them); MLflow draws a tqdm bar per download
    ("Downloading artifacts: 100%|...| 1/1") unless MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR is off.
    With the variable set to true by hand, this same rerun prints one bar per control."""
    from tests.test_cli import _own_csv_experiment

    config = _own_csv_experiment(tmp_path, {})
    spec = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**spec, "seeds": [0, 1, 2, 3], "evaluation": {"bootstrap": 50}}))
    store = f"sqlite:///{tmp_path / 'm.db'}"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"}
    env["MLFLOW_TRACKING_URI"] = store
    exe = str(Path(sys.executable).parent / "smo-impact")
    client = MlflowClient(store)
    client.search_experiments()  # create the store's tables now, not racing the command for them
    proc = subprocess.Popen([exe, "run", str(config)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.3)
            experiment = client.get_experiment_by_name("gated")
            runs = client.search_runs([experiment.experiment_id], "tags.`smo.kind` = 'run'") if experiment else []
            # Controls run first: kill once the 4 controls are stored and before all 8 runs are.
            if sum(r.info.status == "FINISHED" for r in runs) >= 4:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    experiment = client.get_experiment_by_name("gated").experiment_id
    before = [r for r in client.search_runs([experiment], "tags.`smo.kind` = 'run'") if r.info.status == "FINISHED"]
    assert 4 <= len(before) < 8

    rerun = subprocess.run([exe, "run", str(config)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed: {len(before)} finished run(s) reused" in rerun.stdout
    assert "Downloading artifacts" not in rerun.stderr and "it/s]" not in rerun.stderr, rerun.stderr[-2000:]
    finished = [r for r in client.search_runs([experiment], "tags.`smo.kind` = 'run'") if r.info.status == "FINISHED"]
    assert len(finished) == 8  # the rerun computed (and compared) the treatment runs the kill left out
