"""Aggregation: turn several judgements per item into one training label."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from smo_impact.data.schema import vote_counts
from smo_impact.treatments.base import LabelState, TreatmentParams

TIE_RULES = ("positive", "negative", "random", "drop")


def majority_vote(
    annotations: pd.DataFrame,
    labels_set: tuple,
    positive_label: object,
    tie: str = "positive",
    rng: np.random.Generator | None = None,
) -> pd.Series:
    """Majority label per task.

    Ties: ``positive`` gives the positive label when it is among the tied labels, else the tied
    label latest in the declared order (labels are declared from benign to harmful); ``negative``
    the earliest tied label other than the positive one; ``random`` a seeded uniform choice among
    the tied labels; ``drop`` leaves the item out.
    """
    counts = vote_counts(annotations, labels_set)
    values = counts.to_numpy()
    is_top = values == values.max(axis=1, keepdims=True)
    n_top = is_top.sum(axis=1)
    labels = np.asarray(labels_set, dtype=object)
    pos_index = list(labels_set).index(positive_label)

    # Preference order among tied labels, as a score per column: highest wins.
    if tie == "positive":
        preference = np.arange(len(labels_set), dtype=float)
        preference[pos_index] = len(labels_set)
    elif tie == "negative":
        preference = -np.arange(len(labels_set), dtype=float)
        preference[pos_index] = -len(labels_set)
    elif tie == "random":
        if rng is None:
            raise ValueError("tie='random' needs a random generator")
        preference = None
    elif tie == "drop":
        preference = np.zeros(len(labels_set))
    else:
        raise ValueError(f"tie must be one of {TIE_RULES}, got {tie!r}")

    if preference is None:
        noise = rng.random(values.shape)
        choice = np.where(is_top, noise, -1.0).argmax(axis=1)
    else:
        choice = np.where(is_top, preference[None, :], -np.inf).argmax(axis=1)
    result = pd.Series(labels[choice], index=counts.index, name="label")
    if tie == "drop":
        result = result[n_top == 1]
    return result.infer_objects()


class Aggregate:
    """Aggregate judgements into training labels (majority vote with a stated tie rule).

    Metrics: ``treatment/aggregate_ties`` (items whose top labels tied) and
    ``treatment/aggregate_dropped`` (items left out by ``tie: drop``).
    """

    name: ClassVar[str] = "aggregate"

    class Params(TreatmentParams):
        method: Literal["majority"] = Field("majority", description="Aggregation method.")
        tie: Literal["positive", "negative", "random", "drop"] = Field(
            "positive", description="What a tied vote becomes; positive = flag when in doubt."
        )

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        labels = majority_vote(
            state.annotations, state.labels_set, state.positive_label, self.params.tie, rng
        )
        counts = vote_counts(state.annotations, state.labels_set).to_numpy()
        ties = int(((counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
        dropped = int(state.items["task"].nunique() - len(labels))
        self.labels_ = labels
        self.metrics_ = {
            "treatment/aggregate_ties": float(ties),
            "treatment/aggregate_dropped": float(dropped),
        }
        items = state.items[state.items["task"].isin(labels.index)]
        annotations = state.annotations[state.annotations["task"].isin(labels.index)]
        return state.evolve(items=items, annotations=annotations, labels=labels)
