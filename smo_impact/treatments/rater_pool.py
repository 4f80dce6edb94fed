"""Rater pools: which of the real raters' judgements the training labels are built from."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from smo_impact.data.schema import positions_in, vote_counts
from smo_impact.treatments.base import LabelState, TreatmentParams, keep_tasks, removal_rows, require_judgements


def leave_one_out_agreement(annotations: pd.DataFrame) -> pd.Series:
    """Per worker: mean agreement of their judgements with the majority of the *other* raters.

    A judgement on an item nobody else rated is not scored; a tie among the other raters scores
    the fraction of tied labels the judgement matches (1/2 for a 1-1 binary tie).
    """
    labels = pd.unique(annotations["label"])
    counts = vote_counts(annotations, tuple(labels))
    row = counts.index.get_indexer(annotations["task"].to_numpy())
    own = positions_in(annotations["label"], labels)
    others = counts.to_numpy()[row].copy()
    others[np.arange(len(own)), own] -= 1  # the others' votes: remove this judgement's own
    top = others.max(axis=1)
    n_top = (others == top[:, None]).sum(axis=1)
    scored = top > 0
    hit = others[np.arange(len(own)), own] == top
    score = pd.Series(np.where(hit, 1.0 / n_top, 0.0)[scored], index=annotations["worker"].to_numpy()[scored])
    return score.groupby(level=0).mean().rename("agreement").rename_axis("worker")


def _at_most_k(annotations: pd.DataFrame, keep: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``keep`` narrowed to at most ``k`` judgements per item, chosen at random (seeded)."""
    # A random key per judgement, then the k smallest keys of each item.
    order = pd.Series(rng.random(len(annotations)), index=annotations.index)[keep]
    rank = order.groupby(annotations["task"].to_numpy()[keep]).rank(method="first")
    out = np.zeros(len(annotations), dtype=bool)
    out[np.flatnonzero(keep)[(rank <= k).to_numpy()]] = True
    return out


class RaterPool:
    """Keep the judgements of a pool of real raters.

    ``by``:
        ``attribute``: raters whose ``column`` (workers table, else an annotations column) has one
        of ``values``, e.g. HS-Brexit's target group.
        ``quality``: the ``fraction`` of raters with the highest (``keep: top``) or lowest
        (``bottom``) agreement with the leave-one-out majority (``quality_`` holds the scores).
        ``per_item``: ``k`` judgements per item, chosen at random (seeded); items with fewer keep all.
        ``random``: ``n_raters`` raters chosen at random (seeded).

    With another ``by``, ``k`` then keeps at most ``k`` of the pool's judgements per item (seeded),
    so pools of different sizes can be compared at the same number of judgements per item.

    Items left without judgements are dropped. Runs before ``aggregate``. The change record has
    one row per dropped judgement (``label_after`` empty).

    Metrics: ``treatment/pool_raters``, ``treatment/pool_judgements``, ``treatment/pool_items``.
    """

    name: ClassVar[str] = "rater_pool"
    requires_judgements: ClassVar[bool] = True  # checked at validation: comes before 'aggregate'
    preflight: ClassVar[bool] = True  # cheap: the runner tries it on the data before any run

    class Params(TreatmentParams):
        by: Literal["attribute", "quality", "per_item", "random"] = Field(description="How the pool is chosen.")
        column: str | None = Field(None, description="by=attribute: workers-table (or annotations) column.")
        values: list[Any] | None = Field(None, description="by=attribute: the column values to keep.")
        fraction: float | None = Field(None, gt=0.0, le=1.0, description="by=quality: share of raters kept.")
        keep: Literal["top", "bottom"] = Field("top", description="by=quality: best or worst raters.")
        k: int | None = Field(
            None, ge=1, description="by=per_item: judgements kept per item; with another by: at most k per item of the pool."
        )
        n_raters: int | None = Field(None, ge=1, description="by=random: raters kept.")

        @model_validator(mode="after")
        def _needs(self) -> RaterPool.Params:
            required = {"attribute": ("column", "values"), "quality": ("fraction",), "per_item": ("k",), "random": ("n_raters",)}
            missing = [f for f in required[self.by] if getattr(self, f) is None]
            if missing:
                raise ValueError(f"rater_pool by={self.by} needs {' and '.join(missing)}")
            return self

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        require_judgements(state, self.name)
        p = self.params
        ann = state.annotations
        if p.by == "attribute":
            keep = self._by_attribute(state)
        elif p.by == "quality":
            self.quality_ = leave_one_out_agreement(ann).sort_values(kind="stable")
            n = max(1, int(round(p.fraction * len(self.quality_))))
            chosen = self.quality_.index[-n:] if p.keep == "top" else self.quality_.index[:n]
            keep = ann["worker"].isin(chosen).to_numpy()
        elif p.by == "per_item":
            keep = _at_most_k(ann, np.ones(len(ann), dtype=bool), p.k, rng)
        else:
            workers = np.sort(ann["worker"].unique())
            if p.n_raters > len(workers):
                raise ValueError(f"rater_pool n_raters={p.n_raters} but only {len(workers)} raters have judgements")
            chosen = rng.choice(workers, size=p.n_raters, replace=False)
            keep = ann["worker"].isin(chosen).to_numpy()
        if p.k is not None and p.by != "per_item":
            keep = _at_most_k(ann, keep, p.k, rng)
        kept = ann.loc[keep]
        if kept.empty:
            raise ValueError(f"rater_pool {p.model_dump(exclude_none=True)} keeps no judgements")
        self.workers_ = pd.Index(np.sort(kept["worker"].unique()))
        tasks = kept["task"].unique()
        self.metrics_ = {
            "treatment/pool_raters": float(len(self.workers_)),
            "treatment/pool_judgements": float(len(kept)),
            "treatment/pool_items": float(len(tasks)),
        }
        if p.by == "quality":
            self.artifacts_ = {"rater_quality": self.quality_.to_frame()}
        dropped = removal_rows(ann.loc[~keep], self.name, f"rater_pool by={p.by}: not in the pool")
        return keep_tasks(state, tasks, annotations=kept).with_changes(dropped)

    def _by_attribute(self, state: LabelState) -> np.ndarray:
        p = self.params
        ann = state.annotations
        if state.workers is not None and p.column in state.workers.columns:
            workers = state.workers.set_index("worker")[p.column]
            values = ann["worker"].map(workers)
        elif p.column in ann.columns:
            values = ann[p.column]
        else:
            found = sorted(set(ann.columns) | set(state.workers.columns if state.workers is not None else []))
            raise ValueError(
                f"rater_pool: column '{p.column}' is in neither the workers table nor the annotations; "
                f"found: {', '.join(map(str, found))}"
            )
        keep = values.isin(p.values).to_numpy()
        if not keep.any():
            present = sorted(map(str, pd.unique(values.dropna())))
            raise ValueError(
                f"rater_pool: no rater has {p.column} in {p.values}; values present: {', '.join(present)}; "
                "pick rater_pool.values from those"
            )
        return keep
