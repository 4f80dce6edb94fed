"""The Tracker protocol the runner logs through."""

from __future__ import annotations

from typing import Any, Literal, Protocol

import pandas as pd

RunStatus = Literal["FINISHED", "FAILED", "KILLED"]


class Tracker(Protocol):
    """Where runs, their parameters, metrics and artifacts go."""

    def start_run(self, name: str, tags: dict[str, str], parent_id: str | None = None) -> str:
        """Start a run (nested under ``parent_id`` when given); return its id."""
        ...

    def log_params(self, run_id: str, params: dict[str, Any]) -> None: ...

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None: ...

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None: ...

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None: ...

    def log_frame(self, run_id: str, frame: pd.DataFrame, artifact_file: str) -> None:
        """Log a table as an artifact (Parquet when the name ends in .parquet, else CSV)."""
        ...

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None: ...

    def log_dataset(self, run_id: str, frame: pd.DataFrame, name: str, digest: str, source: str) -> None:
        """Record the dataset a run used, with its content digest."""
        ...

    def end_run(self, run_id: str, status: RunStatus = "FINISHED") -> None: ...

    @property
    def location(self) -> str:
        """Human-readable place where runs can be browsed (tracking URI)."""
        ...
