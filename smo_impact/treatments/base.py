"""What flows through a treatment arm, and the Treatment protocol.

A treatment is an estimator-like component: ``__init__`` stores validated parameters, ``apply``
takes a :class:`LabelState` and a ``numpy.random.Generator`` and returns a *new* state (inputs are
never mutated). What it did is left on the instance in attributes ending in ``_``:
``metrics_`` (logged as ``treatment/*``) and the change record rows it appended to the state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

CHANGE_COLUMNS = ["task", "step", "label_before", "label_after", "cause"]


class TreatmentParams(BaseModel):
    """Base for treatment parameter models: frozen, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class LabelState:
    """The training data of one run as it moves through an arm's steps.

    Attributes:
        items: Training items (``task``, ``text``, slice columns).
        annotations: Remaining judgements on those items (``task``, ``worker``, ``label``, ...).
        labels_set: The declared label set, in order.
        positive_label: The harmful/positive class.
        labels: Training label per task (index ``task``); ``None`` until an aggregation step.
        soft_labels: Optional task x label vote distribution for soft-label training.
        changes: Change record: one row per training-label change (see ``CHANGE_COLUMNS``).
    """

    items: pd.DataFrame
    annotations: pd.DataFrame
    labels_set: tuple
    positive_label: Any
    labels: pd.Series | None = None
    soft_labels: pd.DataFrame | None = None
    changes: pd.DataFrame = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.changes is None:
            object.__setattr__(self, "changes", pd.DataFrame(columns=CHANGE_COLUMNS))

    def evolve(self, **changes: Any) -> LabelState:
        return replace(self, **changes)

    def with_changes(self, rows: pd.DataFrame) -> LabelState:
        if rows.empty:
            return self
        merged = rows if self.changes.empty else pd.concat([self.changes, rows], ignore_index=True)
        return replace(self, changes=merged[CHANGE_COLUMNS])


class Treatment(Protocol):
    """A lever an annotation-operations team pulls, applied as one step of an arm."""

    name: ClassVar[str]
    Params: ClassVar[type[TreatmentParams]]
    metrics_: dict[str, float]

    def __init__(self, params: TreatmentParams) -> None: ...

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState: ...
