"""Unit costs: what each judgement costs under the experiment's ``costs`` config (:class:`CostSpec`).

One definition of a judgement's price, used by the runner (every arm's ``treatment/cost``) and by
steps that spend a budget (``acquire``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smo_impact.config import CostSpec

DEFAULT_COSTS = CostSpec()  # 1 per judgement, no fixed cost
ALL_POOLS = "all"  # the pool name of every judgement when costs has no column


def judgement_pools(annotations: pd.DataFrame, workers: pd.DataFrame | None, costs: CostSpec) -> pd.Series:
    """The pool of each judgement (index of ``annotations``): the worker's name for raters priced by
    ``costs.workers``, else its ``costs.column`` value, as text."""
    pools = _column_pools(annotations, workers, costs)
    if costs.workers:
        named = annotations["worker"].astype(str)
        pools = pools.where(~named.isin(list(costs.workers)), named)
    return pools


def _column_pools(annotations: pd.DataFrame, workers: pd.DataFrame | None, costs: CostSpec) -> pd.Series:
    if costs.column is None:
        return pd.Series(ALL_POOLS, index=annotations.index, dtype=object)
    if workers is not None and costs.column in workers.columns:
        values = annotations["worker"].map(workers.drop_duplicates("worker").set_index("worker")[costs.column])
    elif costs.column in annotations.columns:
        values = annotations[costs.column]
    else:
        found = sorted(set(annotations.columns) | set(workers.columns if workers is not None else []))
        raise ValueError(
            f"costs.column: '{costs.column}' is in neither the workers table nor the annotations; found: "
            f"{', '.join(map(str, found))}; set costs.column to one of those"
        )
    return values.map(lambda v: "(none)" if pd.isna(v) else str(v)).astype(object)


def judgement_costs(
    annotations: pd.DataFrame, workers: pd.DataFrame | None, costs: CostSpec, items: pd.DataFrame | None = None
) -> pd.Series:
    """The cost of each judgement (index of ``annotations``); ``items`` (``task``, ``text``) for
    ``costs.per_char``.

    Raises:
        ValueError: when a pool in use has no cost in ``costs.pools``.
    """
    pools = judgement_pools(annotations, workers, costs)
    named = costs.workers or {}
    if costs.pools is None:
        return pools.map(lambda pool: named.get(pool, costs.per_judgement)).astype(float) + _length_cost(annotations, costs, items)
    priced = pools.map({**costs.pools, **named})
    if priced.isna().any():
        missing = sorted(set(pools[priced.isna()]))
        raise ValueError(
            f"costs.pools has no cost for pool(s) {', '.join(repr(m) for m in missing)} of column "
            f"'{costs.column}', which rate(s) judgements in use; add costs.pools.{missing[0]}: <cost per judgement> "
            f"(priced now: {', '.join(sorted(costs.pools)) or 'none'})"
        )
    return priced.astype(float) + _length_cost(annotations, costs, items)


def _length_cost(annotations: pd.DataFrame, costs: CostSpec, items: pd.DataFrame | None) -> pd.Series:
    """``per_char`` x the length of each judgement's item text (0 for raters named in ``costs.workers``)."""
    if not costs.per_char:
        return pd.Series(0.0, index=annotations.index)
    if items is None or "text" not in items.columns:
        raise ValueError("costs.per_char prices judgements by their item's text, but the items carry no text; drop costs.per_char")
    length = annotations["task"].map(items.drop_duplicates("task").set_index("task")["text"].astype(str).str.len())
    named = annotations["worker"].astype(str).isin(list(costs.workers or {}))
    return (length.fillna(0.0).astype(float) * costs.per_char).where(~named, 0.0)


def cost_metrics(
    annotations: pd.DataFrame, workers: pd.DataFrame | None, costs: CostSpec, rounds: int, items: pd.DataFrame | None = None
) -> dict[str, float]:
    """``treatment/cost`` (judgements + ``rounds`` x ``per_round``) and ``treatment/cost/<pool>``
    (``treatment/cost/rounds`` for the fixed part) of the judgements a design used."""
    prices = judgement_costs(annotations, workers, costs, items)
    by_pool = prices.groupby(judgement_pools(annotations, workers, costs).to_numpy()).sum()
    fixed = float(rounds * costs.per_round)
    out = {f"treatment/cost/{pool}": float(value) for pool, value in by_pool.items()}
    if costs.per_round:
        out["treatment/cost/rounds"] = fixed
    out["treatment/cost"] = float(np.sum(prices.to_numpy())) + fixed
    return out
