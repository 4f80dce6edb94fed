"""Export an experiment from the MLflow store as tidy tables for dashboards (Power BI, Superset...).

One row per fact, the same columns in every format; the columns are documented in the README
(section *Export for dashboards*) and only ever gain columns, never rename them.

* ``runs``: run_id, parent_run_id, experiment, run_name, kind (experiment/run), arm, grid, seed,
  is_control, status, config_hash, run_key, data_digest, code_version, start_time, end_time
* ``metrics``: run_id, name, value, step (latest value of every metric of every run)
* ``params``: run_id, name, value
* ``quality``: run_id, arm, grid, seed, name, value (the ``quality/*`` and ``treatment/*`` subset)
* ``regressions``: run_id, arm, grid, seed + the regressed-items artifact's columns (benchmark,
  task, text, kind, reference, control and treatment scores, slice...)
* ``raters``: run_id, source (the artifact, e.g. rater_quality), worker, statistic, value
* ``impact``: the parent run's OLS fits (outcome, x_label, arm, slope, CI, R², p, n)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from smo_impact.errors import ConfigError
from smo_impact.tracking.reader import MlflowReader, StoredExperiment, StoredRun

FORMATS = ("parquet", "csv", "sqlite", "duckdb")
RATER_ARTIFACTS = ("treatment/rater_quality.csv", "treatment/aggregate_skills.csv")
RUN_COLUMNS = [
    "run_id", "parent_run_id", "experiment", "run_name", "kind", "arm", "grid", "seed", "is_control", "status",
    "config_hash", "run_key", "data_digest", "code_version", "start_time", "end_time",
]


def build_tables(
    reader: MlflowReader, stored: StoredExperiment, progress: Callable[[str], None] | None = None
) -> dict[str, pd.DataFrame]:
    """The tidy tables of one stored experiment (parent run and all its child runs)."""
    everything = [stored.parent, *stored.children]
    runs = pd.DataFrame([_run_row(stored.experiment, r) for r in everything], columns=RUN_COLUMNS)
    keys = runs.set_index("run_id")[["arm", "grid", "seed"]]
    metrics = pd.DataFrame(
        [(r.run_id, k, float(v), r.metric_steps.get(k, 0)) for r in everything for k, v in r.metrics.items()],
        columns=["run_id", "name", "value", "step"],
    )
    params = pd.DataFrame(
        [(r.run_id, k, v) for r in everything for k, v in r.params.items()], columns=["run_id", "name", "value"]
    )
    quality = metrics[metrics["name"].str.startswith(("quality/", "treatment/"))]
    quality = quality.join(keys, on="run_id")[["run_id", "arm", "grid", "seed", "name", "value"]]

    regressions, raters = [], []
    for run in stored.children:
        if progress:
            progress(run.name)
        if run.status != "FINISHED":
            continue
        regressed = reader.load_frame(run.run_id, "regression/regressed_items.parquet")
        if regressed is not None and not regressed.empty:
            arm, grid, seed = keys.loc[run.run_id]
            regressions.append(regressed.assign(run_id=run.run_id, arm=arm, grid=grid, seed=seed))
        for artifact in RATER_ARTIFACTS:
            table = reader.load_frame(run.run_id, artifact)
            if table is not None and not table.empty:
                raters.append(_rater_facts(table, run.run_id, Path(artifact).stem))
    regression_frame = pd.concat(regressions, ignore_index=True) if regressions else pd.DataFrame(
        columns=["run_id", "arm", "grid", "seed", "benchmark", "task", "text", "kind"]
    )
    lead = ["run_id", "arm", "grid", "seed"]
    regression_frame = regression_frame[lead + [c for c in regression_frame.columns if c not in lead]]
    rater_frame = pd.concat(raters, ignore_index=True) if raters else pd.DataFrame(
        columns=["run_id", "source", "worker", "statistic", "value"]
    )
    impact = reader.load_frame(stored.parent.run_id, "impact/fits.csv")
    if impact is None:
        impact = pd.DataFrame(columns=["outcome", "x_label", "x_name", "arm", "slope", "slope_ci_low",
                                       "slope_ci_high", "intercept", "r2", "p_value", "n"])
    return {
        "runs": runs, "metrics": metrics, "params": params, "quality": quality.reset_index(drop=True),
        "regressions": regression_frame, "raters": rater_frame, "impact": impact.assign(run_id=stored.parent.run_id),
    }


def write_tables(tables: dict[str, pd.DataFrame], out: Path, fmt: str, stem: str) -> list[Path]:
    """Write the tables as one file each (parquet/csv) or one database (sqlite/duckdb); return paths.

    Raises:
        ConfigError: for an unknown format.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"export --format must be one of {', '.join(FORMATS)}; got '{fmt}'")
    out.mkdir(parents=True, exist_ok=True)
    # Object columns (pandas 3 strings, mixed) go out as plain text so every engine can read them.
    tables = {name: _plain(frame) for name, frame in tables.items()}
    if fmt in ("parquet", "csv"):
        paths = []
        for name, frame in tables.items():
            path = out / f"{name}.{fmt}"
            frame.to_parquet(path, index=False) if fmt == "parquet" else frame.to_csv(path, index=False)
            paths.append(path)
        return paths
    path = out / f"{stem}.{fmt}"
    path.unlink(missing_ok=True)
    if fmt == "sqlite":
        import sqlite3

        with sqlite3.connect(path) as connection:
            for name, frame in tables.items():
                frame.to_sql(name, connection, index=False)
        connection.close()
    else:
        try:
            import duckdb
        except ImportError:
            raise ConfigError("export --format duckdb needs the duckdb package: pip install 'smo-impact[export]'") from None
        connection = duckdb.connect(str(path))
        try:
            for name, frame in tables.items():
                # An empty table's object columns would get DuckDB's NULL type; text is queryable.
                frame = frame.astype("string") if frame.empty else frame
                connection.register("frame_view", frame)
                connection.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame_view')
                connection.unregister("frame_view")
        finally:
            connection.close()
    return [path]


