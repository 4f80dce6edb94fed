"""Train/dev/test splits for data that has none (``dataset.split``).

Deterministic given the seed and the data (not its row order): items are the unit (``by: task``);
items that must stay together form one unit: items sharing a ``group`` value (an author, a
conversation) and items with the same text (case and whitespace aside), so a split never leaks a
text into another. Units are dealt per stratum (the item's majority label, or an item column) so
that each split gets its share of every stratum: with one item per unit, each split's count in a
stratum is within one item of ``ratio x items in the stratum`` (largest-remainder rounding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smo_impact.data.schema import SPLITS, vote_counts
from smo_impact.data.validation import codes, factorize, first_positions, normalized_text
from smo_impact.errors import DataError, listing, shown

if TYPE_CHECKING:
    from smo_impact.config import SplitSpec

MISSING = "(missing)"


def quotas(n: int, ratios: np.ndarray) -> np.ndarray:
    """``n`` items shared by ``ratios`` with largest-remainder rounding (ties: the earlier split).

    Each share is within one item of ``n * ratio`` and the shares sum to ``n``.
    """
    exact = n * ratios
    out = np.floor(exact + 1e-9).astype(np.int64)
    left = n - int(out.sum())
    if left > 0:
        order = np.argsort(-(exact - out), kind="stable")
        out[order[:left]] += 1
    return out


def _units(tasks: pd.DataFrame, group: str | None) -> np.ndarray:
    """Connected items: the same group value or the same normalised text -> one unit code each."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(tasks)
    keys = [factorize(normalized_text(tasks["text"]))]
    if group is not None:
        values = tasks[group]
        # A missing group value keeps the item on its own (with the items of the same text).
        own = np.arange(n) + (int(factorize(values).max()) + 1 if n else 0)
        keys.append(np.where(values.notna().to_numpy(), factorize(values), own))
    rows, cols, offset = [], [], n
    for key in keys:
        rows.append(np.arange(n))
        cols.append(key + offset)
        offset += int(key.max()) + 1 if n else 0
    rows_, cols_ = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows_)), (rows_, cols_)), shape=(offset, offset))
    _, labels = connected_components(graph, directed=False)
    return factorize(pd.Series(labels[:n]))


def _strata(tasks: pd.DataFrame, rows: pd.DataFrame, spec: SplitSpec, labels: tuple) -> tuple[np.ndarray, list[str]]:
    """Each item's stratum code and the strata's display names."""
    if spec.stratify is None:
        return np.zeros(len(tasks), dtype=np.int64), ["all"]
    if spec.stratify == "label":
        # The majority label; a tie goes to the label declared first (benign before harmful).
        counts = vote_counts(rows, labels).reindex(tasks["task"].to_numpy())
        majority = counts.to_numpy().argmax(axis=1)
        return majority, [str(v) for v in labels]
    values = tasks[spec.stratify].astype(object).where(tasks[spec.stratify].notna(), MISSING).astype("str")
    names = sorted(values.unique())
    return pd.Index(names).get_indexer(values), names


