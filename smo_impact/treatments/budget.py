"""Annotation budget: spend a fixed budget as items x judgements per item."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from smo_impact.treatments.base import LabelState, TreatmentParams, keep_tasks, removal_rows, require_judgements


class Budget:
    """Keep as many items as ``budget`` buys at ``per_item`` judgements each.

    Cost model: every judgement costs ``cost_per_judgement``, unless the rater's pool sets it,
    either from a workers-table column (``cost_column``) or per pool from the config
    (``pool_column`` + ``pool_costs``, e.g. experts 5.0, crowd 1.0). Items are visited in a
    seeded random order; for each, ``per_item`` of its judgements are chosen at random; items are
    bought while the running cost stays within the budget. Items with fewer than ``per_item``
    judgements cannot be bought. At a fixed seed the item order is the same for every
    ``per_item``, so arms differ only in how the budget is spent.

    Runs before ``aggregate``; the change record has one row per judgement not bought. Metrics: ``treatment/cost``, ``treatment/budget``,
    ``treatment/budget_items``, ``treatment/budget_per_item``, ``treatment/budget_items_too_few``.
    """

    name: ClassVar[str] = "budget"
    requires_judgements: ClassVar[bool] = True  # checked at validation: comes before 'aggregate'
    preflight: ClassVar[bool] = True  # cheap: the runner tries it on the data before any run

    class Params(TreatmentParams):
        budget: float = Field(gt=0.0, description="Total spend, in cost units.")
        per_item: int = Field(1, ge=1, description="Judgements bought per item.")
        cost_per_judgement: float = Field(1.0, gt=0.0, description="Default cost of one judgement.")
        cost_column: str | None = Field(None, description="Workers-table column with each rater's cost per judgement.")
        pool_column: str | None = Field(None, description="Workers-table (or annotations) column naming the rater pool.")
        pool_costs: dict[str, float] | None = Field(None, description="Cost per judgement for each pool value.")

        @model_validator(mode="after")
        def _one_cost_model(self) -> Budget.Params:
            if (self.pool_column is None) != (self.pool_costs is None):
                raise ValueError("pool_column and pool_costs go together")
            if self.cost_column is not None and self.pool_column is not None:
                raise ValueError("give cost_column or pool_column + pool_costs, not both")
            return self

    def __init__(self, params: Params) -> None:
        self.params = params

    def judgement_costs(self, state: LabelState) -> np.ndarray:
        """Cost of each judgement of ``state.annotations`` under the cost model."""
        p = self.params
        ann = state.annotations
        column = p.cost_column or p.pool_column
        if column is None:
            return np.full(len(ann), p.cost_per_judgement)
        values: Any
        if state.workers is not None and column in state.workers.columns:
            values = ann["worker"].map(state.workers.set_index("worker")[column])
        elif column in ann.columns:
            values = ann[column]
        else:
            raise ValueError(f"budget: column '{column}' is in neither the workers table nor the annotations")
        if p.pool_costs is not None:
            costs = values.astype(str).map(p.pool_costs)
            if costs.isna().any():
                unknown = sorted(set(values.astype(str)[costs.isna()]))
                raise ValueError(f"budget.pool_costs has no cost for pool(s) {unknown}; pools: {sorted(p.pool_costs)}")
            return costs.to_numpy(dtype=float)
        costs = pd.to_numeric(values, errors="coerce")
        return costs.fillna(p.cost_per_judgement).to_numpy(dtype=float)

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        require_judgements(state, self.name)
        p = self.params
        ann = state.annotations
        tasks = np.sort(ann["task"].unique())
        # Draw the item order first so it does not depend on per_item (common random numbers).
        order = pd.Series(rng.permutation(len(tasks)), index=tasks)
        rank = pd.Series(rng.random(len(ann)), index=ann.index).groupby(ann["task"].to_numpy()).rank(method="first")
        chosen = ann.loc[(rank <= p.per_item).to_numpy()].copy()
        chosen["cost"] = self.judgement_costs(state)[(rank <= p.per_item).to_numpy()]
        per_item = chosen.groupby("task").agg(n=("cost", "size"), cost=("cost", "sum"))
        eligible = per_item[per_item["n"] == p.per_item]
        eligible = eligible.assign(order=order.reindex(eligible.index)).sort_values("order")
        bought = eligible.index[eligible["cost"].cumsum().to_numpy() <= p.budget + 1e-9]
        if len(bought) == 0:
            raise ValueError(
                f"budget {p.budget} buys no item at {p.per_item} judgement(s) per item "
                f"(cheapest item costs {eligible['cost'].min() if len(eligible) else 'n/a'})"
            )
        kept = chosen[chosen["task"].isin(bought)]
        dropped = ann[~((rank <= p.per_item).to_numpy() & ann["task"].isin(bought).to_numpy())]
        self.cost_ = float(kept["cost"].sum())
        self.metrics_ = {
            "treatment/cost": self.cost_,
            "treatment/budget": float(p.budget),
            "treatment/budget_items": float(len(bought)),
            "treatment/budget_per_item": float(p.per_item),
            "treatment/budget_items_too_few": float(len(per_item) - len(eligible)),
        }
        changes = removal_rows(dropped, self.name, f"budget {p.budget:g} at {p.per_item} per item: not bought")
        return keep_tasks(state, bought, annotations=kept.drop(columns="cost")).with_changes(changes)
