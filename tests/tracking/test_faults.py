"""The tracking store under faults (issue 17): a copied or moved SQLite store, a read-only store, an
unreachable server and a mistyped store path. Each is one line on stderr and a clear exit code,
never a traceback, a silently wrong report, or a store created where none was meant to be."""

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


@pytest.mark.slow
def test_a_copied_store_reports_exports_and_resumes_from_the_copy(tmp_path):
    """The README promises a store is one folder to keep, copy or delete: a copy must read its own
    artifacts and write new ones into itself, with or without the original beside it."""
    config = write_experiment(tmp_path, seeds=(0, 1))
    original, copy = tmp_path / "original", tmp_path / "copy"
    result = smo("run", str(config), "--tracking-uri", f"sqlite:///{original / 'mlflow.db'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = smo("report", "toy", "--no-log", "--out", "r0", "--tracking-uri", f"sqlite:///{original / 'mlflow.db'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = section((tmp_path / "r0" / "report.md").read_text(), "Top regressions")
    assert "| test | " in expected  # the intact store has regressed items to list
    result = smo("export", "toy", "--format", "csv", "--out", "e0", "--tracking-uri", f"sqlite:///{original / 'mlflow.db'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    shutil.copytree(original, copy)
    before = _files(original)
    store = f"sqlite:///{copy / 'mlflow.db'}"
    # With the original still there: a report logged on the copy goes into the copy.
    result = smo("report", "toy", "--out", "r1", "--tracking-uri", store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert section((tmp_path / "r1" / "report.md").read_text(), "Top regressions") == expected
    assert _files(original) == before
    assert any(p.startswith("mlruns/toy/") and p.endswith("report/report.md") for p in _files(copy))

    shutil.rmtree(original)
    result = smo("report", "toy", "--out", "r2", "--tracking-uri", store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert section((tmp_path / "r2" / "report.md").read_text(), "Top regressions") == expected
    result = smo("export", "toy", "--format", "csv", "--out", "e2", "--tracking-uri", store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for table in ("regressions", "raters", "impact", "metrics"):
        assert len(pd.read_csv(tmp_path / "e2" / f"{table}.csv")) == len(pd.read_csv(tmp_path / "e0" / f"{table}.csv")), table
    assert len(pd.read_csv(tmp_path / "e2" / "regressions.csv")) > 0

    # A resumed run with one more seed reuses the copied runs (comparing new runs with their
    # stored controls' predictions) and logs the new ones into the copy.
    more = write_experiment(tmp_path, seeds=(0, 1, 2))
    result = smo("run", str(more), "--tracking-uri", store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "resumed: 6 finished run(s) reused from the store, 3 computed" in result.stdout
    assert not original.exists()
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("toy")
    assert experiment.artifact_location == (copy / "mlruns" / "toy").as_uri()
    every = client.search_runs([experiment.experiment_id], max_results=1000)
    assert len(every) == 2 + 9  # a parent per config (2 and 3 seeds) and 9 runs
    assert {r.info.artifact_uri.rsplit("/", 2)[0] for r in every} == {(copy / "mlruns" / "toy").as_uri()}
    assert {r.info.status for r in every} == {"FINISHED"}


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
    config = write_experiment(tmp_path / "config")
    for database in (tmp_path / "mlflwo.db", tmp_path / "no" / "such" / "mlflow.db"):
        for args in (["report", "toy"], ["export", "toy"], ["rca", str(config), "noisy rate=0.2 s0"]):
            result = smo(*args, "--tracking-uri", f"sqlite:///{database}", cwd=tmp_path, timeout=120)
            assert result.returncode == 2, (args, result.stderr[-2000:])
            assert error_lines(result.stderr) == [
                f"error: no MLflow store at {database}: the file does not exist; check --tracking-uri or "
                "MLFLOW_TRACKING_URI (a store is created by `smo-impact run`)"
            ]
            assert not database.exists() and not (database.parent / "mlruns").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]
