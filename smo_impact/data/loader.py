"""Load the data an experiment names: a built-in dataset, or your own files.

:func:`load_data` is the one entry point the runner uses. Your own data goes through one linear
pipeline: read the file(s) -> turn the layout into long rows -> map columns -> coerce and check
labels -> join the items and workers tables -> filter -> one split per item -> duplicates ->
empty text -> leakage -> warnings -> :class:`AnnotationSet`. Every problem is a one-line
:class:`~smo_impact.errors.DataError` naming file, column, row(s) and value.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from smo_impact.data import layouts, readers
from smo_impact.data.schema import ANNOTATION_COLUMNS, AnnotationSet, isin
from smo_impact.data.splits import assign_splits
from smo_impact.data.validation import (
    BOOKKEEPING,
    FILE,
    IDS,
    TASK_ID,
    WORKER_ID,
    ROW,
    check_cell_types,
    check_ids,
    check_item_consistency,
    check_known_items,
    check_not_empty,
    DataWarning,
    check_text,
    coerce_labels,
    factorize,
    limit_text,
    normalize_splits,
    rater_attributes,
    require_columns,
    resolve_duplicates,
    split_per_task,
    text_leakage,
    warn_sparse,
)
from smo_impact.errors import DataError, listing, shorten, shown

if TYPE_CHECKING:
    from smo_impact.config import DatasetSpec, TableSpec

ITEM_LEVEL = ("text", "split")


def load_data(spec: DatasetSpec) -> AnnotationSet:
    """Load and validate the dataset a config names.

    Built-in datasets (``spec.path`` unset) are read from the mirror or cache with checksums
    verified, then pass the same checks as your own data under ``spec``'s policies. The
    dataset's default binary rule is applied when ``spec.binarize`` (see
    :meth:`AnnotationSet.binarized`).
    """
    data = _load_builtin(spec) if spec.path is None else load_own(spec)
    if spec.ordinal is not None and spec.ordinal != data.ordinal:  # the config overrides the card
        data = replace(data, ordinal=spec.ordinal)
    return data.binarized() if spec.binarize else data


def _load_builtin(spec: DatasetSpec) -> AnnotationSet:
    from smo_impact.data.catalog import get_info, load_dataset

    info = get_info(spec.name)
    data = load_dataset(spec.name)
    source = f"dataset '{spec.name}'"
    annotations = _filter(data.annotations, data.items, spec.where, source)
    items = data.items
    if spec.where:
        items = items.loc[isin(items["task"], annotations["task"])]
    annotations = resolve_duplicates(annotations, spec.duplicates or info.duplicates, source)
    check_text(items, source)
    checked = items
    items = limit_text(items, spec.max_text_chars, spec.long_text, source)
    truncated = items is not checked
    items = text_leakage(items, spec.leakage or info.leakage, source)
    annotations = annotations.loc[isin(annotations["task"], items["task"])]
    check_not_empty(annotations, source, "after dataset.where and dataset.leakage")
    warn_sparse(annotations, source, spec.min_rater_judgements, raters_are_anonymous=False)
    if len(items) == len(data.items) and len(annotations) == len(data.annotations) and not truncated:
        return data
    return AnnotationSet(
        name=data.name,
        items=items.reset_index(drop=True),
        annotations=annotations.reset_index(drop=True),
        labels=data.labels,
        positive_label=data.positive_label,
        workers=data.workers,
        slice_columns=data.slice_columns,
        binary_positive=data.binary_positive,
        ordinal=data.ordinal,
    )


def dataset_spec_from(path: str, overrides: list[str] | tuple[str, ...] = ()) -> DatasetSpec:
    """The dataset block a YAML file holds, read the way ``run`` reads it.

    The file is an experiment config (it has ``arms``: its ``dataset``), a file with only a
    ``dataset:`` block, or a dataset block itself (``configs/datasets/*.yaml``); ``from:``
    includes and ``key=value`` overrides apply as in experiment configs.
    """
    from pydantic import ValidationError

    from smo_impact.config import DatasetSpec, load_config, load_raw, pydantic_problems
    from smo_impact.errors import ConfigError

    raw = load_raw(path, overrides)
    if "arms" in raw:
        return load_config(path, overrides).dataset
    if "dataset" in raw and set(raw) <= {"dataset", "name"}:
        raw = raw["dataset"]
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as exc:  # named as in an experiment config, where the block sits under dataset:
        raise ConfigError(pydantic_problems(exc, "dataset"), source=str(path)) from None


def load_own(spec: DatasetSpec) -> AnnotationSet:
    """Your own annotations, in any supported file format and layout (see :mod:`.layouts`)."""
    labels = tuple(spec.labels or ())
    files = ", ".join(Path(p).name for p in spec.paths)
    source = files

    # 1. Read every file into long rows (one per judgement), columns in our vocabulary.
    parts = [_read_rows(path, spec, labels) for path in spec.paths]
    rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if FILE in rows and not isinstance(rows[FILE].dtype, pd.CategoricalDtype):
        rows[FILE] = rows[FILE].astype("category")
    if rows.empty:
        raise DataError(f"{source}: no judgements found; expected at least one row")
    item_level = ITEM_LEVEL if spec.split is None else tuple(c for c in ITEM_LEVEL if c != "split")
    needs = [*ANNOTATION_COLUMNS] + ([] if spec.items else [*item_level])
    require_columns(rows, needs, source, spec.column_map)
    if spec.split is not None:
        _no_split_column(rows, source)
    check_cell_types(rows, source, spec.column_map)
    check_ids(rows, source, spec.column_map)
    rows["task"] = rows["task"].astype("str")
    rows["worker"] = rows["worker"].astype("str")
    rows[TASK_ID], rows[WORKER_ID] = factorize(rows["task"]), factorize(rows["worker"])
    rows = coerce_labels(rows, labels, source)

    # 2. Item-level columns come from the items table when there is one, else from the rows.
    split_columns = [] if spec.split is None else [c for c in (spec.split.group, spec.split.stratify) if c not in (None, "label")]
    item_columns = _unique([*ITEM_LEVEL, *spec.item_columns, *spec.slice_columns, *split_columns])
    if spec.items is not None:
        items_source = Path(spec.items.path).name
        items = _read_side_table(spec.items, "task", ["task", *item_level], spec.encoding)
        if spec.split is not None:
            _no_split_column(items, items_source)
        if items["task"].duplicated().any():
            dup = items.loc[items["task"].duplicated()].iloc[0]
            raise DataError(f"{items_source}: task {shown(dup['task'])} appears twice (row {dup[ROW]}); the items table has one row per task")
        check_known_items(rows, items, source, items_source)
        rated = isin(items["task"], rows["task"])
        if not rated.all():
            warnings.warn(
                f"{items_source}: {int((~rated).sum())} item(s) have no judgements and are left out, e.g. "
                f"task {shown(items.loc[~rated, 'task'].iloc[0])}",
                DataWarning,
                stacklevel=3,
            )
        if "text" in items.columns:
            check_text(items.loc[rated], items_source)  # point at the items file's own rows
            items = limit_text(items.loc[rated], spec.max_text_chars, spec.long_text, items_source)
        clash = [c for c in items.columns if c in rows.columns and c not in ("task", *BOOKKEEPING)]
        rows = rows.drop(columns=clash).merge(
            items.drop(columns=list(BOOKKEEPING)), on="task", how="left", validate="many_to_one"
        )
        item_columns = _unique([*item_columns, *(c for c in items.columns if c not in BOOKKEEPING and c != "task")])
    missing_slices = [c for c in spec.slice_columns if c not in rows.columns]
    if missing_slices:
        raise DataError(f"{source}: slice column(s) {shown(missing_slices)} (dataset.slice_columns) not found")
    missing_items = [c for c in spec.item_columns if c not in rows.columns]
    if missing_items:
        raise DataError(f"{source}: item column(s) {shown(missing_items)} (dataset.item_columns) not found")

    # 3. Filters, then one split per item.
    rows = _filter(rows, None, spec.where, source)
    leakage = spec.leakage or "error"
    if spec.split is None:
        rows = normalize_splits(rows, source)
        rows = split_per_task(rows, leakage, source)

    # 4. Judgements: duplicates (then splits made, when asked, on the majority labels); items: text, leakage.
    rows = resolve_duplicates(rows, spec.duplicates or "error", source)
    if spec.split is not None:
        rows = assign_splits(rows, spec.split, labels, source)
    item_columns = [c for c in item_columns if c in rows.columns]
    task_ids = rows[TASK_ID].to_numpy()
    items = rows.loc[~pd.Series(task_ids).duplicated().to_numpy()]
    items = items[["task", *[c for c in item_columns if c != "task"], *BOOKKEEPING, TASK_ID]]
    check_item_consistency(rows, [c for c in item_columns if c not in ("task", "split")], source)
    check_text(items, source)
    items = limit_text(items, spec.max_text_chars, spec.long_text, source)
    kept = text_leakage(items, leakage, source)
    if len(kept) < len(items):
        rows = rows.loc[np.isin(task_ids, kept[TASK_ID].to_numpy())]
    items = kept
    check_not_empty(rows, source, "after dataset.where and dataset.leakage")
    anonymous = spec.layout == "count"
    warn_sparse(rows, source, spec.min_rater_judgements, raters_are_anonymous=anonymous)

    # 5. Workers table: from a file, from rater columns of the rows, or both joined.
    workers = None
    if spec.worker_columns:
        workers = rater_attributes(rows, spec.worker_columns, source)
    if spec.workers is not None:
        workers_source = Path(spec.workers.path).name
        table = _read_side_table(spec.workers, "worker", ["worker"], spec.encoding)
        if table["worker"].duplicated().any():
            dup = table.loc[table["worker"].duplicated()].iloc[0]
            raise DataError(
                f"{workers_source}: worker {shown(dup['worker'])} appears twice (row {dup[ROW]}); the workers "
                "table has one row per worker"
            )
        unknown = ~isin(pd.Series(rows["worker"].unique()), table["worker"])
        if unknown.any():
            warnings.warn(
                f"{workers_source}: {int(unknown.sum())} rater(s) with judgements have no row here, e.g. "
                f"worker {shown(rows['worker'].unique()[unknown][0])}; their attributes are missing",
                DataWarning,
                stacklevel=3,
            )
        table = table.drop(columns=list(BOOKKEEPING)).reset_index(drop=True)
        workers = table if workers is None else _join_workers(workers, table, workers_source)

    extra = [c for c in rows.columns if c not in (*item_columns, *spec.worker_columns, *ANNOTATION_COLUMNS, *BOOKKEEPING, *IDS)]
    annotations = rows[[*ANNOTATION_COLUMNS, *extra]].reset_index(drop=True)
    items = items.drop(columns=[*BOOKKEEPING, TASK_ID]).reset_index(drop=True)
    return AnnotationSet(
        name=spec.name,
        items=items,
        annotations=annotations,
        labels=labels,
        positive_label=spec.positive_label if spec.positive_label is not None else labels[-1],
        workers=workers,
        slice_columns=tuple(spec.slice_columns),
        binary_positive=tuple(spec.positive_labels or ()),
        split_spec="" if spec.split is None else spec.split.model_dump_json(),
    )


def _read_rows(path: str, spec: DatasetSpec, labels: tuple) -> pd.DataFrame:
    """One file -> long rows with our column names."""
    fmt = spec.format or readers.infer_format(path)
    name = Path(path).name
    if fmt != "hf":  # before the format: /dev/zero has no suffix, but is no file of judgements either
        readers.check_file(path)
    if fmt is None:
        raise DataError(f"{path}: cannot tell the file format from its name; set dataset.format (csv, jsonl, parquet, hf, label_studio)")
    if spec.layout == "label_studio" or fmt == "label_studio":
        if spec.layout != "label_studio":
            raise DataError(f"{path}: a .json file is read as a Label Studio export; set dataset.layout: label_studio (or dataset.format)")
        return layouts.label_studio_rows(readers.read_label_studio(path, spec.encoding), spec.column_map, name, name)
    table = readers.read_table(path, fmt, spec.encoding)
    if table.empty:
        raise DataError(f"{path}: no rows; expected one row per {'judgement' if spec.layout == 'long' else 'item'}")
    table = layouts.rename(table, spec.column_map, name)
    if spec.layout == "long":
        return layouts.long_rows(table)
    item_like = ["task", *ITEM_LEVEL, *spec.item_columns, *spec.slice_columns]
    require_columns(table, ["task"], name, spec.column_map)
    if spec.layout == "wide":
        return layouts.wide_rows(table, spec.rater_columns, item_like, name)
    return layouts.count_rows(table, labels, spec.count_columns, name)


def _no_split_column(frame: pd.DataFrame, source: str) -> None:
    if "split" in frame.columns:
        raise DataError(
            f"{source}: the data has a 'split' column and dataset.split asks to make splits; drop dataset.split to "
            "keep the file's splits, or drop (or unmap) its split column"
        )


def _join_workers(from_rows: pd.DataFrame, table: pd.DataFrame, table_source: str) -> pd.DataFrame:
    """Rater attributes from the rows (dataset.worker_columns) next to a workers table's own."""
    both = [c for c in from_rows.columns if c != "worker" and c in table.columns]
    if both:
        raise DataError(
            f"{table_source}: column {shown(both[0])} is both in the workers table and in dataset.worker_columns; "
            "keep one source for each rater attribute"
        )
    return from_rows.merge(table, on="worker", how="outer", sort=False)


def _read_side_table(table: TableSpec, key: str, required: list[str], encoding: str) -> pd.DataFrame:
    fmt = table.format or readers.infer_format(table.path)
    if fmt not in ("csv", "jsonl", "parquet", "hf"):
        raise DataError(f"{table.path}: cannot tell the table format; set format (csv, jsonl, parquet, hf)")
    frame = readers.read_table(table.path, fmt, table.encoding or encoding)
    name = Path(table.path).name
    frame = layouts.rename(frame, table.column_map, name)
    require_columns(frame, required, name, table.column_map)
    check_cell_types(frame, name, table.column_map, (key, *(ITEM_LEVEL if key == "task" else ())))
    frame[key] = frame[key].astype("str")
    return frame


def _filter(rows: pd.DataFrame, items: pd.DataFrame | None, where: dict[str, list[Any]], source: str) -> pd.DataFrame:
    """Keep the judgements whose ``column`` value is listed in ``where`` (item columns allowed)."""
    if not where:
        return rows
    keep = pd.Series(True, index=rows.index)
    for column, values in where.items():
        if column in rows.columns:
            col = rows[column]
        elif items is not None and column in items.columns:
            col = rows["task"].map(items.set_index("task")[column])
        else:
            found = sorted(c for c in rows.columns if c not in (*BOOKKEEPING, *IDS))
            raise DataError(f"{source}: dataset.where names column {shown(column)}, which does not exist; found: {listing(found)}")
        keep &= col.isin(values) | col.astype("str").isin([str(v) for v in values])
    out = rows.loc[keep]
    check_not_empty(out, source, f"after dataset.where={shorten(where)} ({len(rows)} judgements before)")
    return out


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
