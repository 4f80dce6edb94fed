"""The tracking store under faults (issue 17): a read-only store, an unreachable server and a
mistyped store path. Each is one line on stderr and a clear exit code, never a traceback, minutes
of retries, or a store created where none was meant to be."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.cli_faults import error_lines, runs, section, smo, write_experiment


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _make_read_only(folder: Path) -> None:
    """chmod for a normal user; root ignores file modes, so there the immutable attribute."""
    import os

    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a folder read-only")
    done = subprocess.run(["chattr", "-R", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not permitted here: {done.stderr.strip()}")


def _make_writable(folder: Path) -> None:
    import os

    if os.geteuid() == 0:
        subprocess.run(["chattr", "-R", "-i", str(folder)], capture_output=True)
    else:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


@pytest.mark.slow
def test_a_read_only_store_is_one_line_and_exit_2(tmp_path):
    config = write_experiment(tmp_path, seeds=(0,), rates=(0.2,))
    folder = tmp_path / "store"
    store = f"sqlite:///{folder / 'mlflow.db'}"
    assert smo("run", str(config), "--tracking-uri", store, cwd=tmp_path).returncode == 0
    statuses = {r.info.run_id: r.info.status for r in runs(store, "toy")}
    more = write_experiment(tmp_path, seeds=(0, 1), rates=(0.2,))
    _make_read_only(folder)
    try:
        for args in (["run", str(more)], ["report", "toy", "--out", "r"]):
            result = smo(*args, "--tracking-uri", store, cwd=tmp_path)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            (line,) = error_lines(result.stderr)
            assert line.startswith(f"error: cannot write to MLflow store {folder / 'mlflow.db'}: read-only ("), line
            assert "Traceback" not in result.stdout + result.stderr
        assert "--no-log" in line  # the report can still be built without logging it
        result = smo("report", "toy", "--out", "r", "--no-log", "--tracking-uri", store, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    finally:
        _make_writable(folder)
    assert {r.info.run_id: r.info.status for r in runs(store, "toy")} == statuses  # nothing left RUNNING


def _dead_server() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed


def test_report_export_and_audit_fail_fast_on_an_unreachable_server(tmp_path):
    config = write_experiment(tmp_path)
    uri = _dead_server()
    for args in (["report", "toy"], ["export", "toy"], ["audit", str(config), "--mlflow", "--bootstrap", "0"]):
        start = time.monotonic()
        result = smo(*args, "--tracking-uri", uri, cwd=tmp_path, timeout=120)
        elapsed = time.monotonic() - start
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert error_lines(result.stderr) == [
            f"error: cannot reach MLflow tracking server {uri} within 5 s ([Errno 111] Connection refused); "
            "check MLFLOW_TRACKING_URI or start the server"
        ], args
        assert elapsed < 30, (args, elapsed)  # 5 s of check plus interpreter start-up on a loaded machine
    assert not (tmp_path / "audit").exists()  # audit checked the server before auditing anything


def test_a_mistyped_store_path_is_refused_and_not_created(tmp_path):
    for database in (tmp_path / "mlflwo.db", tmp_path / "no" / "such" / "mlflow.db"):
        for args in (["report", "toy"], ["export", "toy"]):
            result = smo(*args, "--tracking-uri", f"sqlite:///{database}", cwd=tmp_path, timeout=120)
            assert result.returncode == 2, (args, result.stderr[-2000:])
            assert error_lines(result.stderr) == [
                f"error: no MLflow store at {database}: the file does not exist; check --tracking-uri or "
                "MLFLOW_TRACKING_URI (a store is created by `smo-impact run`)"
            ]
            assert not database.exists() and not (database.parent / "mlruns").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
