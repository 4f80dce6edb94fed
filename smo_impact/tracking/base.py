"""The Tracker protocol the runner logs through."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pandas as pd

RunStatus = Literal["FINISHED", "FAILED", "KILLED"]


@dataclass
class TrackedRun:
    """A run as read back from the store."""

    run_id: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


class RunLog(Protocol):
    """One run's writes, buffered and sent together (:meth:`Tracker.batch`)."""

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_text(self, text: str, artifact_file: str) -> None: ...

    def log_frame(self, frame: pd.DataFrame, artifact_file: str) -> None: ...

    def log_figure(self, figure: Any, artifact_file: str) -> None: ...

    def log_bytes(self, data: bytes, artifact_file: str) -> None: ...


class Tracker(Protocol):
    """Where runs, their parameters, metrics and artifacts go."""

    def start_run(
        self, name: str, tags: dict[str, str], parent_id: str | None = None, start_time_ms: int | None = None
    ) -> str:
        """Start a run (nested under ``parent_id`` when given); return its id."""
        ...

    def find_runs(self, tags: dict[str, str], statuses: tuple[str, ...] | None = None) -> list[TrackedRun]:
        """Runs of this experiment whose tags include ``tags`` (optionally only some statuses)."""
        ...

    def lock(self) -> AbstractContextManager[None]:
        """Mutual exclusion between the processes using this store, for the runner's claims on
        runs (a no-op where the store offers none)."""
        ...

    def reopen_run(self, run_id: str) -> None:
        """Mark a finished/failed run RUNNING again (a resumed parent)."""
        ...

    def log_params(self, run_id: str, params: dict[str, Any]) -> None: ...

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None: ...

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None: ...

    def batch(self, run_id: str) -> AbstractContextManager[RunLog]:
        """Writes to one run, sent together when the block ends (params, metrics and tags in one
        call, the files in another): what the runner logs per run goes through here."""
        ...

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None: ...

    def log_frame(self, run_id: str, frame: pd.DataFrame, artifact_file: str) -> None:
        """Log a table as an artifact (Parquet when the name ends in .parquet, else CSV)."""
        ...

    def log_table(self, run_id: str, frame: pd.DataFrame, artifact_file: str) -> None:
        """Log a table the tracking UI shows as a table (``.json``); replaces one at that path."""
        ...

    def log_model(self, run_id: str, estimator: Any, input_example: Any, name: str = "classifier") -> str:
        """Log a fitted scikit-learn estimator as a servable model of the run; return its URI."""
        ...

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None: ...

    def load_frame(self, run_id: str, artifact_file: str) -> pd.DataFrame | None:
        """A table logged with ``log_frame`` (None when absent): a resumed sweep reads its stored
        control predictions back to compare new treatment runs with them item by item."""
        ...

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str) -> None:
        """Log every file under ``local_dir`` as artifacts under ``artifact_path`` (e.g. a saved model)."""
        ...

    def log_dataset(self, run_id: str, frame: pd.DataFrame, name: str, digest: str, source: str) -> None:
        """Record the dataset a run used, with its content digest."""
        ...

    def end_run(self, run_id: str, status: RunStatus = "FINISHED", end_time_ms: int | None = None) -> None: ...

    def delete_run(self, run_id: str) -> None:
        """Delete a run that holds nothing (a claimed run never computed)."""
        ...

    def system_metrics(self, run_id: str) -> AbstractContextManager[None]:
        """Sample the machine's CPU, memory, disk, network (and GPU) use into the run's
        ``system/`` metrics while the context is open (a no-op where the store has no such thing)."""
        ...

    @property
    def location(self) -> str:
        """Human-readable place where runs can be browsed (tracking URI)."""
        ...
