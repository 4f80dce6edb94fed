"""Checks every dataset passes before a run: each problem is one line naming file, column, rows
and value, and what was expected.

The loaders carry two bookkeeping columns on the tables they read, ``_file`` (the file's name)
and ``_row`` (the 1-based data row in that file, header excluded), so that a problem found after
columns were mapped and tables joined can still be pointed at in the user's own file. Built-in
datasets have no such columns and are named by dataset instead.

Problems are errors (:class:`~smo_impact.errors.DataError`); a few things that are legal but
worth knowing are :class:`DataWarning` warnings.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from smo_impact.data.schema import SPLITS, isin
from smo_impact.errors import DataError

FILE, ROW = "_file", "_row"
BOOKKEEPING = (FILE, ROW)

DuplicatePolicy = Literal["error", "first", "last"]
LeakagePolicy = Literal["error", "dedupe", "warn"]

# Common spellings of our split names in users' files; anything else is an error.
SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev", "development": "dev", "training": "train"}

_MAX_EXAMPLES = 3


class DataWarning(UserWarning):
    """Legal but worth knowing: single-judgement items, raters with very few judgements."""


def where(frame: pd.DataFrame, mask: pd.Series | np.ndarray, default: str) -> str:
    """``'annotations.csv rows 3, 9, 12 (and 4 more)'`` for the rows under ``mask``."""
    hits = frame.loc[mask]
    if ROW not in hits.columns or hits.empty:
        return default
    parts = []
    for name, group in hits.groupby(FILE, sort=False, observed=True):
        rows = group[ROW].tolist()
        shown = ", ".join(str(r) for r in rows[:_MAX_EXAMPLES])
        more = f" (and {len(rows) - _MAX_EXAMPLES} more)" if len(rows) > _MAX_EXAMPLES else ""
        parts.append(f"{name} row{'s' if len(rows) > 1 else ''} {shown}{more}")
        if len(parts) == 2:
            break
    return "; ".join(parts)


def _examples(values: pd.Series | list) -> str:
    values = list(pd.unique(pd.Series(values)))[:_MAX_EXAMPLES]
    return ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values)


# -- required columns ---------------------------------------------------------------------
def require_columns(frame: pd.DataFrame, required: list[str], source: str, column_map: dict[str, str]) -> None:
    """Raise when a column our vocabulary needs is absent, saying how to map it."""
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    found = ", ".join(str(c) for c in frame.columns if c not in BOOKKEEPING)
    mapped = [c for c in missing if c in column_map]
    if mapped:
        c = mapped[0]
        raise DataError(
            f"{source}: column '{column_map[c]}' (mapped to '{c}' by dataset.column_map) is not in "
            f"the file; found: {found}"
        )
    hint = ", ".join(f"{c}: <your column>" for c in missing)
    raise DataError(
        f"{source}: required column(s) {', '.join(repr(c) for c in missing)} missing; found: {found}. "
        f"Map them with dataset.column_map, e.g. column_map: {{{hint}}}"
    )


# -- labels ---------------------------------------------------------------------------------
def coerce_labels(annotations: pd.DataFrame, labels: tuple, source: str) -> pd.DataFrame:
    """Give the ``label`` column the declared labels' type and reject values outside the set.

    Integer label sets accept ``1``, ``"1"`` and ``1.0``; string sets accept anything and compare
    as text. Missing labels are values outside the set, not silently dropped judgements.
    """
    raw = annotations["label"]
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels)
    numbers = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in labels)
    if numbers:
        numeric = pd.to_numeric(raw, errors="coerce")
        ok = numeric.isin(labels).to_numpy(dtype=bool)
    else:
        text = raw.astype("str")
        ok = (text.isin([str(v) for v in labels]) & raw.notna()).to_numpy(dtype=bool)
    if not ok.all():
        bad = ~ok
        values = raw[bad].astype(object).where(raw[bad].notna(), None)
        raise DataError(
            f"{source}: column 'label' has {int(bad.sum())} value(s) outside the declared label "
            f"set: {_examples(values)} at {where(annotations, bad, 'those rows')}; expected one of "
            f"{list(labels)} (dataset.labels)"
        )
    out = annotations.copy()
    if numbers:
        out["label"] = numeric.astype("int64") if ints else numeric.astype("float64")
    else:
        out["label"] = text
    return out


def normalize_splits(items: pd.DataFrame, source: str) -> pd.DataFrame:
    """Map split spellings (``validation`` -> ``dev``) and reject unknown split names."""
    split = items["split"].astype("str").str.strip().str.lower()
    split = split.replace(SPLIT_ALIASES)
    bad = ~split.isin(SPLITS) | items["split"].isna()
    if bad.any():
        raise DataError(
            f"{source}: column 'split' has unknown value(s) {_examples(items.loc[bad, 'split'])} at "
            f"{where(items, bad, 'those rows')}; expected one of {list(SPLITS)} "
            f"(or {', '.join(sorted(SPLIT_ALIASES))})"
        )
    out = items.copy()
    out["split"] = split
    return out


# -- judgements ------------------------------------------------------------------------------
def resolve_duplicates(annotations: pd.DataFrame, policy: DuplicatePolicy, source: str) -> pd.DataFrame:
    """Apply the duplicate (task, worker) policy: error, or keep the first/last in file order."""
    dup = annotations.duplicated(["task", "worker"], keep=False)
    if not dup.any():
        return annotations
    if policy == "error":
        first = annotations.loc[dup].iloc[0]
        same = dup & (annotations["task"] == first["task"]) & (annotations["worker"] == first["worker"])
        n_pairs = int(annotations.loc[dup, ["task", "worker"]].drop_duplicates().shape[0])
        raise DataError(
            f"{source}: {n_pairs} duplicate (task, worker) judgement(s), e.g. task '{first['task']}' "
            f"worker '{first['worker']}' at {where(annotations, same, 'several rows')}; set "
            "dataset.duplicates to first or last to keep one"
        )
    keep = "first" if policy == "first" else "last"
    return annotations.loc[~annotations.duplicated(["task", "worker"], keep=keep)]


def check_known_items(annotations: pd.DataFrame, items: pd.DataFrame, source: str, items_source: str) -> None:
    """Every judgement must refer to an item of the items table."""
    unknown = ~isin(annotations["task"], items["task"])
    if unknown.any():
        raise DataError(
            f"{source}: {int(unknown.sum())} judgement(s) refer to tasks missing from {items_source}, "
            f"e.g. task {_examples(annotations.loc[unknown, 'task'])} at "
            f"{where(annotations, unknown, 'those rows')}"
        )


def check_item_consistency(rows: pd.DataFrame, columns: list[str], source: str) -> None:
    """In a row-per-judgement file, an item's text and other item columns must agree across its
    rows: otherwise which one the model sees would depend on row order."""
    for column in columns:
        pairs = rows[["task", column]].drop_duplicates()
        clash = pairs["task"].duplicated(keep=False)
        if clash.any():
            task = pairs.loc[clash, "task"].iloc[0]
            these = rows["task"] == task
            raise DataError(
                f"{source}: item '{task}' has {int(clash.sum())} different values in item column "
                f"'{column}' at {where(rows, these, 'several rows')}, e.g. "
                f"{_examples(rows.loc[these, column])}; an item's {column} must be the same in every row"
            )


def check_text(items: pd.DataFrame, source: str) -> None:
    """Items need text: the model reads nothing else."""
    empty = items["text"].isna() | (items["text"].astype("str").str.strip() == "")
    if empty.any():
        raise DataError(
            f"{source}: {int(empty.sum())} item(s) with empty text in column 'text', e.g. task "
            f"{_examples(items.loc[empty, 'task'])} at {where(items, empty, 'those items')}; "
            "fill or drop them"
        )


def check_not_empty(annotations: pd.DataFrame, source: str, after: str) -> None:
    if annotations.empty:
        raise DataError(f"{source}: no judgements left {after}; expected at least one")


# -- leakage ---------------------------------------------------------------------------------
_HELD_OUT_RANK = {"train": 0, "dev": 1, "test": 2}


def split_per_task(rows: pd.DataFrame, policy: LeakagePolicy, source: str) -> pd.DataFrame:
    """One split per task. A task listed under several splits is an error, or under ``dedupe``
    keeps only its rows of the most held-out split (test, then dev), so evaluation never shrinks."""
    n_splits = rows.groupby("task", sort=False)["split"].nunique()
    multi = n_splits.index[n_splits > 1]
    if len(multi) == 0:
        return rows
    if policy != "dedupe":
        task = multi[0]
        these = rows["task"] == task
        found = sorted(rows.loc[these, "split"].unique())
        raise DataError(
            f"{source}: {len(multi)} item(s) appear in more than one split, e.g. task '{task}' in "
            f"{' and '.join(found)} at {where(rows, these, 'several rows')}; an item belongs to one "
            "split (set dataset.leakage: dedupe to keep only its most held-out split)"
        )
    rank = rows["split"].map(_HELD_OUT_RANK)
    best = rank.groupby(rows["task"]).transform("max")
    return rows.loc[rank == best]


def normalized_text(text: pd.Series) -> pd.Series:
    """Case- and whitespace-insensitive text key for leakage checks (vectorised string kernels;
    a Python split/join per item took 2.6 s for 200k items)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = pa.array(text.astype("str"), from_pandas=True)
    key = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(arrow), r"\s+", " "))
    return pd.Series(key.to_numpy(zero_copy_only=False), index=text.index)


