"""The tracking store under faults (issue 17): an unreachable server and a mistyped store path.
Each is one line on stderr and a clear exit code, never a traceback, minutes of retries, or a store
created where none was meant to be."""

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
