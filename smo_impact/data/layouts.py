"""Table shapes users export, each turned into long rows: one row per judgement with ``task``,
``worker``, ``label``, the item columns (``text``, ``split``, slices...) and any extra answers.

- ``long``: one row per judgement already; columns are renamed through ``column_map``.
- ``wide``: one row per item, one column per rater (empty = not rated).
- ``count``: one row per item with per-label vote counts; every vote becomes a judgement by an
  anonymous rater ``anon:<task>:<k>`` (raters are unknown, so rater-level statistics are off).
- ``label_studio``: a Label Studio JSON export (``annotations[].result`` choices, ``completed_by``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from smo_impact.data.validation import BOOKKEEPING, FILE, ROW, require_columns
from smo_impact.errors import DataError, shown

Layout = Literal["long", "wide", "count", "label_studio"]
ANONYMOUS_PREFIX = "anon:"


def rename(frame: pd.DataFrame, column_map: dict[str, str], source: str) -> pd.DataFrame:
    """Apply ``column_map`` (our name -> the file's name) once; a mapped column must exist."""
    missing = {ours: theirs for ours, theirs in column_map.items() if theirs not in frame.columns}
    clash = [ours for ours, theirs in column_map.items() if ours in frame.columns and ours != theirs and ours not in missing]
    if clash:
        raise DataError(
            f"{source}: dataset.column_map maps onto {shown(clash[0])}, but the file already has a "
            f"column {shown(clash[0])}; map that one too or rename it"
        )
    # Missing mapped columns are reported by require_columns (with the mapping named) when needed.
    return frame.rename(columns={theirs: ours for ours, theirs in column_map.items() if ours not in missing})


def long_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Long layout: already one row per judgement."""
    return frame


def wide_rows(frame: pd.DataFrame, rater_columns: list[str] | None, item_columns: list[str], source: str) -> pd.DataFrame:
    """Wide layout: melt rater columns into (worker, label) rows; empty cells are not judgements."""
    if rater_columns is None:
        rater_columns = [c for c in frame.columns if c not in (*item_columns, *BOOKKEEPING)]
    else:
        missing = [c for c in rater_columns if c not in frame.columns]
        if missing:
            raise DataError(f"{source}: rater column(s) {shown(missing)} listed in dataset.rater_columns are not in the file")
    if not rater_columns:
        raise DataError(f"{source}: no rater columns found; list them in dataset.rater_columns")
    keep = [c for c in frame.columns if c not in rater_columns]
    rows = frame.melt(id_vars=keep, value_vars=rater_columns, var_name="worker", value_name="label")
    rows = rows.loc[rows["label"].notna() & (rows["label"].astype("str").str.strip() != "")]
    return rows.sort_values([ROW, "worker"], kind="stable").reset_index(drop=True)


def count_rows(frame: pd.DataFrame, labels: tuple, count_columns: dict[str, str] | None, source: str) -> pd.DataFrame:
    """Count layout: repeat each (item, label) by its vote count, one anonymous rater per vote."""
    if count_columns is None:
        count_columns = {str(lab): str(lab) for lab in labels}
    label_of = {str(lab): lab for lab in labels}
    unknown = [k for k in count_columns if k not in label_of]
    if unknown:
        raise DataError(
            f"{source}: dataset.count_columns names label(s) {shown(unknown)} outside the declared label "
            f"set {list(labels)}; declare them in dataset.labels or drop them from dataset.count_columns"
        )
    require_columns(frame, list(count_columns.values()), source, {})
    item_part = frame.drop(columns=list(count_columns.values()))
    counts = []
    for key, column in count_columns.items():
        c = pd.to_numeric(frame[column], errors="coerce")
        bad = c.isna() | (c < 0) | (c != np.round(c))
        if bad.any():
            row = frame.loc[bad].iloc[0]
            raise DataError(
                f"{source}: column {shown(column)} row {row[ROW]}: vote count {shown(row[column])} is not a "
                "non-negative integer"
            )
        counts.append(c.to_numpy(dtype=np.int64))
    matrix = np.stack(counts, axis=1)  # items x labels
    per_item = matrix.sum(axis=1)
    item_index = np.repeat(np.arange(len(frame)), per_item)
    label_index = np.concatenate([np.repeat(np.arange(len(count_columns)), row) for row in matrix]) if len(frame) else np.array([], dtype=int)
    rows = item_part.iloc[item_index].reset_index(drop=True)
    ordered = [label_of[k] for k in count_columns]
    rows["label"] = pd.Series(ordered, dtype=object).iloc[label_index].to_numpy() if len(rows) else []
    # k-th vote of an item: 0..n-1 within the item.
    starts = np.repeat(np.cumsum(per_item) - per_item, per_item)
    k = np.arange(len(rows)) - starts
    rows["worker"] = ANONYMOUS_PREFIX + rows["task"].astype("str") + ":" + pd.Series(k).astype("str")
    return rows


def _worker_id(completed_by: Any) -> str | None:
    if isinstance(completed_by, dict):
        value = completed_by.get("email") or completed_by.get("id")
        return None if value is None else str(value)
    return None if completed_by is None else str(completed_by)


def label_studio_rows(
    tasks: list[dict[str, Any]], column_map: dict[str, str], file_name: str, source: str
) -> pd.DataFrame:
    """Label Studio export: one judgement per non-cancelled annotation with a single choice.

    ``column_map`` may name the ``data`` keys holding text/split (defaults ``text``/``split``)
    and, as ``label``, the ``from_name`` of the choices control when a project has several.
    """
    text_key = column_map.get("text", "text")
    split_key = column_map.get("split", "split")
    control = column_map.get("label")
    rows: list[dict[str, Any]] = []
    for i, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or "id" not in task or "data" not in task:
            raise DataError(f"{source}: task #{i} has no 'id' and 'data'; expected a Label Studio JSON export")
        data = task["data"]
        item = {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool)) and k not in (text_key, split_key)}
        item.update(task=str(task["id"]), text=data.get(text_key))
        if split_key in data:
            item["split"] = data[split_key]
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            choices = [
                r
                for r in annotation.get("result") or []
                if r.get("type") == "choices" and (control is None or r.get("from_name") == control)
            ]
            if not choices:
                continue
            values = [c for r in choices for c in r.get("value", {}).get("choices", [])]
            if len(values) != 1:
                raise DataError(
                    f"{source}: task {shown(task['id'])} annotation {shown(annotation.get('id'))} has "
                    f"{len(values)} choices {shown(values)}; expected exactly one (multi-label choices "
                    "are not supported; name one control with column_map.label)"
                )
            worker = _worker_id(annotation.get("completed_by"))
            if worker is None:
                raise DataError(f"{source}: task {shown(task['id'])} annotation {shown(annotation.get('id'))} has no completed_by")
            rows.append({**item, "worker": worker, "label": values[0], FILE: file_name, ROW: i})
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise DataError(f"{source}: no completed choice annotations found; expected tasks with annotations[].result choices")
    frame[FILE] = frame[FILE].astype("category")
    return frame