def text_leakage(items: pd.DataFrame, policy: LeakagePolicy, source: str) -> pd.DataFrame:
    """The same text (case and whitespace aside) in train and a held-out split.

    ``error`` raises, ``dedupe`` drops the copies from the less held-out split (train before dev
    before test, so the test set stays intact), ``warn`` keeps everything and warns.

    Returns:
        The items to keep.
    """
    key = normalized_text(items["text"])
    rank = items["split"].map(_HELD_OUT_RANK)
    top = rank.groupby(key).transform("max")
    leaked = rank < top
    if not leaked.any():
        return items
    example = items.loc[leaked].iloc[0]
    other = items.loc[(key == key[leaked].iloc[0]) & (rank == top[leaked].iloc[0])].iloc[0]
    text = str(example["text"])
    text = text if len(text) <= 40 else text[:37] + "..."
    message = (
        f"{source}: {int(leaked.sum())} item(s) share their text with an item of a more held-out "
        f"split (leakage), e.g. {text!r} in {example['split']} (task '{example['task']}') and "
        f"{other['split']} (task '{other['task']}')"
    )
    if policy == "error":
        raise DataError(message + "; set dataset.leakage to dedupe (drop the train/dev copies) or warn")
    if policy == "warn":
        warnings.warn(message + "; kept (dataset.leakage: warn)", DataWarning, stacklevel=3)
        return items
    return items.loc[~leaked]


# -- warnings --------------------------------------------------------------------------------
def warn_sparse(annotations: pd.DataFrame, source: str, min_rater_judgements: int, raters_are_anonymous: bool) -> None:
    """Warn about items with a single judgement and raters with very few."""
    per_item = annotations.groupby("task", sort=False).size()
    single = per_item.index[per_item == 1]
    if len(single):
        warnings.warn(
            f"{source}: {len(single)} item(s) have a single judgement, e.g. task "
            f"{_examples(list(single))}; their label is one rater's opinion",
            DataWarning,
            stacklevel=3,
        )
    if raters_are_anonymous or min_rater_judgements <= 1:
        return
    per_rater = annotations.groupby("worker", sort=False).size()
    few = per_rater[per_rater < min_rater_judgements]
    if len(few):
        name, n = few.index[0], int(few.iloc[0])
        warnings.warn(
            f"{source}: {len(few)} of {len(per_rater)} rater(s) have fewer than "
            f"{min_rater_judgements} judgements, e.g. worker '{name}' with {n}; rater-level "
            "statistics for them are noise",
            DataWarning,
            stacklevel=3,
        )
