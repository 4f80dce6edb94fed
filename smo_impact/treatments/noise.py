"""Label noise injection: what if a share of our training labels were wrong?"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from smo_impact.treatments.base import CHANGE_COLUMNS, LabelState, TreatmentParams


def flip_matrix(before: pd.Series, after: pd.Series, labels_set: tuple) -> pd.DataFrame:
    """Row-normalised transition matrix P(after | before) over the declared labels."""
    index = pd.Index(list(labels_set))
    k = len(index)
    flat = index.get_indexer(before.to_numpy()) * k + index.get_indexer(after.to_numpy())
    counts = np.bincount(flat, minlength=k * k).reshape(k, k).astype(float)
    rows = counts.sum(axis=1, keepdims=True)
    matrix = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    return pd.DataFrame(matrix, index=list(labels_set), columns=list(labels_set))


class Noise:
    """Symmetric label noise at the aggregated-label level.

    Each training label flips with probability ``rate`` to a different label chosen uniformly
    (binary: the other class). Seeded by the run's generator; the flips are drawn with one uniform
    per item in task order, so at a fixed seed a higher rate flips a superset of the items a
    lower rate flips (common random numbers make a sweep's dose-response smooth).

    Metrics: ``treatment/realized_flip_rate``, ``treatment/labels_flipped`` and the realised
    flip matrix ``treatment/flip_matrix/<from>_to_<to>``.
    """

    name: ClassVar[str] = "noise"

    class Params(TreatmentParams):
        rate: float = Field(0.1, ge=0.0, le=1.0, description="Probability that a label flips.")
        level: Literal["aggregated"] = Field(
            "aggregated", description="Where noise is injected: the aggregated training label."
        )

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        if state.labels is None:
            raise ValueError("noise needs aggregated labels: put an 'aggregate' step before it")
        before = state.labels.sort_index()
        uniforms = rng.random(len(before))
        flip = uniforms < self.params.rate
        labels = np.asarray(state.labels_set, dtype=object)
        index_of = {lab: i for i, lab in enumerate(state.labels_set)}
        current = np.array([index_of[v] for v in before.to_numpy()], dtype=int)
        # Uniform choice among the other labels: shift by 1..k-1 positions.
        shift = rng.integers(1, len(labels), size=len(before)) if len(labels) > 2 else np.ones(len(before), int)
        new_index = np.where(flip, (current + shift) % len(labels), current)
        after = pd.Series(labels[new_index], index=before.index, name="label").infer_objects()

        matrix = flip_matrix(before, after, state.labels_set)
        self.flip_matrix_ = matrix
        self.flipped_ = before.index[flip]
        self.metrics_ = {
            "treatment/realized_flip_rate": float(flip.mean()) if len(flip) else 0.0,
            "treatment/labels_flipped": float(flip.sum()),
        }
        for a in state.labels_set:
            for b in state.labels_set:
                self.metrics_[f"treatment/flip_matrix/{a}_to_{b}"] = float(matrix.loc[a, b])
        changes = pd.DataFrame(
            {
                "task": before.index[flip],
                "step": self.name,
                "label_before": before.to_numpy()[flip],
                "label_after": after.to_numpy()[flip],
                "cause": f"symmetric noise rate={self.params.rate}",
            },
            columns=CHANGE_COLUMNS,
        )
        return state.evolve(labels=after).with_changes(changes)
