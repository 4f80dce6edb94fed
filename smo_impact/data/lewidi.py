"""Loader for the LeWiDi 2023 JSON format (Leonardelli et al., SemEval-2023 Task 11).

Each file maps an item id to ``text``, comma-separated ``annotators`` and ``annotations``,
``split`` and dataset-specific ``other_info``. Item ids restart in every split file, so our
``task`` key is ``"{split}-{id}"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from smo_impact.errors import DataError


def read_lewidi_json(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read one LeWiDi split file into (items, annotations) tables.

    Scalar ``other_info`` fields become item columns (e.g. MD-Agreement ``domain``).
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None

    item_rows: list[dict] = []
    judgement_rows: list[tuple[str, str, str]] = []
    for item_id, record in raw.items():
        for key in ("text", "annotators", "annotations", "split"):
            if key not in record:
                raise DataError(f"{path}: item '{item_id}' has no '{key}' field")
        task = f"{record['split']}-{item_id}"
        row = {"task": task, "text": record["text"], "split": record["split"]}
        for key, value in (record.get("other_info") or {}).items():
            if isinstance(value, (str, int, float, bool)):
                row[key] = value
        item_rows.append(row)
        workers = record["annotators"].split(",")
        labels = str(record["annotations"]).split(",")
        if len(workers) != len(labels):
            raise DataError(
                f"{path}: item '{item_id}' lists {len(workers)} annotators but "
                f"{len(labels)} annotations"
            )
        judgement_rows.extend((task, w.strip(), lab.strip()) for w, lab in zip(workers, labels))

    items = pd.DataFrame(item_rows)
    annotations = pd.DataFrame(judgement_rows, columns=["task", "worker", "label"])
    return items, annotations


def load_lewidi(paths: list[Path], label_dtype: type = int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and concatenate several LeWiDi split files."""
    parts = [read_lewidi_json(p) for p in paths]
    items = pd.concat([p[0] for p in parts], ignore_index=True)
    annotations = pd.concat([p[1] for p in parts], ignore_index=True)
    try:
        annotations["label"] = annotations["label"].astype(label_dtype)
    except ValueError as exc:
        raise DataError(f"LeWiDi annotations: a label is not {label_dtype.__name__}: {exc}") from None
    return items, annotations
