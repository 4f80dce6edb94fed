"""Read users' annotation files: CSV, JSONL, Parquet, a Hugging Face ``datasets`` dataset, or a
Label Studio JSON export.

Every table comes back with two bookkeeping columns, ``_file`` and ``_row`` (1-based data row,
header excluded), so that later checks can name the row a problem came from.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from smo_impact.data.validation import FILE, ROW
from smo_impact.errors import DataError, not_a_regular_file, shown

FileFormat = Literal["csv", "jsonl", "parquet", "hf", "label_studio"]
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
# Compressed files are recognised by their first bytes, whatever their name says (a gzip file
# named .csv was read as text and got latin-1 advice).
_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip", b"\x28\xb5\x2f\xfd": "zstd"}
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst")
_OPENERS = {None: open, "gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}


def _plain_suffix(path: str) -> str:
    """``.csv`` for ``a.csv`` and ``a.csv.gz`` alike."""
    p = Path(path.lower())
    return p.with_suffix("").suffix if p.suffix in _COMPRESSED_SUFFIXES else p.suffix


def infer_format(path: str) -> str | None:
    """The format a file's name implies, or None (a directory may be a saved HF dataset)."""
    p = Path(path)
    suffix = _plain_suffix(path)
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if suffix == ".json":
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


def check_file(path: str) -> None:
    """A data path must name a regular file that exists: say what it is otherwise, without opening it."""
    kind = not_a_regular_file(path)
    if kind is not None:
        raise DataError(f"{path}: {kind}; expected a data file (csv, jsonl, parquet or a Label Studio json)")
    if not Path(path).is_file():
        if Path(path).is_dir():
            raise DataError(f"{path}: is a directory; expected a data file (or set dataset.format: hf for a saved dataset)")
        raise DataError(f"{path}: file not found (dataset.path is relative to the working directory)")


def sniff_compression(path: str) -> str | None:
    """gzip, bz2, xz, zip or zstd from the file's first bytes; None for an uncompressed file."""
    with open(path, "rb") as f:
        head = f.read(6)
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def _check_csv_header(path: str, frame: pd.DataFrame, sep: str, encoding: str, compression: str | None) -> None:
    """pandas reads a second column 'label' as 'label.1' without a word: read the header row
    itself when a column name looks like that."""
    if compression not in _OPENERS or not any(re.fullmatch(r".+\.\d+", str(c)) for c in frame.columns):
        return
    with _OPENERS[compression](path, "rt", encoding=encoding, newline="") as f:
        header = next(csv.reader(f, delimiter=sep), [])
    repeated = [name for name, n in Counter(header).items() if n > 1]
    if repeated:
        name = repeated[0]
        columns = [str(i + 1) for i, h in enumerate(header) if h == name]
        times = "twice" if len(columns) == 2 else f"{len(columns)} times"
        more = f" (and {len(repeated) - 1} more repeated name(s))" if len(repeated) > 1 else ""
        raise DataError(
            f"{path}: the header names column {shown(name)} {times} (columns {', '.join(columns[:-1])} and "
            f"{columns[-1]}){more}; rename "
            f"one (pandas would silently read the second as {shown(name + '.1')})"
        )


def _bad_json_line(path: str, encoding: str, compression: str | None) -> DataError | None:
    """The first line of a JSONL file that is not JSON, by its number (pandas gives a byte offset)."""
    if compression not in _OPENERS:
        return None
    with _OPENERS[compression](path, "rt", encoding=encoding) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                json.loads(line.rstrip("\r\n"))  # with its newline, an error would be 'line 2 column 1
            except json.JSONDecodeError as exc:
                return DataError(
                    f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno}); each line of a "
                    "JSONL file holds one JSON object"
                )
    return None


def read_table(path: str, fmt: str, encoding: str = "utf-8") -> pd.DataFrame:
    """Read one tabular file (csv, jsonl, parquet) or saved/hub Hugging Face dataset; a csv or
    jsonl file may be compressed, whatever its name."""
    name = Path(path).name
    compression = None
    if fmt != "hf":
        check_file(path)
        compression = sniff_compression(path) if fmt in ("csv", "jsonl") else None
    try:
        if fmt == "csv":
            sep = "\t" if _plain_suffix(path) == ".tsv" else ","
            frame = pd.read_csv(path, sep=sep, encoding=encoding, keep_default_na=True, compression=compression)
            _check_csv_header(path, frame, sep, encoding, compression)
        elif fmt == "jsonl":
            try:
                frame = pd.read_json(path, lines=True, encoding=encoding, dtype=False, compression=compression)
            except ValueError as exc:  # pandas names a byte offset; find the line
                raise _bad_json_line(path, encoding, compression) or exc from None
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
    except (pd.errors.ParserError, ValueError, OSError, ImportError) as exc:  # ImportError: zstandard missing
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
    check_file(path)
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
