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


def read_other_info(paths: list[Path]) -> dict[str, dict]:
    """The raw ``other_info`` of every item, keyed by our task id (``"{split}-{id}"``).

    Dataset builders read nested fields from it: per-annotator answers (HS-Brexit aggressiveness
    and offensiveness, ConvAbuse abuse types) and annotator groups.
    """
    out: dict[str, dict] = {}
    for path in paths:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        for item_id, record in raw.items():
            out[f"{record['split']}-{item_id}"] = record.get("other_info") or {}
    return out


def per_annotator_column(annotations: pd.DataFrame, values_by_task: dict[str, str], name: str) -> pd.Series:
    """Align a comma-separated per-annotator field (same order as ``annotators``) with the
    annotation rows; raise DataError when its length disagrees with the item's annotators."""
    position = annotations.groupby("task", sort=False).cumcount().to_numpy()
    per_task = {task: str(v).split(",") for task, v in values_by_task.items()}
    out = []
    for task, pos in zip(annotations["task"].to_numpy(), position):
        values = per_task.get(task)
        if values is None or pos >= len(values):
            raise DataError(f"LeWiDi item '{task}': field '{name}' does not list one value per annotator")
        out.append(values[pos].strip())
    return pd.Series(out, index=annotations.index, name=name)


# -- builders of the four LeWiDi 2023 datasets -------------------------------------------------
# Each maps its source fields onto our vocabulary once; column names are documented in the
# DatasetInfo cards in catalog.py.

CONVABUSE_TYPES = ("ableist", "homophobic", "intellectual", "racist", "sexist", "sex_harassment", "transphobic")
CONVABUSE_TARGETS = ("generalised", "individual", "system")
CONVABUSE_DIRECTNESS = ("explicit", "implicit")
# Our per-rater answer column -> its key in LeWiDi ConvAbuse other_info.other_annotations.
CONVABUSE_LEWIDI_KEYS = {
    **{f"type_{t}": t for t in CONVABUSE_TYPES},
    **{f"target_{t}": f"target.{t}" for t in CONVABUSE_TARGETS},
    **{f"directness_{d}": d for d in CONVABUSE_DIRECTNESS},
}


def convabuse_answer_columns(annotations: pd.DataFrame) -> pd.DataFrame:
    """Add the readable ``target`` and ``directness`` columns from the 0/1 answer columns
    (``"individual"``, ``"generalised+system"``; missing when none was ticked)."""
    out = annotations
    for name, options in (("target", CONVABUSE_TARGETS), ("directness", CONVABUSE_DIRECTNESS)):
        ticked = pd.Series("", index=out.index, dtype="str")
        for option in options:
            on = out[f"{name}_{option}"].to_numpy() == 1
            ticked = ticked.where(~on, ticked.where(ticked == "", ticked + "+") + option)
        out[name] = ticked.where(ticked != "")
    return out


HS_BREXIT_ANSWERS = {"0": 0, "1": 1, "No": 0}


def build_md_agreement(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    items, annotations = load_lewidi(paths)
    return items, annotations, None


def build_hs_brexit(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Hate speech label plus the same raters' ``aggressive`` and ``offensive`` answers; workers
    carry ``group`` (``target``: Muslim immigrants in the UK; ``control``)."""
    items, annotations = load_lewidi(paths)
    other = read_other_info(paths)
    for column, key in (("aggressive", "aggressive language detection"), ("offensive", "offensive language detection")):
        values = {t: o["other annotations"][key] for t, o in other.items()}
        answers = per_annotator_column(annotations, values, column)
        # The release has three offensiveness answers spelled "No" instead of 0.
        coded = answers.map(HS_BREXIT_ANSWERS)
        if coded.isna().any():
            bad = annotations.loc[coded.isna()].iloc[0]
            raise DataError(
                f"HS-Brexit item '{bad['task']}' rater '{bad['worker']}': {column} answer "
                f"{answers[coded.isna()].iloc[0]!r}; expected one of {sorted(HS_BREXIT_ANSWERS)}"
            )
        annotations[column] = coded.astype("int64")
    groups = per_annotator_column(annotations, {t: o["annotators group"] for t, o in other.items()}, "group")
    pairs = pd.DataFrame({"worker": annotations["worker"], "group_id": groups}).drop_duplicates()
    if pairs["worker"].duplicated().any():
        raise DataError(f"HS-Brexit: a rater is listed in two annotator groups: {pairs.loc[pairs['worker'].duplicated(keep=False)].to_dict('records')}")
    pairs["group"] = pairs["group_id"].map({"group1": "target", "group2": "control"})
    workers = pairs[["worker", "group", "group_id"]].sort_values("worker").reset_index(drop=True)
    # Group fields are about raters, not items: they live in the workers table.
    items = items.drop(columns=[c for c in ("annotators group", "group1", "group2") if c in items])
    return items, annotations, workers


def build_convabuse_lewidi(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    """Severity label (1..-3) per rater plus abuse type / target / directness answers; the item
    text is the rated user turn, its conversation context in ``prev_agent``, ``prev_user``,
    ``agent``."""
    items, annotations = load_lewidi(paths)
    other = read_other_info(paths)
    context = items["text"].map(json.loads)
    for key in ("prev_agent", "prev_user", "agent"):
        items[key] = context.map(lambda c, k=key: c.get(k))
    items["text"] = context.map(lambda c: c.get("user"))
    items = items.rename(columns={"conversation_id(s)": "conversation_ids"})
    annotations["severity"] = annotations["label"]
    for column, key in CONVABUSE_LEWIDI_KEYS.items():
        values = {t: o["other_annotations"][key] for t, o in other.items()}
        annotations[column] = per_annotator_column(annotations, values, column).astype("int64")
    return items, convabuse_answer_columns(annotations), None


def build_armis(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Misogyny label; workers carry ``group`` (e.g. ``Moderate_Female``), ``ideology``, ``gender``."""
    items, annotations = load_lewidi(paths)
    other = read_other_info(paths)
    seen: dict[str, str] = {}
    for task, info in other.items():
        for worker, group in info.items():
            if seen.setdefault(worker, group) != group:
                raise DataError(f"ArMIS: rater '{worker}' is listed as both {seen[worker]} and {group} (item {task})")
    workers = pd.DataFrame(sorted(seen.items()), columns=["worker", "group"])
    workers["ideology"] = workers["group"].str.split("_").str[0].str.lower()
    workers["gender"] = workers["group"].str.split("_").str[-1].str.lower()
    items = items.drop(columns=[c for c in seen if c in items])
    return items, annotations, workers
