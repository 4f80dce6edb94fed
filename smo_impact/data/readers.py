"""Read users' annotation files: CSV, JSONL, Parquet, a Hugging Face ``datasets`` dataset, or a
Label Studio JSON export.

Every table comes back with two bookkeeping columns, ``_file`` and ``_row`` (1-based data row,
header excluded), so that later checks can name the row a problem came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from smo_impact.data.validation import FILE, ROW
from smo_impact.errors import DataError

FileFormat = Literal["csv", "jsonl", "parquet", "hf", "label_studio"]
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def infer_format(path: str) -> str | None:
    """The format a file's name implies, or None (a directory may be a saved HF dataset)."""
    p = Path(path)
    if p.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[p.suffix.lower()]
    if p.suffix.lower() == ".json":
        return "label_studio"
    if p.is_dir():
        return "hf"
    return None


def _bookkeep(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame[FILE] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), categories=[name])
    frame[ROW] = range(1, len(frame) + 1)
    return frame


def _unreadable(path: str, exc: UnicodeDecodeError, encoding: str) -> DataError:
    return DataError(
        f"{path}: cannot be read as {encoding} ({exc.reason}: byte 0x{exc.object[exc.start]:02x} at "
        f"position {exc.start}); set dataset.encoding to the file's encoding (e.g. latin-1, cp1252)"
    )


def read_table(path: str, fmt: str, encoding: str = "utf-8") -> pd.DataFrame:
    """Read one tabular file (csv, jsonl, parquet) or saved/hub Hugging Face dataset."""
    name = Path(path).name
    if fmt != "hf" and not Path(path).is_file():
        raise DataError(f"{path}: file not found (dataset.path is relative to the working directory)")
    try:
        if fmt == "csv":
            sep = "\t" if path.lower().endswith(".tsv") else ","
            frame = pd.read_csv(path, sep=sep, encoding=encoding, keep_default_na=True)
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True, encoding=encoding, dtype=False)
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "hf":
            frame = read_hf(path)
        else:
            raise DataError(f"{path}: format '{fmt}' is not a table; expected csv, jsonl, parquet or hf")
    except UnicodeDecodeError as exc:
        raise _unreadable(path, exc, encoding) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a header row and judgements") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        if isinstance(exc, DataError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot be read as {fmt}: {first}") from None
    frame.columns = [str(c) for c in frame.columns]
    return _bookkeep(frame, name)


def read_hf(path: str) -> pd.DataFrame:
    """A ``datasets`` dataset saved with ``save_to_disk`` (or a hub name, for users online).

    A ``DatasetDict`` becomes one table with its split names in a ``split`` column (unless the
    rows carry one already).
    """
    import datasets  # heavy: only when a config asks for it

    if Path(path).exists():
        try:
            loaded: Any = datasets.load_from_disk(path)
        except FileNotFoundError as exc:
            raise DataError(f"{path}: not a dataset saved with save_to_disk ({exc})") from None
    else:  # a hub name; never used in tests (no network there)
        loaded = datasets.load_dataset(path)
    if isinstance(loaded, datasets.DatasetDict):
        parts = []
        for split_name, part in loaded.items():
            frame = part.to_pandas()
            if "split" not in frame.columns:
                frame["split"] = split_name
            parts.append(frame)
        return pd.concat(parts, ignore_index=True)
    return loaded.to_pandas()


def read_label_studio(path: str, encoding: str = "utf-8") -> list[dict[str, Any]]:
    """The task list of a Label Studio JSON export."""
    try:
        raw = json.loads(Path(path).read_text(encoding=encoding))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (dataset.path is relative to the working directory)") from None
    except UnicodeDecodeError as exc:
        raise _unreadable(path, exc, encoding) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(raw, list):
        raise DataError(
            f"{path}: a Label Studio export is a JSON list of tasks, got {type(raw).__name__}; "
            "export with 'JSON' (not 'JSON_MIN') format"
        )
    return raw
