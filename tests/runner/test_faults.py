"""The runner under process faults (issue 17): SIGTERM mid-sweep, and identical sweeps started at
the same time on one store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.cli_faults import runs, smo, start, write_experiment


def _children(pid: int) -> set[int]:
    """Ids of the processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie waiting for its new parent to reap it has ended
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc")
@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_sigterm_marks_runs_killed_exits_143_and_the_rerun_resumes(tmp_path, executor):
    """CI cancellation, `timeout` and Kubernetes send SIGTERM to the command alone."""
    config = write_experiment(tmp_path, seeds=range(6), rates=(0.1, 0.2, 0.3, 0.4),
                              execution={"executor": executor, "workers": 2})
    store = f"sqlite:///{tmp_path / 'm.db'}"
    MlflowClient(store).search_experiments()  # create the store's tables now, not racing the command for them
    # stderr to a file, not a pipe: workers that outlive the command would hold a pipe open.
    with open(tmp_path / "stderr.txt", "w") as stderr:
        proc = start("run", str(config), "--tracking-uri", store, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr)
    workers: set[int] = set()
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if sum(r.info.status == "FINISHED" for r in runs(store, "toy")) >= 2:
                break
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.2)
        leftover = [pid for pid in workers if _alive(pid)]
    finally:
        for pid in workers:  # whatever the outcome, leave no process behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "marked KILLED" in err and "Traceback" not in err, err
    if executor == "local":
        assert len(workers) >= 2
    assert not leftover, "worker processes outlived the command"

    everything = runs(store, "toy") + runs(store, "toy", "experiment")
    assert not [r for r in everything if r.info.status == "RUNNING"]
    assert [r.info.status for r in everything if r.data.tags["smo.kind"] == "experiment"] == ["KILLED"]
    finished = {r.data.tags["smo.run_key"]: r.info.run_id for r in everything if r.info.status == "FINISHED"}
    assert 2 <= len(finished) < 30, "the sweep ended before the signal"

    rerun = smo("run", str(config), "--tracking-uri", store, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed: {len(finished)} finished run(s) reused" in rerun.stdout
    done = [r for r in runs(store, "toy") if r.info.status == "FINISHED"]
    assert len(done) == len({r.data.tags["smo.run_key"] for r in done}) == 30
    assert {r.info.run_id for r in done} >= set(finished.values())


@pytest.mark.slow
def test_sweeps_started_together_compute_each_run_once(tmp_path):
    """Two identical sweeps and a third that overlaps them (2 of their 4 seeds), started at once on
    a fresh SQLite store: every run is computed and logged once, and every command's summary has
    every run of its own config."""
    config = write_experiment(tmp_path, seeds=(0, 1, 2, 3), rates=(0.1, 0.3, 0.5))
    overlapping = tmp_path / "overlapping.yaml"
    overlapping.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "seeds": [0, 1]}))
    store = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    procs = [start("run", str(path), "--tracking-uri", store, cwd=tmp_path) for path in (config, config, overlapping)]
    outputs = [proc.communicate(timeout=900) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err[-3000:] for _, err in outputs]

    children = runs(store, "toy")
    keys = [r.data.tags["smo.run_key"] for r in children]
    assert len(keys) == len(set(keys)) == 16  # 4 seeds x (control + 3 rates), each logged once
    assert {r.info.status for r in children} == {"FINISHED"}
    parents = runs(store, "toy", "experiment")
    assert sorted(p.info.status for p in parents) == ["FINISHED", "FINISHED"]  # one per config
    for (out, _), seeds in zip(outputs, (4, 4, 2)):
        for grid in ("-", "noise.rate=0.1", "noise.rate=0.3", "noise.rate=0.5"):
            assert re.search(rf"│ {re.escape(grid)} +│ {seeds} │", out), (grid, out[-3000:])
