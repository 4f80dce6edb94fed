"""Export: tidy tables from the store, queried with SQL (SQLite and DuckDB) and read as files."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from smo_impact.errors import ConfigError
from smo_impact.report.export import export_experiment


def test_sqlite_export_answers_dashboard_queries(stored, tmp_path):
    uri, parent, ids = stored
    (path,) = export_experiment("toy-report", tmp_path, "sqlite", uri)
    assert path.name == "toy-report.sqlite"
    with sqlite3.connect(path) as db:
        means = dict(db.execute(
            "SELECT r.grid, AVG(m.value) FROM metrics m JOIN runs r USING (run_id) "
            "WHERE m.name = 'test/macro_f1' GROUP BY r.grid ORDER BY r.grid"
        ).fetchall())
        assert means == pytest.approx({"-": 0.80, "noise.rate=0.1": 0.75, "noise.rate=0.2": 0.70, "noise.rate=0.4": 0.60})
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM runs GROUP BY kind").fetchall())
        assert kinds == {"experiment": 1, "run": 8}
        assert db.execute("SELECT COUNT(DISTINCT parent_run_id) FROM runs WHERE kind = 'run'").fetchone() == (1,)
        # train/loss logged at step 3 keeps its step
        assert set(db.execute("SELECT DISTINCT step FROM metrics WHERE name = 'train/loss'").fetchall()) == {(3,)}
        # regressions: int(rate*10) items per noisy run, 2 seeds: (1 + 2 + 4) * 2
        assert db.execute("SELECT COUNT(*) FROM regressions").fetchone() == (14,)
        assert db.execute(
            "SELECT COUNT(*) FROM regressions WHERE grid = 'noise.rate=0.4' AND seed = 1"
        ).fetchone() == (4,)
        raters = db.execute(
            "SELECT worker, AVG(value), COUNT(*) FROM raters WHERE statistic = 'agreement' GROUP BY worker ORDER BY worker"
        ).fetchall()
        assert raters == [("w1", 0.9, 2), ("w2", 0.6, 2)]  # both control runs logged rater_quality.csv
        quality = db.execute(
            "SELECT AVG(value) FROM quality WHERE name = 'quality/label_noise' AND arm = 'noise'"
        ).fetchone()[0]
        assert quality == pytest.approx((0.1 + 0.2 + 0.4) / 3)
        slope = db.execute(
            "SELECT slope FROM impact WHERE outcome = 'test/macro_f1' AND x_label = 'noise.rate'"
        ).fetchone()[0]
        assert slope == pytest.approx(-0.5)


def test_duckdb_export_is_queryable(stored, tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is in the 'export' extra")
    uri, _, _ = stored
    (path,) = export_experiment("toy-report", tmp_path, "duckdb", uri)
    with duckdb.connect(str(path), read_only=True) as db:
        tables = {row[0] for row in db.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert tables == {"runs", "metrics", "params", "quality", "regressions", "raters", "impact"}
        worst = db.execute(
            "SELECT r.arm, r.seed, m.value FROM metrics m JOIN runs r USING (run_id) "
            "WHERE m.name = 'test/macro_f1' ORDER BY m.value LIMIT 1"
        ).fetchone()
        assert worst[:2] == ("noise", 1) and worst[2] == pytest.approx(0.59)
        params = db.execute("SELECT COUNT(*) FROM params WHERE name = 'grid.noise.rate'").fetchone()
        assert params == (6,)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_file_exports_write_one_table_each(stored, tmp_path, fmt):
    uri, parent, _ = stored
    paths = export_experiment(parent, tmp_path, fmt, uri)  # by parent run id
    assert sorted(p.stem for p in paths) == ["impact", "metrics", "params", "quality", "raters", "regressions", "runs"]
    runs = pd.read_parquet(tmp_path / "runs.parquet") if fmt == "parquet" else pd.read_csv(tmp_path / "runs.csv")
    assert list(runs.columns[:8]) == ["run_id", "parent_run_id", "experiment", "run_name", "kind", "arm", "grid", "seed"]
    assert sorted(runs["status"].unique()) == ["FINISHED"]


def test_unknown_format_and_experiment_are_one_line_errors(stored, tmp_path):
    uri, _, _ = stored
    with pytest.raises(ConfigError, match="export --format must be one of parquet, csv, sqlite, duckdb; got 'xlsx'"):
        export_experiment("toy-report", tmp_path, "xlsx", uri)
    from smo_impact.errors import TrackingError

    with pytest.raises(TrackingError, match="no experiment or run 'nope' in .*experiments there: .*toy-report"):
        export_experiment("nope", tmp_path, "csv", uri)
