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


def judgement_costs(annotations: pd.DataFrame, workers: pd.DataFrame | None, costs: CostSpec) -> pd.Series:
    """The cost of each judgement (index of ``annotations``).

    Raises:
        ValueError: when a pool in use has no cost in ``costs.pools``.
    """
    pools = judgement_pools(annotations, workers, costs)
    named = costs.workers or {}
    if costs.pools is None:
        return pools.map(lambda pool: named.get(pool, costs.per_judgement)).astype(float)
    priced = pools.map({**costs.pools, **named})
    if priced.isna().any():
        missing = sorted(set(pools[priced.isna()]))
        raise ValueError(
            f"costs.pools has no cost for pool(s) {', '.join(repr(m) for m in missing)} of column "
            f"'{costs.column}', which rate(s) judgements in use; add costs.pools.{missing[0]}: <cost per judgement> "
            f"(priced now: {', '.join(sorted(costs.pools)) or 'none'})"
        )
    return priced.astype(float)


def cost_metrics(annotations: pd.DataFrame, workers: pd.DataFrame | None, costs: CostSpec, rounds: int) -> dict[str, float]:
    """``treatment/cost`` (judgements + ``rounds`` x ``per_round``) and ``treatment/cost/<pool>``
    (``treatment/cost/rounds`` for the fixed part) of the judgements a design used."""
    prices = judgement_costs(annotations, workers, costs)
    by_pool = prices.groupby(judgement_pools(annotations, workers, costs).to_numpy()).sum()
    fixed = float(rounds * costs.per_round)
    out = {f"treatment/cost/{pool}": float(value) for pool, value in by_pool.items()}
    if costs.per_round:
        out["treatment/cost/rounds"] = fixed
    out["treatment/cost"] = float(np.sum(prices.to_numpy())) + fixed
    return out
