"""`smo-impact export` and `smo-impact report` through the console script: outputs and exit codes."""

from __future__ import annotations

import sqlite3

import pytest

from tests.test_cli import cli


@pytest.mark.slow  # two console-script runs that read the store: 30-60 s on 2 shared cores
def test_export_and_report_commands(stored, tmp_path):
    uri, parent, _ = stored
    done = cli("export", "toy-report", "--format", "sqlite", "--out", str(tmp_path / "x"), "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "Downloading artifacts" not in done.stderr
    with sqlite3.connect(tmp_path / "x" / "toy-report.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs WHERE kind = 'run'").fetchone() == (8,)
    done = cli("report", parent, "--out", str(tmp_path / "r"), "--tracking-uri", uri, "--no-log", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "report.html").stat().st_size > 10_000


def test_bad_format_and_unknown_experiment_exit_2_with_one_line(stored, tmp_path):
    uri, _, _ = stored
    done = cli("export", "toy-report", "--format", "xlsx", "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: export --format must be one of parquet, csv, sqlite, duckdb; got 'xlsx'"
    done = cli("report", "no-such-experiment", "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: no experiment or run 'no-such-experiment' in sqlite:///")
    assert len(done.stderr.strip().splitlines()) == 1
