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

from smo_impact.data.schema import SPLITS, isin, positions_in
from smo_impact.errors import DataError, listing, shorten, shown

FILE, ROW = "_file", "_row"
BOOKKEEPING = (FILE, ROW)
# Integer codes of task and worker, added once by the loader and carried through its filters:
# every group-by below runs on them (np.bincount) instead of hashing 10M text keys again.
TASK_ID, WORKER_ID = "_task_id", "_worker_id"
IDS = (TASK_ID, WORKER_ID)

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
        listed = ", ".join(str(r) for r in rows[:_MAX_EXAMPLES])
        more = f" (and {len(rows) - _MAX_EXAMPLES} more)" if len(rows) > _MAX_EXAMPLES else ""
        parts.append(f"{name} row{'s' if len(rows) > 1 else ''} {listed}{more}")
        if len(parts) == 2:
            break
    return "; ".join(parts)


def codes(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Non-negative integer codes of ``task`` or ``worker`` (missing values share one code)."""
    hidden = {"task": TASK_ID, "worker": WORKER_ID}.get(column)
    if hidden in frame.columns:
        return frame[hidden].to_numpy()
    return factorize(frame[column])


def factorize(values: pd.Series) -> np.ndarray:
    """``pd.factorize`` codes with missing values as one more code instead of -1."""
    out = pd.factorize(values)[0]
    if (out < 0).any():
        out = np.where(out < 0, out.max() + 1, out)
    return out


def first_positions(ids: np.ndarray) -> np.ndarray:
    """Row position of each code's first occurrence (entries of absent codes are meaningless)."""
    first = ~pd.Series(ids).duplicated().to_numpy()
    positions = np.zeros(int(ids.max()) + 1 if len(ids) else 0, dtype=np.int64)
    positions[ids[first]] = np.flatnonzero(first)
    return positions


def _in_first_seen_order(ids: np.ndarray, wanted: np.ndarray, first: np.ndarray) -> np.ndarray:
    """``wanted`` codes sorted by where they first appear (the order pandas' groupby(sort=False) gives)."""
    return wanted[np.argsort(first[wanted], kind="stable")]


def _examples(values: pd.Series | list) -> str:
    values = list(pd.unique(pd.Series(values)))[:_MAX_EXAMPLES]
    return ", ".join(shown(v) for v in values)


# -- required columns ---------------------------------------------------------------------
def require_columns(frame: pd.DataFrame, required: list[str], source: str, column_map: dict[str, str]) -> None:
    """Raise when a column our vocabulary needs is absent, saying how to map it."""
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    found = listing([c for c in frame.columns if c not in BOOKKEEPING])
    mapped = [c for c in missing if c in column_map]
    if mapped:
        c = mapped[0]
        raise DataError(
            f"{source}: column {shown(column_map[c])} (mapped to '{c}' by dataset.column_map) is not in "
            f"the file; found: {found}"
        )
    hint = ", ".join(f"{c}: <your column>" for c in missing)
    make = "; data without splits can get them with dataset.split: {train: 0.8, dev: 0.1, test: 0.1}" if "split" in missing else ""
    raise DataError(
        f"{source}: required column(s) {', '.join(repr(c) for c in missing)} missing; found: {found}. "
        f"Map them with dataset.column_map, e.g. column_map: {{{hint}}}{make}"
    )


# -- cell types --------------------------------------------------------------------------------
# Kinds pd.api.types.infer_dtype reports for columns of scalars only; others need a look per cell.
_SCALAR_KINDS = frozenset({"string", "integer", "floating", "mixed-integer-float", "boolean", "empty", "decimal"})
_ONE_PER_ROW = {"task": "one task id", "worker": "one rater id", "label": "one label", "split": "one split name"}


def _is_text(value: object) -> bool:
    return isinstance(value, str) or (pd.api.types.is_scalar(value) and pd.isna(value))


def _bad_cells(values: pd.Series, text: bool) -> np.ndarray | None:
    """Cells that are not one scalar (``text``: not a string); None when there are none. Typed
    columns are answered from their dtype; only object columns of unclear kind are looked at cell
    by cell."""
    if values.dtype != object:
        if not text or pd.api.types.is_string_dtype(values.dtype):
            return None
        bad = values.notna().to_numpy(dtype=bool)  # numbers where text belongs
        return bad if bad.any() else None
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in (("string", "empty") if text else _SCALAR_KINDS):
        return None
    check = _is_text if text else pd.api.types.is_scalar
    bad = ~values.map(check).to_numpy(dtype=bool)
    return bad if bad.any() else None


def _column_name(column: str, column_map: dict[str, str]) -> str:
    """How a message names one of our columns: by the file's own name when column_map renamed it."""
    if column in column_map:
        return f"{shown(column_map[column])} (mapped to '{column}' by dataset.column_map)"
    return f"'{column}'"


def check_ids(rows: pd.DataFrame, source: str, column_map: dict[str, str]) -> None:
    """Every judgement names its item and its rater: an empty cell would become the id 'nan',
    one rater (or item) made of every blank."""
    for column, whose in (("task", "item"), ("worker", "rater")):
        value_codes, distinct = pd.factorize(rows[column])  # blank-checking the distinct ids is cheap
        blank = pd.Series(distinct, dtype=object).map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
        empty = (value_codes < 0) | (blank[np.maximum(value_codes, 0)] if len(blank) else False)
        if empty.any():
            raise DataError(
                f"{source}: {int(empty.sum())} judgement(s) with an empty {column} id in column "
                f"{_column_name(column, column_map)} at {where(rows, empty, 'those rows')}; every judgement "
                f"needs its {whose}: fill them in or drop those rows"
            )


def check_cell_types(frame: pd.DataFrame, source: str, column_map: dict[str, str], columns: tuple[str, ...] = (*_ONE_PER_ROW, "text")) -> None:
    """task, worker, label and split hold one string or number per row, and text holds strings:
    a Parquet list column or JSON array would otherwise fail deep in pandas ('unhashable type'),
    and ints where text belongs inside a featurizer ('int' object has no attribute 'lower')."""
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column]
        bad = _bad_cells(values, text=column == "text")
        if bad is None:
            continue
        value = values.iloc[int(np.flatnonzero(bad)[0])]
        if isinstance(value, np.ndarray):  # how pyarrow hands over a list cell
            value = value.tolist()
        if isinstance(value, np.generic):
            value = value.item()
        named = _column_name(column, column_map)
        expected = "text (strings)" if column == "text" else f"{_ONE_PER_ROW[column]} per row: a string or a number"
        raise DataError(
            f"{source}: column {named} holds {type(value).__name__} values, e.g. {shown(value)} at "
            f"{where(frame, bad, 'those rows')}; expected {expected}"
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
    # Coerce and check the few distinct values, then expand by code (10M rows: ~1 s, not ~10 s).
    value_codes, distinct = pd.factorize(raw)
    distinct = pd.Series(distinct)
    if numbers:
        coerced = pd.to_numeric(distinct, errors="coerce")
        distinct_ok = coerced.isin(labels).to_numpy(dtype=bool)
    else:
        coerced = distinct.astype("str")
        distinct_ok = coerced.isin([str(v) for v in labels]).to_numpy(dtype=bool)
    ok = (value_codes >= 0) & distinct_ok[np.maximum(value_codes, 0)] if len(distinct) else value_codes >= 0
    if not ok.all():
        bad = ~ok
        values = raw[bad].astype(object).where(raw[bad].notna(), None)
        raise DataError(
            f"{source}: column 'label' has {int(bad.sum())} value(s) outside the declared label "
            f"set: {_examples(values)} at {where(annotations, bad, 'those rows')}; expected one of "
            f"{list(labels)} (dataset.labels)"
        )
    coerced = coerced.astype("int64") if ints else coerced.astype("float64") if numbers else coerced
    return annotations.assign(label=coerced.take(value_codes).set_axis(annotations.index))


def normalize_splits(items: pd.DataFrame, source: str) -> pd.DataFrame:
    """Map split spellings (``validation`` -> ``dev``) and reject unknown split names."""
    value_codes, distinct = pd.factorize(items["split"])  # a handful of distinct spellings
    spelled = pd.Series(distinct, dtype=object).astype("str").str.strip().str.lower().replace(SPLIT_ALIASES)
    distinct_ok = spelled.isin(SPLITS).to_numpy(dtype=bool)
    bad = (value_codes < 0) | ~distinct_ok[np.maximum(value_codes, 0)] if len(distinct) else value_codes < 0
    if bad.any():
        raise DataError(
            f"{source}: column 'split' has unknown value(s) {_examples(items.loc[bad, 'split'])} at "
            f"{where(items, bad, 'those rows')}; expected one of {list(SPLITS)} "
            f"(or {', '.join(sorted(SPLIT_ALIASES))})"
        )
    return items.assign(split=spelled.astype("str").take(value_codes).set_axis(items.index))


# -- judgements ------------------------------------------------------------------------------
def resolve_duplicates(annotations: pd.DataFrame, policy: DuplicatePolicy, source: str) -> pd.DataFrame:
    """Apply the duplicate (task, worker) policy: error, or keep the first/last in file order."""
    task, worker = codes(annotations, "task"), codes(annotations, "worker")
    pair = pd.Series(task.astype(np.int64) * (int(worker.max()) + 1 if len(worker) else 1) + worker)
    later_copy = pair.duplicated(keep="first").to_numpy()  # one hash pass when there are none
    if not later_copy.any():
        return annotations
    dup = pair.duplicated(keep=False).to_numpy()
    if policy == "error":
        first = annotations.loc[dup].iloc[0]
        same = dup & (annotations["task"] == first["task"]) & (annotations["worker"] == first["worker"])
        n_pairs = int(annotations.loc[dup, ["task", "worker"]].drop_duplicates().shape[0])
        raise DataError(
            f"{source}: {n_pairs} duplicate (task, worker) judgement(s), e.g. task {shown(first['task'])} "
            f"worker {shown(first['worker'])} at {where(annotations, same, 'several rows')}; set "
            "dataset.duplicates to first or last to keep one"
        )
    return annotations.loc[~later_copy if policy == "first" else ~pair.duplicated(keep="last").to_numpy()]


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
    if not columns or rows.empty:
        return
    task = codes(rows, "task")
    first = first_positions(task)
    reference_row = first[task]  # each row's item's first row
    for column in columns:
        values = rows[column].reset_index(drop=True)
        reference = values.take(reference_row).reset_index(drop=True)
        differs = ((values != reference) & ~(values.isna() & reference.isna())).to_numpy(dtype=bool)
        if differs.any():
            bad_task = _in_first_seen_order(task, np.unique(task[differs]), first)[0]
            these = task == bad_task
            n_values = int(rows.loc[these, column].drop_duplicates().shape[0])
            name = rows["task"].iloc[first[bad_task]]
            raise DataError(
                f"{source}: item {shown(name)} has {n_values} different values in item column "
                f"{shown(column)} at {where(rows, these, 'several rows')}, e.g. "
                f"{_examples(rows.loc[these, column])}; an item's {shorten(column)} must be the same in every row"
            )


def rater_attributes(rows: pd.DataFrame, columns: list[str], source: str) -> pd.DataFrame:
    """The workers table of a long file whose rows carry rater attributes (``dataset.worker_columns``).

    A rater's attribute must be one value in all their rows; an empty cell is no value (a survey
    answer given once and left blank after is fine), two different values are an error.

    Returns:
        One row per worker (first-seen order): ``worker`` and the columns.
    """
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        found = listing(sorted(c for c in rows.columns if c not in (*BOOKKEEPING, *IDS)))
        raise DataError(
            f"{source}: worker column(s) {shown(missing)} (dataset.worker_columns) not found; found: {found}. "
            "Map them with dataset.column_map"
        )
    worker = codes(rows, "worker")
    first = first_positions(worker)
    order = _in_first_seen_order(worker, np.unique(worker), first)
    table = pd.DataFrame({"worker": rows["worker"].iloc[first[order]].to_numpy()})
    for column in columns:
        values = rows[column].reset_index(drop=True)
        given = values.notna().to_numpy()
        value_codes = factorize(values)
        # A worker's distinct non-empty values, counted on integer codes (no hashing of text per row).
        pairs = pd.DataFrame({"w": worker[given], "v": value_codes[given]}).drop_duplicates()
        n_values = np.bincount(pairs["w"].to_numpy(), minlength=len(first))
        if (n_values > 1).any():
            bad = _in_first_seen_order(worker, np.flatnonzero(n_values > 1), first)[0]
            theirs = np.flatnonzero((worker == bad) & given)
            initial = np.zeros(len(rows), dtype=bool)
            initial[theirs[0]] = True
            changed = np.zeros(len(rows), dtype=bool)
            changed[theirs[value_codes[theirs] != value_codes[theirs[0]]]] = True
            name = rows["worker"].iloc[first[bad]]
            raise DataError(
                f"{source}: worker {shown(name)} has {int(n_values[bad])} different values in worker column "
                f"{shown(column)}: {shown(values.iloc[theirs[0]])} at {where(rows, initial, 'their first row')}, then "
                f"{_examples(values[changed])} at {where(rows, changed, 'later rows')}; a rater attribute must be the same "
                f"in every row of that rater: correct those rows, or drop {shown(column)} from dataset.worker_columns"
            )
        # Each worker's value: its first non-empty one (missing when it has none).
        take = np.full(len(first), -1, dtype=np.int64)
        positions = np.flatnonzero(given)
        firsts = ~pd.Series(worker[positions]).duplicated().to_numpy()
        take[worker[positions][firsts]] = positions[firsts]
        picked = take[order]
        column_values = values.take(np.maximum(picked, 0)).reset_index(drop=True)
        table[column] = column_values.where(picked >= 0, None) if (picked < 0).any() else column_values
    return table


def check_text(items: pd.DataFrame, source: str) -> None:
    """Items need text: the model reads nothing else."""
    empty = items["text"].isna() | (items["text"].astype("str").str.strip() == "")
    if empty.any():
        raise DataError(
            f"{source}: {int(empty.sum())} item(s) with empty text in column 'text', e.g. task "
            f"{_examples(items.loc[empty, 'task'])} at {where(items, empty, 'those items')}; "
            "fill or drop them"
        )


def limit_text(items: pd.DataFrame, max_chars: int, policy: Literal["error", "truncate"], source: str) -> pd.DataFrame:
    """Texts longer than ``max_chars`` (``dataset.max_text_chars``): an error, or cut to that length
    with a warning under ``truncate``. Featurizers hold a text several times over; one 200 MB item
    took 6 GB.

    Returns:
        The items, texts cut where needed.
    """
    lengths = items["text"].astype("str").str.len().to_numpy()
    long = lengths > max_chars
    if not long.any():
        return items
    first = np.flatnonzero(long)[0]
    message = f"{source}: {int(long.sum())} item(s) with text longer than dataset.max_text_chars={max_chars} characters"
    example = f"task {shown(items['task'].iloc[first])} ({lengths[first]} characters)"
    if policy == "error":
        raise DataError(
            f"{message}, e.g. {example} at {where(items, long, 'those items')}; shorten them, raise "
            "dataset.max_text_chars, or set dataset.long_text: truncate"
        )
    warnings.warn(f"{message} truncated to {max_chars}, e.g. {example} (dataset.long_text: truncate)", DataWarning, stacklevel=3)
    return items.assign(text=items["text"].where(~long, items["text"].astype("str").str.slice(0, max_chars)))


def check_not_empty(annotations: pd.DataFrame, source: str, after: str) -> None:
    if annotations.empty:
        raise DataError(f"{source}: no judgements left {after}; expected at least one")


# -- leakage ---------------------------------------------------------------------------------
def _split_rank(split: pd.Series) -> np.ndarray:
    """How held out each row's split is: its position in SPLITS (0 train, 1 dev, 2 test); splits
    are already normalised."""
    return positions_in(split, SPLITS)


def _ranks_present(group: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """groups x 3 table: does the group have a row of that split?"""
    present = np.zeros((int(group.max()) + 1 if len(group) else 0, len(SPLITS)), dtype=bool)
    present[group, rank] = True
    return present


def _top_rank(present: np.ndarray) -> np.ndarray:
    """Most held-out split rank present in each group."""
    return present.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)


def split_per_task(rows: pd.DataFrame, policy: LeakagePolicy, source: str) -> pd.DataFrame:
    """One split per task. A task listed under several splits is an error, or under ``dedupe``
    keeps only its rows of the most held-out split (test, then dev), so evaluation never shrinks."""
    if rows.empty:
        return rows
    task, rank = codes(rows, "task"), _split_rank(rows["split"])
    present = _ranks_present(task, rank)
    multi = np.flatnonzero(present.sum(axis=1) > 1)
    if len(multi) == 0:
        return rows
    if policy != "dedupe":
        first = first_positions(task)
        bad_task = _in_first_seen_order(task, multi, first)[0]
        these = task == bad_task
        found = sorted(rows.loc[these, "split"].unique())
        raise DataError(
            f"{source}: {len(multi)} item(s) appear in more than one split, e.g. task "
            f"{shown(rows['task'].iloc[first[bad_task]])} in "
            f"{' and '.join(found)} at {where(rows, these, 'several rows')}; an item belongs to one "
            "split (set dataset.leakage: dedupe to keep only its most held-out split)"
        )
    return rows.loc[rank == _top_rank(present)[task]]


def normalized_text(text: pd.Series) -> pd.Series:
    """Case- and whitespace-insensitive text key for leakage checks (vectorised string kernels;
    a Python split/join per item took 2.6 s for 200k items)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = pa.array(text.astype("str"), from_pandas=True)
    lower = pc.utf8_lower(arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow)
    # The regex costs ~3 us per string; run it only where RE2's \s (ASCII [\t\n\f\r ]) is not
    # already a single space.
    needs = pc.match_substring_regex(lower, r"\s\s|[\t\n\f\r]").fill_null(False)
    if pc.any(needs).as_py():
        fixed = pc.replace_substring_regex(pc.filter(lower, needs), r"\s+", " ")
        lower = pc.replace_with_mask(lower, needs, fixed)
    key = pc.utf8_trim_whitespace(lower)
    return pd.Series(pd.arrays.ArrowStringArray(key.cast(pa.large_string())), index=text.index)


def text_leakage(items: pd.DataFrame, policy: LeakagePolicy, source: str) -> pd.DataFrame:
    """The same text (case and whitespace aside) in train and a held-out split.

    ``error`` raises, ``dedupe`` drops the copies from the less held-out split (train before dev
    before test, so the test set stays intact), ``warn`` keeps everything and warns.

    Returns:
        The items to keep.
    """
    if items.empty:
        return items
    key = factorize(normalized_text(items["text"]))
    rank = _split_rank(items["split"])
    top = _top_rank(_ranks_present(key, rank))[key]
    leaked = rank < top
    if not leaked.any():
        return items
    first_leak = np.flatnonzero(leaked)[0]
    example = items.iloc[first_leak]
    other = items.iloc[np.flatnonzero((key == key[first_leak]) & (rank == top[first_leak]))[0]]
    message = (
        f"{source}: {int(leaked.sum())} item(s) share their text with an item of a more held-out "
        f"split (leakage), e.g. {shown(str(example['text']), 40)} in {example['split']} (task "
        f"{shown(example['task'])}) and {other['split']} (task {shown(other['task'])})"
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
    if annotations.empty:
        return
    task = codes(annotations, "task")
    per_item = np.bincount(task)
    single = np.flatnonzero(per_item == 1)
    if len(single):
        first = first_positions(task)
        examples = _in_first_seen_order(task, single, first)[:_MAX_EXAMPLES]
        warnings.warn(
            f"{source}: {len(single)} item(s) have a single judgement, e.g. task "
            f"{_examples(annotations['task'].iloc[first[examples]])}; their label is one rater's opinion",
            DataWarning,
            stacklevel=3,
        )
    if raters_are_anonymous or min_rater_judgements <= 1:
        return
    worker = codes(annotations, "worker")
    per_rater = np.bincount(worker)
    few = np.flatnonzero((per_rater > 0) & (per_rater < min_rater_judgements))
    if len(few):
        first = first_positions(worker)
        example = _in_first_seen_order(worker, few, first)[0]
        name, n = annotations["worker"].iloc[first[example]], int(per_rater[example])
        warnings.warn(
            f"{source}: {len(few)} of {int((per_rater > 0).sum())} rater(s) have fewer than "
            f"{min_rater_judgements} judgements, e.g. worker {shown(name)} with {n}; rater-level "
            "statistics for them are noise",
            DataWarning,
            stacklevel=3,
        )
