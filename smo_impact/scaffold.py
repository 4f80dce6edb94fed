"""``smo-impact init``: a first experiment config for a built-in dataset or a file of the user's.

For a file, the layout and the column map are guessed from the column names and values (a row
per judgement with a rater column is ``long``; a row per item with several rater-like columns is
``wide``), and everything guessed is said, so that the user checks it before the first run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

# Common names of our columns in users' files, most specific first.
GUESSES: dict[str, tuple[str, ...]] = {
    "task": ("task", "task_id", "item_id", "item", "comment_id", "text_id", "post_id", "example_id", "sample_id", "id"),
    "worker": ("worker", "worker_id", "rater", "rater_id", "annotator", "annotator_id", "labeler", "coder", "user_id"),
    "label": ("label", "answer", "annotation", "judgement", "judgment", "rating", "response", "toxic", "offensive"),
    "text": ("text", "comment_text", "comment", "content", "sentence", "tweet", "post", "body", "message"),
    "split": ("split", "fold", "partition", "set", "subset"),
}
RATER_COLUMN = re.compile(r"^(rater|annotator|worker|ann|coder|judge|labeler)[ _\-]?\w+$", re.IGNORECASE)
MAX_LABELS = 10  # more distinct values than this is not a label set to declare


def scaffold(source: str, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The config (as data) for ``source`` and one note per guess or gap.

    Args:
        source: A built-in dataset name, or a CSV/TSV/JSONL/Parquet file of annotations.
        name: The experiment's name (default: from the dataset or file name).
    """
    from smo_impact.data.catalog import DATASETS, get_info

    notes: list[str] = []
    if source in DATASETS.names() or not Path(source).exists():
        info = get_info(source)  # an unknown name that is no file: did-you-mean error
        dataset: dict[str, Any] = {"name": info.name}
        stem = info.name
    else:
        dataset, notes = _own_dataset(source)
        stem = Path(source).name.split(".")[0]
    config = {
        "name": name or re.sub(r"[^A-Za-z0-9_-]+", "_", stem) + "_noise",
        "description": f"How much does label noise cost a classifier trained on {dataset['name']}?",
        "dataset": dataset,
        "arms": {
            "control": [{"aggregate": {"method": "majority", "tie": "positive"}}],
            "label_noise": [{"aggregate": {"method": "majority", "tie": "positive"}}, {"noise": {"rate": 0.2}}],
        },
        "sweep": {"label_noise": {"noise.rate": [0.1, 0.2, 0.3]}},
        "seeds": [0, 1, 2],
        "model": {"name": "tfidf_logreg", "params": {"C": 4.0}},
        "evaluation": {"split": "test", "reference": "majority"},
    }
    return config, notes


def _own_dataset(path: str) -> tuple[dict[str, Any], list[str]]:
    from smo_impact.data.readers import infer_format, read_table

    fmt = infer_format(path)
    if fmt not in ("csv", "jsonl", "parquet"):
        from smo_impact.errors import DataError

        raise DataError(f"{path}: init reads CSV/TSV, JSONL or Parquet files; write the dataset block by hand for "
                        "other formats (see the README, 'Your own data')")
    table = read_table(path, fmt)
    columns = [c for c in table.columns if not str(c).startswith("_")]  # _file, _row: the reader's bookkeeping
    found = {ours: _find(columns, names) for ours, names in GUESSES.items()}
    notes = []
    raters = [c for c in columns if RATER_COLUMN.match(str(c)) and c != found["worker"]]
    if found["worker"] is None and len(raters) >= 2:
        layout, found["label"] = "wide", None
        notes.append(f"layout: wide (a row per item, a column per rater: {', '.join(map(str, raters))})")
        values = _distinct(table[raters].stack())
    else:
        layout = "long"
        notes.append("layout: long (a row per judgement)" + ("" if found["worker"] else
                     "; no rater column found: map yours with column_map.worker"))
        values = _distinct(table[found["label"]]) if found["label"] else []
    dataset: dict[str, Any] = {"name": re.sub(r"[^A-Za-z0-9_-]+", "-", Path(path).name.split(".")[0]).strip("-") or "my-data",
                               "path": path, "layout": layout}
    column_map = {ours: theirs for ours, theirs in found.items() if theirs is not None and theirs != ours}
    if column_map:
        dataset["column_map"] = column_map
    if layout == "wide":
        dataset["rater_columns"] = raters
    for ours, theirs in found.items():
        if theirs is not None:
            notes.append(f"column {ours}: {theirs!r}")
        elif not (ours == "label" and layout == "wide") and not (ours == "worker" and layout == "wide"):
            notes.append(f"column {ours}: not found; map it with dataset.column_map.{ours}")
    if 2 <= len(values) <= MAX_LABELS:
        dataset["labels"] = sorted(values, key=lambda v: (str(type(v)), v))
        notes.append(f"labels: {dataset['labels']} (declared benign -> harmful: reorder them if the harmful one is not last)")
    elif values:
        notes.append(f"labels: {len(values)} distinct values; declare the label set with dataset.labels")
    return dataset, notes


def _find(columns: list[Any], names: tuple[str, ...]) -> Any:
    lowered = {str(c).lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def _distinct(values: Any) -> list[Any]:
    """Distinct non-missing values as plain Python scalars (YAML-safe)."""
    import pandas as pd

    series = pd.Series(values).dropna()
    return [v.item() if hasattr(v, "item") else v for v in series.unique()][: MAX_LABELS + 1]


def to_yaml(config: dict[str, Any], notes: list[str], source: str) -> str:
    """The config as YAML, headed by what was guessed."""
    head = [f"# Scaffolded by `smo-impact init {source}`: check the guesses below, then", "#   smo-impact validate THIS_FILE --data",
            "#   smo-impact run THIS_FILE --dry-run"]
    head += [f"# - {note}" for note in notes]
    return "\n".join(head) + "\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


__all__ = ["scaffold", "to_yaml"]