def export_experiment(
    experiment_or_run_id: str, out: Path, fmt: str = "parquet", tracking_uri: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Read one experiment from the store and write its tidy tables under ``out``."""
    if fmt not in FORMATS:
        raise ConfigError(f"export --format must be one of {', '.join(FORMATS)}; got '{fmt}'")
    reader = MlflowReader(tracking_uri)
    stored = reader.load(experiment_or_run_id)
    return write_tables(build_tables(reader, stored, progress), out, fmt, stored.experiment)


def _run_row(experiment: str, run: StoredRun) -> dict:
    tags = run.tags
    seed = tags.get("smo.seed")
    return {
        "run_id": run.run_id, "parent_run_id": run.parent_id, "experiment": experiment, "run_name": run.name,
        "kind": tags.get("smo.kind", ""), "arm": tags.get("smo.arm"), "grid": tags.get("smo.grid"),
        "seed": int(seed) if seed is not None else None,
        "is_control": {"true": True, "false": False}.get(tags.get("smo.is_control", "")),
        "status": run.status, "config_hash": tags.get("smo.config_hash"), "run_key": tags.get("smo.run_key"),
        "data_digest": tags.get("smo.data_digest"), "code_version": tags.get("smo.code_version"),
        "start_time": _time(run.start_ms), "end_time": _time(run.end_ms),
    }


def _rater_facts(table: pd.DataFrame, run_id: str, source: str) -> pd.DataFrame:
    """A per-rater artifact (index column = worker) as (worker, statistic, value) rows."""
    first = table.columns[0]
    table = table.rename(columns={first: "worker"}) if first != "worker" else table
    numeric = [c for c in table.columns if c != "worker" and pd.api.types.is_numeric_dtype(table[c])]
    long = table.melt(id_vars=["worker"], value_vars=numeric, var_name="statistic", value_name="value")
    return long.assign(run_id=run_id, source=source, worker=long["worker"].astype(str))[
        ["run_id", "source", "worker", "statistic", "value"]
    ]


def _time(ms: int | None) -> str | None:
    return None if not ms else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in frame.columns:
        if not (pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col])):
            frame[col] = frame[col].map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v)).astype(object)
    return frame


__all__ = ["FORMATS", "build_tables", "export_experiment", "write_tables"]