def _deal(sizes: np.ndarray, stratum_of: np.ndarray, n_strata: int, ratios: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each unit's split. Per stratum, in a random order: first one of the smallest units to each
    split owed at least one item (smallest quota first), so a split is not left without the stratum
    because big groups filled the others; then the rest, largest first, each to the split furthest
    below its quota of items. Splits with ratio 0 get none. With single-item units this meets every
    quota exactly."""
    split_of = np.full(len(sizes), -1, dtype=np.int64)
    open_splits = np.flatnonzero(ratios > 0)
    for stratum in range(n_strata):
        members = np.flatnonzero(stratum_of == stratum)
        if not len(members):
            continue
        shuffled = members[rng.permutation(len(members))]
        target = quotas(int(sizes[members].sum()), ratios)
        filled = np.zeros(len(ratios), dtype=np.int64)
        owed = [s for s in open_splits[np.argsort(target[open_splits], kind="stable")] if target[s] >= 1]
        smallest = shuffled[np.argsort(sizes[shuffled], kind="stable")]
        for split, unit in zip(owed, smallest):
            split_of[unit] = split
            filled[split] += sizes[unit]
        rest = shuffled[split_of[shuffled] < 0]
        for unit in rest[np.argsort(-sizes[rest], kind="stable")]:
            deficit = target[open_splits] - filled[open_splits]
            choice = open_splits[int(np.argmax(deficit))]  # ties: the earlier split
            split_of[unit] = choice
            filled[choice] += sizes[unit]
    return split_of


def assign_splits(rows: pd.DataFrame, spec: SplitSpec, labels: tuple, source: str) -> pd.DataFrame:
    """Give every judgement row its item's split under ``spec`` (see the module docstring).

    Raises:
        DataError: a named column is missing, or a stratum (or the whole data) has too few items
            or groups to put one in every split with a ratio above 0.
    """
    for key, column in (("group", spec.group), ("stratify", spec.stratify)):
        if column is not None and not (key == "stratify" and column == "label") and column not in rows.columns:
            found = listing(sorted(c for c in rows.columns if not str(c).startswith("_")))
            raise DataError(
                f"{source}: dataset.split.{key} names column {shown(column)}, which is not in the data; found: {found}"
                + (". Use stratify: label for the majority label, or null" if key == "stratify" else "; or set group: null")
            )
    task = codes(rows, "task")
    first = first_positions(task)
    present = np.unique(task)
    # Items in task-id order, so the result depends on the data and the seed, not on row order.
    present = present[np.argsort(rows["task"].iloc[first[present]].to_numpy(dtype=str), kind="stable")]
    tasks = rows.iloc[first[present]].reset_index(drop=True)
    ratios = np.array([getattr(spec, s) for s in SPLITS], dtype=float)

    unit = _units(tasks, spec.group)
    stratum, names = _strata(tasks, rows, spec, labels)
    n_units = int(unit.max()) + 1 if len(unit) else 0
    sizes = np.bincount(unit, minlength=n_units)
    # A unit's stratum: the most common among its items (ties: the first stratum).
    cross = np.zeros((n_units, len(names)), dtype=np.int64)
    np.add.at(cross, (unit, stratum), 1)
    unit_stratum = cross.argmax(axis=1)

    unit_split = _deal(sizes, unit_stratum, len(names), ratios, np.random.default_rng(spec.seed))
    _check_every_split_gets_each_stratum(unit_split, unit_stratum, sizes, names, ratios, spec, source)
    split_of_task = np.full(int(task.max()) + 1 if len(task) else 0, -1, dtype=np.int64)
    split_of_task[present] = unit_split[unit]
    return rows.assign(split=np.asarray(SPLITS, dtype=object)[split_of_task[task]])


def _check_every_split_gets_each_stratum(
    unit_split: np.ndarray, unit_stratum: np.ndarray, sizes: np.ndarray, names: list[str], ratios: np.ndarray,
    spec: SplitSpec, source: str,
) -> None:
    wanted = [i for i in range(len(SPLITS)) if ratios[i] > 0]
    shares = "/".join(f"{r:g}" for r in ratios)
    for stratum, name in enumerate(names):
        mine = unit_stratum == stratum
        if not mine.any():
            continue
        empty = [SPLITS[i] for i in wanted if not (unit_split[mine] == i).any()]
        if not empty:
            continue
        n_items, n_units = int(sizes[mine].sum()), int(mine.sum())
        held = f" in {n_units} group(s) (dataset.split.group, and items sharing a text)" if n_units < n_items else ""
        splits = ", ".join(SPLITS[i] for i in wanted)
        if spec.stratify is None:
            raise DataError(
                f"{source}: dataset.split: {n_items} item(s){held} are too few to put one in each of {splits} at "
                f"{shares} ({' and '.join(empty)} would get none); add items or set that split's ratio to 0"
            )
        what = "majority label" if spec.stratify == "label" else f"column {shown(spec.stratify)} value"
        raise DataError(
            f"{source}: dataset.split.stratify: {what} {shown(name)} has {n_items} item(s){held}, too few to put one "
            f"in each of {splits} at {shares} ({' and '.join(empty)} would get none); merge it with another class, "
            "drop those items (dataset.where), or set dataset.split.stratify: null"
        )

