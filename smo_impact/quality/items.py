"""Item difficulty: how split the raters were on each item."""

from __future__ import annotations

import numpy as np
import pandas as pd

from smo_impact.data.schema import vote_counts


def item_difficulty(annotations: pd.DataFrame, labels: tuple | list) -> pd.DataFrame:
    """Per item: judgements, majority votes, agreement level and vote entropy.

    Args:
        annotations: Judgements (``task``, ``worker``, ``label``).
        labels: The declared label set, in order.

    Returns:
        One row per task (index ``task``): ``judgements``, ``top_votes`` (votes for the most
        chosen label), ``level`` (e.g. ``"4/5"``: 4 of 5 raters chose the top label),
        ``agreement`` (top_votes / judgements) and ``entropy`` (of the vote distribution, bits;
        0 = unanimous, 1 = an even binary split).
    """
    counts = vote_counts(annotations, labels)
    values = counts.to_numpy().astype(float)
    m = values.sum(axis=1)
    top = values.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = values / m[:, None]
        entropy = -np.nansum(np.where(p > 0, p * np.log2(p), 0.0), axis=1)
    return pd.DataFrame(
        {
            "judgements": m.astype(int),
            "top_votes": top.astype(int),
            "level": [f"{int(t)}/{int(n)}" for t, n in zip(top, m)],
            "agreement": top / np.where(m > 0, m, 1),
            "entropy": entropy + 0.0,  # turn -0.0 into 0.0
        },
        index=counts.index,
    )


def agreement_levels(difficulty: pd.DataFrame) -> pd.DataFrame:
    """Share of items at each agreement level (``5/5``, ``4/5``, ``3/5``, ...).

    Levels are ordered by number of judgements, then from unanimous down.

    Returns:
        Columns ``level``, ``judgements``, ``top_votes``, ``items``, ``share``.
    """
    table = (
        difficulty.groupby(["judgements", "top_votes"], sort=True)
        .size()
        .rename("items")
        .reset_index()
        .sort_values(["judgements", "top_votes"], ascending=[True, False], ignore_index=True)
    )
    table.insert(0, "level", [f"{t}/{n}" for t, n in zip(table["top_votes"], table["judgements"])])
    table["share"] = table["items"] / table["items"].sum() if len(table) else []
    return table
