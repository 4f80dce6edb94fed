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


def contested_items(
    annotations: pd.DataFrame, labels: tuple | list, items: pd.DataFrame | None = None, top: int = 10
) -> pd.DataFrame:
    """The items the raters split on most: highest vote entropy first.

    An item's vote entropy is 0 when its raters are unanimous and highest when the votes are spread
    evenly over the labels (1 bit for a 2-2 or 3-3 binary split); ties go to the item with more
    judgements (more evidence of a real split), then to the task id. Unanimous items and items with
    one judgement are never contested.

    Args:
        annotations: Judgements (``task``, ``worker``, ``label``).
        labels: The declared label set, in order.
        items: Optional items table; its ``text`` column is copied next to each task.
        top: How many items to return.

    Returns:
        Columns ``task``, ``text`` (when ``items`` has it), ``votes`` (e.g. ``"1: 3, 0: 2"``, most
        chosen label first), ``judgements``, ``minority_share`` (share of votes not for the top
        label) and ``entropy`` (bits), most contested first.
    """
    counts = vote_counts(annotations, labels)
    difficulty = item_difficulty(annotations, labels)
    split = difficulty[(difficulty["entropy"] > 0) & (difficulty["judgements"] >= 2)].reset_index()
    # Rounded, so that equal splits tie exactly whatever order their labels were summed in.
    split["_rank"] = split["entropy"].round(9)
    split = split.sort_values(["_rank", "judgements", "task"], ascending=[False, False, True], kind="stable").head(top)
    votes = []
    for task in split["task"]:
        row = counts.loc[task]
        ranked = sorted(((int(n), i) for i, n in enumerate(row.to_numpy()) if n > 0), key=lambda t: (-t[0], t[1]))
        votes.append(", ".join(f"{labels[i]}: {n}" for n, i in ranked))
    table = pd.DataFrame({
        "task": split["task"].to_numpy(),
        "votes": votes,
        "judgements": split["judgements"].to_numpy(),
        "minority_share": 1.0 - split["agreement"].to_numpy(),
        "entropy": split["entropy"].to_numpy(),
    })
    if items is not None and "text" in items.columns:
        table.insert(1, "text", items.set_index("task")["text"].reindex(table["task"]).to_numpy())
    return table
