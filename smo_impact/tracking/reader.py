"""Read an experiment back from an MLflow store: parent run, child runs, their artifacts.

The analysis, report and export commands work from what is in the store, not from the memory of
the process that ran the experiment. Like ``mlflow_tracker``, this module may import mlflow.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from smo_impact.errors import TrackingError
from smo_impact.tracking.base import TrackedRun
from smo_impact.tracking.mlflow_tracker import open_store, resolve_tracking_uri


@dataclass
class StoredRun(TrackedRun):
    """A run as read back, with its name, parent and timing."""

    name: str = ""
    parent_id: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    metric_steps: dict[str, int] = field(default_factory=dict)  # step of each metric's latest value


@dataclass
class StoredExperiment:
    """One ``smo-impact run`` as stored: the parent run and its child runs."""

    experiment: str
    parent: StoredRun
    children: list[StoredRun] = field(default_factory=list)

    def runs_frame(self) -> pd.DataFrame:
        """One row per FINISHED child run, shaped like the runner's own runs table.

        Columns: ``run_id``, ``run_name``, ``arm``, ``grid``, ``grid_params`` (dict of grid values,
        numbers parsed), ``seed``, and every logged metric (latest value).
        """
        rows = []
        for run in self.children:
            if run.status != "FINISHED":
                continue
            grid = {k[len("grid."):]: _number(v) for k, v in run.params.items() if k.startswith("grid.")}
            rows.append({
                "run_id": run.run_id,
                "run_name": run.name,
                "arm": run.tags.get("smo.arm", run.params.get("arm", "")),
                "grid": run.tags.get("smo.grid", "-"),
                "grid_params": grid,
                "seed": int(run.tags.get("smo.seed", run.params.get("seed", 0))),
                **run.metrics,
            })
        return pd.DataFrame(rows)


class MlflowReader:
    """Finds experiments and reads runs and artifacts from one tracking store."""

    def __init__(self, uri: str | None = None, write: bool = False, fix: str | None = None) -> None:
        """Open an existing store; ``write`` when the caller will log to it (``fix``: what to
        suggest when it is read-only).

        Raises:
            TrackingError: the server does not answer within seconds, there is no store at
                ``uri`` (none is created), or ``write`` and the store is read-only.
        """
        from mlflow import MlflowClient

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # One download per artifact: MLflow's per-file progress bars would bury the CLI's own output.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.uri = resolve_tracking_uri(uri)
        open_store(self.uri, create=False, write=write, fix=fix)
        self.client = MlflowClient(tracking_uri=self.uri)

    def load(self, experiment_or_run_id: str) -> StoredExperiment:
        """The latest parent run of the MLflow experiment of that name, or the parent run of that id.

        Raises:
            TrackingError: when neither an experiment nor a run of that name/id is in the store.
        """
        found = self.client.get_experiment_by_name(experiment_or_run_id)
        if found is not None:
            parents = self._search([found.experiment_id], "tags.`smo.kind` = 'experiment'")
            if not parents:
                raise TrackingError(
                    f"experiment '{experiment_or_run_id}' in {self.uri} has no smo-impact parent run; "
                    "run it first with `smo-impact run CONFIG`"
                )
            parent = max(parents, key=lambda r: r.start_ms or 0)
            name = found.name
        else:
            try:
                mlflow_run = self.client.get_run(experiment_or_run_id)
            except Exception:  # noqa: BLE001 - MLflow raises several types for an unknown id
                names = sorted(e.name for e in self.client.search_experiments())
                raise TrackingError(
                    f"no experiment or run '{experiment_or_run_id}' in {self.uri}; "
                    f"experiments there: {', '.join(names) or 'none'}"
                ) from None
            parent = _stored(mlflow_run)
            if parent.parent_id:  # a child run id: report on its experiment
                parent = _stored(self.client.get_run(parent.parent_id))
            name = self.client.get_experiment(mlflow_run.info.experiment_id).name
        children = self._search(
            [self.client.get_run(parent.run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{parent.run_id}'"
        )
        children.sort(key=lambda r: r.name)
        return StoredExperiment(name, parent, children)

    def load_frame(self, run_id: str, artifact_file: str) -> pd.DataFrame | None:
        """A CSV/Parquet artifact as a table, or None when the run has none at that path."""
        with tempfile.TemporaryDirectory() as tmp:
            path = self._download(run_id, artifact_file, tmp)
            if path is None:
                return None
            return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)

    def load_text(self, run_id: str, artifact_file: str) -> str | None:
        """A text artifact, or None when absent."""
        with tempfile.TemporaryDirectory() as tmp:
            path = self._download(run_id, artifact_file, tmp)
            return None if path is None else path.read_text(encoding="utf-8")

    def load_bytes(self, run_id: str, artifact_file: str) -> bytes | None:
        """A binary artifact (e.g. a PNG plot), or None when absent."""
        with tempfile.TemporaryDirectory() as tmp:
            path = self._download(run_id, artifact_file, tmp)
            return None if path is None else path.read_bytes()

    def list_artifacts(self, run_id: str, folder: str | None = None) -> list[str]:
        """Paths of the files directly under ``folder`` (top level when None)."""
        return [a.path for a in self.client.list_artifacts(run_id, folder) if not a.is_dir]

    def metric_history(self, run_id: str, name: str) -> list[tuple[int, float]]:
        """(step, value) of every logged value of a metric."""
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, name)]

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str) -> None:
        """Attach files to an existing run (the report on its parent run)."""
        self.client.log_artifacts(run_id, local_dir, artifact_path)

    def _download(self, run_id: str, artifact_file: str, tmp: str) -> Path | None:
        try:
            path = Path(self.client.download_artifacts(run_id, artifact_file, tmp))
        except Exception:  # noqa: BLE001 - MLflow raises several types for a missing artifact
            return None
        return path if path.is_file() else None

    def _search(self, experiment_ids: list[str], query: str) -> list[StoredRun]:
        found, token = [], None
        while True:
            page = self.client.search_runs(experiment_ids, query, max_results=1000, page_token=token)
            found.extend(_stored(r) for r in page)
            token = page.token
            if not token:
                return found


def finished_runs(uri: str | None, experiment: str) -> list[StoredRun]:
    """The FINISHED runs (``smo.kind = run``) of an experiment; [] when the local store or the
    experiment does not exist yet (nothing is created).

    Raises:
        TrackingError: a server that does not answer, or a store that cannot be read.
    """
    from smo_impact.tracking.mlflow_tracker import _sqlite_file

    uri = resolve_tracking_uri(uri)
    database = _sqlite_file(uri)
    if database is not None and not database.is_file():
        return []
    reader = MlflowReader(uri)
    found = reader.client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return [r for r in reader._search([found.experiment_id], "tags.`smo.kind` = 'run'") if r.status == "FINISHED"]


def _stored(run) -> StoredRun:  # noqa: ANN001 - an mlflow.entities.Run
    tags = dict(run.data.tags)
    return StoredRun(
        run.info.run_id, run.info.status, tags, dict(run.data.metrics), dict(run.data.params),
        name=run.info.run_name or "", parent_id=tags.get("mlflow.parentRunId"),
        start_ms=run.info.start_time, end_ms=run.info.end_time,
        metric_steps={m.key: m.step for m in getattr(run.data, "_metric_objs", [])},
    )


def _number(text: str) -> float | int | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


__all__ = ["MlflowReader", "StoredExperiment", "StoredRun", "finished_runs"]
