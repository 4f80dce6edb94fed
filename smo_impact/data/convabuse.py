"""Loader for the original ConvAbuse release (Cercas Curry et al., EMNLP 2021).

The split files (``2_splits/ConvAbuseEMNLP{train,valid,test}.csv``) hold one row per example with
every rater's full answer in ``Annotator<k>_<field>`` columns: a one-hot abuse severity
(``is_abuse.1`` .. ``is_abuse.-3``), abuse types, target and directness. A rater who labelled an
example more than once (the repeats used for intra-rater agreement) has ``"0, 1"``-style cells;
we keep the rater's first response and record how many they gave in ``responses``. Answer
columns are nullable integers: the release has no ``Annotator7_transphobic`` column, so that
answer is missing (``<NA>``) for rater 7.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smo_impact.data.lewidi import CONVABUSE_DIRECTNESS, CONVABUSE_TARGETS, CONVABUSE_TYPES, convabuse_answer_columns
from smo_impact.errors import DataError

SEVERITIES = (1, 0, -1, -2, -3)  # benign to harmful: not abusive, ambiguous, mild, strong, very strong
SPLIT_FILES = {"train": "train", "valid": "dev", "test": "test"}
ITEM_FIELDS = ("conv_id", "prev_agent", "prev_user", "agent", "user", "bot")
# Our answer column -> the field suffix in the split files.
ANSWER_FIELDS = {
    **{f"type_{t}": t for t in CONVABUSE_TYPES},
    **{f"target_{t}": f"target.{t}" for t in CONVABUSE_TARGETS},
    **{f"directness_{d}": d for d in CONVABUSE_DIRECTNESS},
}


def _first_responses(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(first response as float, NaN when empty; number of responses) of ``"0, 1"``-style cells,
    for all rater columns at once (column by column is 20x slower)."""
    stacked = frame[columns].stack()
    stacked = stacked[stacked.notna()]  # non-empty cells only
    cells = stacked.to_numpy(dtype=object)
    # Plain Python on ~100k short strings beats pandas' string accessor here by ~10x.
    first = pd.Series([float(c.split(",", 1)[0]) for c in cells], index=stacked.index)
    count = pd.Series([c.count(",") + 1 for c in cells], index=stacked.index)
    shape = {"index": frame.index, "columns": columns}
    return first.unstack().reindex(**shape).astype(float), count.unstack().reindex(**shape).fillna(0).astype("int64")


def read_split(path: Path, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One split file -> (items, long annotations with the full answer per rater)."""
    frame = pd.read_csv(path, dtype="str", keep_default_na=True)
    missing = [c for c in ("example_id", *ITEM_FIELDS) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: ConvAbuse column(s) {missing} missing; is this a 2_splits file?")
    task = split + "-" + pd.to_numeric(frame["example_id"]).astype("int64").astype("str")
    items = pd.DataFrame({"task": task, "text": frame["user"], "split": split})
    for field in ("conv_id", "prev_agent", "prev_user", "agent", "bot"):
        items[field] = frame[field]

    rater_columns = [c for c in frame.columns if c.startswith("Annotator")]
    first, responses = _first_responses(frame, rater_columns)
    raters = sorted({c.split("_", 1)[0] for c in rater_columns}, key=lambda r: int(r[9:]))
    parts = []
    for rater in raters:
        severity_columns = [f"{rater}_is_abuse.{sev}" for sev in SEVERITIES]
        onehot = first[severity_columns].to_numpy()
        rated = ~np.isnan(onehot).all(axis=1)
        ticked = np.nan_to_num(onehot) == 1
        if (ticked[rated].sum(axis=1) != 1).any():
            row = int(np.flatnonzero(rated & (ticked.sum(axis=1) != 1))[0])
            raise DataError(f"{path}: row {row + 1}: {rater} ticks {int(ticked[row].sum())} severities; expected exactly one")
        part = pd.DataFrame(
            {
                "task": task[rated].to_numpy(),
                "worker": rater,
                "label": np.array(SEVERITIES)[ticked[rated].argmax(axis=1)],
            }
        )
        part["severity"] = part["label"]
        for column, field in ANSWER_FIELDS.items():
            source = f"{rater}_{field}"
            if source not in frame.columns:  # upstream: Annotator7 has no transphobic column
                part[column] = pd.array([pd.NA] * len(part), dtype="Int64")
                continue
            part[column] = pd.array(np.nan_to_num(first[source].to_numpy()[rated]).astype("int64"), dtype="Int64")
        part["responses"] = responses[severity_columns].to_numpy().max(axis=1)[rated]
        parts.append(part)
    annotations = pd.concat(parts, ignore_index=True)
    return items, annotations


def build_convabuse(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    """All three official splits (``valid`` becomes our ``dev``)."""
    items, annotations = [], []
    for path in paths:
        stem = Path(path).stem.removeprefix("ConvAbuseEMNLP")
        if stem not in SPLIT_FILES:
            raise DataError(f"{path}: not a ConvAbuse split file (expected ConvAbuseEMNLP{{train,valid,test}}.csv)")
        i, a = read_split(path, SPLIT_FILES[stem])
        items.append(i)
        annotations.append(a)
    annotations_frame = pd.concat(annotations, ignore_index=True)
    annotations_frame = annotations_frame.sort_values(["task", "worker"], kind="stable").reset_index(drop=True)
    return pd.concat(items, ignore_index=True), convabuse_answer_columns(annotations_frame), None
