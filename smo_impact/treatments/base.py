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
from pydantic import ConfigDict

from smo_impact.config import QuietDefaults
from smo_impact.data.schema import isin

# ``worker`` is set on changes to one judgement (judgement-level steps) and empty on changes to a
# task's training label; ``label_after`` is empty where the step removed the judgement or item.
CHANGE_COLUMNS = ["task", "step", "label_before", "label_after", "cause", "worker"]


class TreatmentParams(QuietDefaults):
    """Base for treatment parameter models: frozen, unknown keys are errors; fields named in
    ``quiet_defaults`` are left out of dumps while they hold their default (see
    :class:`~smo_impact.config.QuietDefaults`)."""

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
        changes: Change record: one row per change to a training label or to a judgement (``worker``
            set), including removals (``label_after`` empty); see ``CHANGE_COLUMNS``.
        workers: Optional rater attributes keyed by ``worker`` (groups, cost per judgement, ...).
        reference: Optional known-true label per task (simulated data, or the labels before a
            noise step), used to count how many of a cleaning step's removals were truly wrong.
        features: Optional cached training features (``rows(tasks)`` gives a matrix), for steps
            that need a cheap model, e.g. out-of-fold probabilities for cleaning.
        harmful_labels: The labels the binary view counts as harmful (a K-class set's
            ``positive_labels``); empty means ``positive_label`` alone. See :attr:`harmful`.
        ordinal: Whether ``labels_set`` is an ordered scale (benign to harmful), so that ordinal
            metrics (mean absolute error, quadratic-weighted kappa) apply.
        costs: The experiment's ``costs`` (a :class:`~smo_impact.config.CostSpec`), for steps that
            spend a budget; None when the config prices nothing (such steps then take 1 per judgement).
        rater_models: Models from outside the arm, by ``model_rater.model`` source: each has
            ``predict_proba(texts)`` and ``classes_`` (loaded by the runner before any run).
    """

    items: pd.DataFrame
    annotations: pd.DataFrame
    labels_set: tuple
    positive_label: Any
    labels: pd.Series | None = None
    soft_labels: pd.DataFrame | None = None
    changes: pd.DataFrame = None  # type: ignore[assignment]
    workers: pd.DataFrame | None = None
    reference: pd.Series | None = None
    features: Any = None
    harmful_labels: tuple = ()
    ordinal: bool = False
    costs: Any = None
    rater_models: Any = None

    @property
    def harmful(self) -> tuple:
        """The labels counted as harmful by the binary view (``positive_label`` unless
        ``harmful_labels`` says otherwise)."""
        return tuple(self.harmful_labels) or (self.positive_label,)

    def __post_init__(self) -> None:
        if self.changes is None:
            object.__setattr__(self, "changes", pd.DataFrame(columns=CHANGE_COLUMNS))

    def evolve(self, **changes: Any) -> LabelState:
        return replace(self, **changes)

    def with_changes(self, rows: pd.DataFrame) -> LabelState:
        if rows.empty:
            return self
        merged = rows if self.changes.empty else pd.concat([self.changes, rows], ignore_index=True)
        return replace(self, changes=merged.reindex(columns=CHANGE_COLUMNS))


def require_judgements(state: LabelState, step: str) -> None:
    """Steps that work on raw judgements must run before aggregation."""
    if state.labels is not None:
        raise ValueError(
            f"'{step}' works on individual judgements: put it before the 'aggregate' step of the arm"
        )


def require_labels(state: LabelState, step: str) -> pd.Series:
    """Steps that work on training labels need an aggregation step before them."""
    if state.labels is None:
        raise ValueError(f"'{step}' needs aggregated labels: put an 'aggregate' step before it")
    return state.labels


def keep_tasks(state: LabelState, tasks: pd.Index | pd.Series | np.ndarray, **changes: Any) -> LabelState:
    """A new state restricted to ``tasks`` (items, judgements, labels and soft labels)."""
    tasks = pd.Index(tasks)
    labels = state.labels if state.labels is None else state.labels[state.labels.index.isin(tasks)]
    soft = state.soft_labels if state.soft_labels is None else state.soft_labels[state.soft_labels.index.isin(tasks)]
    update: dict[str, Any] = {
        "items": state.items[isin(state.items["task"], pd.Series(list(tasks), dtype=object))],
        "annotations": state.annotations[isin(state.annotations["task"], pd.Series(list(tasks), dtype=object))],
        "labels": labels,
        "soft_labels": soft,
    }
    update.update(changes)
    return state.evolve(**update)


def change_rows(tasks: Any, step: str, before: Any, after: Any, cause: Any, worker: Any = None) -> pd.DataFrame:
    """Change-record rows in ``CHANGE_COLUMNS`` order; ``worker`` for changes to judgements."""
    return pd.DataFrame(
        {"task": tasks, "step": step, "label_before": before, "label_after": after, "cause": cause, "worker": worker},
        columns=CHANGE_COLUMNS,
    )


def removal_rows(removed: pd.DataFrame, step: str, cause: Any) -> pd.DataFrame:
    """Change-record rows for judgements a step dropped (``label_after`` empty), one per judgement."""
    return change_rows(
        removed["task"].to_numpy(), step, removed["label"].to_numpy(), None, cause, removed["worker"].to_numpy()
    )


class Treatment(Protocol):
    """A lever an annotation-operations team pulls, applied as one step of an arm."""

    name: ClassVar[str]
    Params: ClassVar[type[TreatmentParams]]
    metrics_: dict[str, float]

    def __init__(self, params: TreatmentParams) -> None: ...

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState: ...
