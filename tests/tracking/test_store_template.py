"""A fresh SQLite store is a copy of a migrated template (issue 16): the same store MLflow makes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import smo_impact.tracking.mlflow_tracker as tracking
from smo_impact.data.catalog import cache_dir
from smo_impact.tracking.mlflow_tracker import MlflowTracker

# Columns that differ between any two fresh stores: times, and where each keeps its artifacts.
VOLATILE = ("creation_time", "last_update_time", "artifact_location")


def _contents(path: Path) -> tuple[set[str], dict[str, list[tuple]]]:
    with sqlite3.connect(path) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        indexes = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        rows = {}
        for table in sorted(tables):
            columns = [c[1] for c in connection.execute(f"PRAGMA table_info({table})") if c[1] not in VOLATILE]
            rows[table] = sorted(connection.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)
    return tables | indexes, rows


def test_a_store_from_the_template_is_the_store_mlflow_creates(tmp_path, monkeypatch):
    copy = tracking._copy_template_store
    monkeypatch.setattr(tracking, "_copy_template_store", lambda uri: None)
    MlflowTracker(f"sqlite:///{tmp_path / 'migrated.db'}", "exp")  # MLflow's migrations, as before
    monkeypatch.setattr(tracking, "_copy_template_store", copy)
    templated = MlflowTracker(f"sqlite:///{tmp_path / 'templated.db'}", "exp")
    assert list((cache_dir() / "stores").glob("mlflow-*.db"))
    assert _contents(tmp_path / "migrated.db") == _contents(tmp_path / "templated.db")
    # The experiment keeps its artifacts beside this database, not the template's.
    with sqlite3.connect(tmp_path / "templated.db") as connection:
        locations = dict(connection.execute("SELECT name, artifact_location FROM experiments"))
    assert locations["exp"] == (tmp_path / "mlruns" / "exp").as_uri()
    assert templated.experiment_id == "1"


def test_a_damaged_template_is_built_again(tmp_path):
    MlflowTracker(f"sqlite:///{tmp_path / 'a.db'}", "exp")
    template = next((cache_dir() / "stores").glob("mlflow-*.db"))
    template.write_bytes(b"not a database")
    store = MlflowTracker(f"sqlite:///{tmp_path / 'b.db'}", "exp")
    store.log_params(store.start_run("r", {}), {"p": 1})
    assert tracking._is_migrated(template)
