"""Bring-your-own data: every file format and layout round-trips a small generated file."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from smo_impact.config import DatasetSpec
from smo_impact.data.loader import load_data
from smo_impact.data.validation import DataWarning
from smo_impact.errors import DataError

# 4 items x 3 raters; t4 is rated by r1 and r2 only. Hand-checkable vote counts:
# t1 yes,yes,no | t2 no,no,no | t3 yes,yes,yes | t4 no,yes
JUDGEMENTS = [
    ("t1", "r1", "yes"), ("t1", "r2", "yes"), ("t1", "r3", "no"),
    ("t2", "r1", "no"), ("t2", "r2", "no"), ("t2", "r3", "no"),
    ("t3", "r1", "yes"), ("t3", "r2", "yes"), ("t3", "r3", "yes"),
    ("t4", "r1", "no"), ("t4", "r2", "yes"),
]  # fmt: skip
ITEMS = {
    "t1": ("you are awful", "train", "forum"),
    "t2": ("have a nice day", "train", "chat"),
    "t3": ("I will hurt you", "test", "chat"),
    "t4": ("meh", "validation", "forum"),
}
EXPECTED_COUNTS = {"t1": [1, 2], "t2": [3, 0], "t3": [0, 3], "t4": [1, 1]}


def long_frame() -> pd.DataFrame:
    """The judgements in a user's own column names."""
    rows = [
        {"item_id": t, "rater": w, "answer": lab, "comment": ITEMS[t][0], "fold": ITEMS[t][1], "source": ITEMS[t][2], "seconds": i}
        for i, (t, w, lab) in enumerate(JUDGEMENTS)
    ]
    return pd.DataFrame(rows)


LONG_MAP = {"task": "item_id", "worker": "rater", "label": "answer", "text": "comment", "split": "fold"}


def spec(**kwargs) -> DatasetSpec:
    base = {"name": "mine", "labels": ["no", "yes"], "min_rater_judgements": 1}
    return DatasetSpec(**{**base, **kwargs})


def assert_round_trip(data, extra_annotation_columns=("seconds",)) -> None:
    counts = data.vote_counts()
    assert {t: counts.loc[t].tolist() for t in counts.index} == EXPECTED_COUNTS
    items = data.items.set_index("task")
    assert items["text"].to_dict() == {t: v[0] for t, v in ITEMS.items()}
    assert items["split"].to_dict() == {"t1": "train", "t2": "train", "t3": "test", "t4": "dev"}
    for column in extra_annotation_columns:
        assert column in data.annotations.columns
    assert data.labels == ("no", "yes")
    assert data.positive_label == "yes"  # default: the last (most harmful) declared label


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_long_format_round_trips(tmp_path, suffix):
    path = tmp_path / f"judgements.{suffix}"
    frame = long_frame()
    if suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # clean data: no warning either
        data = load_data(spec(path=str(path), column_map=LONG_MAP, slice_columns=["source"]))
    assert_round_trip(data)
    assert data.slice_columns == ("source",)
    assert data.items.set_index("task")["source"].to_dict() == {t: v[2] for t, v in ITEMS.items()}
    # extra columns stay with the judgement they belong to
    assert data.annotations.set_index(["task", "worker"]).loc[("t4", "r2"), "seconds"] == 10


def test_hf_saved_dataset_round_trips(tmp_path):
    datasets = pytest.importorskip("datasets")
    frame = long_frame()
    # A DatasetDict: the split of each row comes from its key.
    parts = {
        fold: datasets.Dataset.from_pandas(rows.drop(columns="fold"), preserve_index=False)
        for fold, rows in frame.groupby("fold")
    }
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "hf"))
    column_map = {k: v for k, v in LONG_MAP.items() if k != "split"}
    data = load_data(spec(path=str(tmp_path / "hf"), column_map=column_map))
    assert_round_trip(data)


def test_wide_format_round_trips(tmp_path):
    wide = pd.DataFrame(
        [
            {"id": t, "text": v[0], "split": v[1], "r1": None, "r2": None, "r3": None}
            for t, v in ITEMS.items()
        ]
    )
    for t, w, lab in JUDGEMENTS:
        wide.loc[wide["id"] == t, w] = lab
    path = tmp_path / "wide.csv"
    wide.to_csv(path, index=False)  # t4's r3 cell is empty: not rated
    data = load_data(spec(path=str(path), layout="wide", column_map={"task": "id"}))
    assert_round_trip(data, extra_annotation_columns=())
    assert sorted(data.annotations["worker"].unique()) == ["r1", "r2", "r3"]
    assert len(data.annotations) == 11


def test_count_format_expands_anonymous_raters(tmp_path):
    counts = pd.DataFrame(
        [{"task": t, "text": v[0], "split": v[1], "n_no": c[0], "n_yes": c[1]} for (t, v), c in zip(ITEMS.items(), EXPECTED_COUNTS.values())]
    )
    path = tmp_path / "counts.csv"
    counts.to_csv(path, index=False)
    data = load_data(spec(path=str(path), layout="count", count_columns={"no": "n_no", "yes": "n_yes"}))
    assert_round_trip(data, extra_annotation_columns=())
    assert len(data.annotations) == 11
    # one anonymous rater per vote, never shared across items
    assert data.annotations["worker"].str.startswith("anon:").all()
    assert data.annotations["worker"].nunique() == 11
    assert sorted(data.annotations.loc[data.annotations["task"] == "t1", "worker"]) == ["anon:t1:0", "anon:t1:1", "anon:t1:2"]


def test_label_studio_export_round_trips(tmp_path):
    tasks = []
    for n, (t, v) in enumerate(ITEMS.items()):
        annotations = [
            {
                "id": 100 + i,
                "completed_by": {"id": int(w[1]), "email": f"{w}@example.org"} if i % 2 else int(w[1]),
                "result": [{"from_name": "toxic", "to_name": "text", "type": "choices", "value": {"choices": [lab]}}],
                "was_cancelled": False,
            }
            for i, (task, w, lab) in enumerate(JUDGEMENTS)
            if task == t
        ]
        annotations.append({"id": 999, "completed_by": 9, "result": [], "was_cancelled": True})
        tasks.append({"id": t, "data": {"text": v[0], "split": v[1], "source": v[2]}, "annotations": annotations})
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    data = load_data(spec(path=str(path), layout="label_studio", slice_columns=["source"]))
    assert_round_trip(data, extra_annotation_columns=())
    assert len(data.annotations) == 11  # the cancelled annotation is not a judgement


def test_items_and_workers_tables_join_by_key(tmp_path):
    frame = long_frame()[["item_id", "rater", "answer"]]
    frame.to_csv(tmp_path / "judgements.csv", index=False)
    items = pd.DataFrame([{"id": t, "body": v[0], "split": v[1], "gold": int(t in ("t1", "t3"))} for t, v in ITEMS.items()])
    items.to_csv(tmp_path / "items.csv", index=False)
    workers = pd.DataFrame({"worker": ["r1", "r2", "r3"], "pool": ["vendor", "vendor", "expert"], "cost_per_label": [0.02, 0.02, 0.5]})
    workers.to_parquet(tmp_path / "workers.parquet")
    data = load_data(
        spec(
            path=str(tmp_path / "judgements.csv"),
            column_map={"task": "item_id", "worker": "rater", "label": "answer"},
            items={"path": str(tmp_path / "items.csv"), "column_map": {"task": "id", "text": "body"}},
            workers={"path": str(tmp_path / "workers.parquet")},
        )
    )
    assert_round_trip(data, extra_annotation_columns=())
    assert data.items.set_index("task")["gold"].to_dict() == {"t1": 1, "t2": 0, "t3": 1, "t4": 0}
    assert data.workers.set_index("worker")["cost_per_label"].to_dict() == {"r1": 0.02, "r2": 0.02, "r3": 0.5}


def test_ordinal_scale_with_binary_default(tmp_path):
    # a 1-5 offensiveness scale; 4 and 5 count as harmful under the declared binary rule
    rows = [("a", "r1", 1), ("a", "r2", 2), ("b", "r1", 5), ("b", "r2", 4), ("c", "r1", 3), ("c", "r2", 4)]
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    frame["text"] = frame["task"].map({"a": "fine", "b": "awful", "c": "so-so"})
    frame["split"] = frame["task"].map({"a": "train", "b": "train", "c": "test"})
    frame.to_csv(tmp_path / "ordinal.csv", index=False)
    raw = load_data(spec(path=str(tmp_path / "ordinal.csv"), labels=[1, 2, 3, 4, 5], positive_labels=[4, 5], binarize=False))
    assert raw.labels == (1, 2, 3, 4, 5)
    assert raw.annotations["label"].tolist() == [1, 2, 5, 4, 3, 4]
    binary = load_data(spec(path=str(tmp_path / "ordinal.csv"), labels=[1, 2, 3, 4, 5], positive_labels=[4, 5]))
    assert binary.labels == (0, 1) and binary.positive_label == 1
    assert binary.annotations["label"].tolist() == [0, 0, 1, 1, 0, 1]
    assert binary.annotations["label_raw"].tolist() == [1, 2, 5, 4, 3, 4]


def test_digest_is_stable_across_row_order(tmp_path):
    frame = long_frame()
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.sample(frac=1.0, random_state=3).to_csv(tmp_path / "b.csv", index=False)
    a = load_data(spec(path=str(tmp_path / "a.csv"), column_map=LONG_MAP))
    b = load_data(spec(path=str(tmp_path / "b.csv"), column_map=LONG_MAP))
    assert a.digest() == b.digest() == load_data(spec(path=str(tmp_path / "a.csv"), column_map=LONG_MAP)).digest()
    frame.loc[0, "answer"] = "no"
    frame.to_csv(tmp_path / "c.csv", index=False)
    assert load_data(spec(path=str(tmp_path / "c.csv"), column_map=LONG_MAP)).digest() != a.digest()


def test_several_files_concatenate(tmp_path):
    frame = long_frame()
    frame.iloc[:6].to_csv(tmp_path / "part1.csv", index=False)
    frame.iloc[6:].to_csv(tmp_path / "part2.csv", index=False)
    data = load_data(spec(path=[str(tmp_path / "part1.csv"), str(tmp_path / "part2.csv")], column_map=LONG_MAP))
    assert_round_trip(data)


def test_experiment_runs_end_to_end_on_own_csv(tmp_path):
    """A config naming a user's CSV: load -> treat -> train -> evaluate, nothing special-cased."""
    from smo_impact.config import load_config
    from smo_impact.runner.experiment import prepare
    from smo_impact.runner.run import execute_run
    from tests.conftest import make_text_dataset

    toy = make_text_dataset(300)
    frame = toy.annotations.merge(toy.items, on="task").rename(columns={"task": "id", "worker": "annotator", "label": "toxic"})
    frame["toxic"] = frame["toxic"].map({0: "ok", 1: "toxic"})
    frame.to_csv(tmp_path / "export.csv", index=False)
    (tmp_path / "own.yaml").write_text(
        "dataset:\n"
        f"  name: my-export\n  path: {tmp_path / 'export.csv'}\n  labels: [ok, toxic]\n"
        "  column_map: {task: id, worker: annotator, label: toxic}\n  slice_columns: [domain]\n"
        "arms:\n  control: [aggregate]\n  noisy: [aggregate, {noise: {rate: 0.3}}]\n"
        "model: {name: tfidf_logreg, params: {min_df: 1}}\n"
    )
    dataset, context, specs, _ = prepare(load_config(tmp_path / "own.yaml"))
    assert dataset.name == "my-export" and dataset.positive_label == "toxic"
    assert dataset.digest() == load_data(load_config(tmp_path / "own.yaml").dataset).digest()
    results = {spec.arm: execute_run(spec, context) for spec in specs}
    assert results["control"].metrics["test/macro_f1"] > 0.8  # 'bad' words make the toy task learnable
    assert results["noisy"].metrics["test/macro_f1"] < results["control"].metrics["test/macro_f1"]
    assert set(results["control"].predictions["domain"]) == {"a", "b"}


def test_multiclass_count_columns_named_like_the_labels(tmp_path):
    # Davidson-style per-class vote counts: hate=1, offensive=2, neither=0
    pd.DataFrame(
        {"task": ["x", "y"], "text": ["tweet x", "tweet y"], "split": ["train", "test"], "neither": [0, 3], "offensive": [2, 0], "hate": [1, 0]}
    ).to_csv(tmp_path / "counts.csv", index=False)
    data = load_data(spec(path=str(tmp_path / "counts.csv"), layout="count", labels=["neither", "offensive", "hate"]))
    counts = data.vote_counts()
    assert counts.loc["x"].tolist() == [0, 2, 1] and counts.loc["y"].tolist() == [3, 0, 0]
    assert data.positive_label == "hate"


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_compressed_file_with_a_plain_name_is_read_by_its_magic_bytes(tmp_path, suffix):
    import gzip

    frame = long_frame()
    text = frame.to_csv(index=False) if suffix == "csv" else frame.to_json(orient="records", lines=True)
    path = tmp_path / f"judgements.{suffix}"  # gzip inside, no .gz in the name
    path.write_bytes(gzip.compress(text.encode()))
    assert_round_trip(load_data(spec(path=str(path), column_map=LONG_MAP)))


def demographics_frame() -> pd.DataFrame:
    """The long judgements with each rater's gender and age on every row (r3 leaves age blank once)."""
    person = {"r1": ("woman", "25-34"), "r2": ("man", "35-44"), "r3": ("woman", "18-24")}
    frame = long_frame()
    frame["Gender"] = frame["rater"].map(lambda r: person[r][0])
    frame["age"] = frame["rater"].map(lambda r: person[r][1])
    frame.loc[2, "age"] = None  # row 3 is r3's first judgement
    return frame


def test_worker_columns_build_the_workers_table_from_the_rows(tmp_path):
    path = tmp_path / "judgements.csv"
    demographics_frame().to_csv(path, index=False)
    data = load_data(spec(path=str(path), column_map={**LONG_MAP, "gender": "Gender"}, worker_columns=["gender", "age"]))
    assert_round_trip(data)
    assert data.workers.set_index("worker").to_dict("index") == {
        "r1": {"gender": "woman", "age": "25-34"}, "r2": {"gender": "man", "age": "35-44"}, "r3": {"gender": "woman", "age": "18-24"},
    }
    assert "gender" not in data.annotations.columns and "age" not in data.annotations.columns


def test_worker_columns_join_a_workers_table(tmp_path):
    path = tmp_path / "judgements.csv"
    demographics_frame().to_csv(path, index=False)
    pd.DataFrame({"rater": ["r1", "r2", "r3"], "pool": ["vendor", "vendor", "staff"]}).to_csv(tmp_path / "raters.csv", index=False)
    data = load_data(spec(path=str(path), column_map=LONG_MAP, worker_columns=["age"],
                          workers={"path": str(tmp_path / "raters.csv"), "column_map": {"worker": "rater"}}))
    assert data.workers.set_index("worker")[["age", "pool"]].loc["r3"].tolist() == ["18-24", "staff"]
    clash = {"path": str(tmp_path / "raters.csv"), "column_map": {"worker": "rater", "age": "pool"}}
    with pytest.raises(DataError, match="raters.csv: column 'age' is both in the workers table and in dataset.worker_columns"):
        load_data(spec(path=str(path), column_map=LONG_MAP, worker_columns=["age"], workers=clash))


def test_a_rater_attribute_that_changes_between_rows_is_named_with_its_rows(tmp_path):
    frame = demographics_frame()
    frame.loc[7, "age"] = "45-54"  # row 8: r2's third judgement
    frame.to_csv(tmp_path / "judgements.csv", index=False)
    with pytest.raises(DataError) as error:
        load_data(spec(path=str(tmp_path / "judgements.csv"), column_map=LONG_MAP, worker_columns=["age"]))
    assert str(error.value) == (
        "judgements.csv: worker 'r2' has 2 different values in worker column 'age': '35-44' at judgements.csv row 2, "
        "then '45-54' at judgements.csv row 8; a rater attribute must be the same in every row of that rater: correct "
        "those rows, or drop 'age' from dataset.worker_columns"
    )
    with pytest.raises(DataError, match=r"judgements.csv: worker column\(s\) \['religion'\] \(dataset.worker_columns\) not found"):
        load_data(spec(path=str(tmp_path / "judgements.csv"), column_map=LONG_MAP, worker_columns=["religion"]))
    with pytest.raises(ValueError, match="dataset.worker_columns only applies to layout: long"):
        spec(path="x.csv", layout="wide", worker_columns=["age"])


def test_the_documented_count_and_demographics_examples_load(tmp_path):
    """configs/datasets/own_count_csv.yaml and own_long_demographics.yaml, on files shaped as their
    comments show."""
    from pathlib import Path

    import numpy as np

    from smo_impact.data.loader import dataset_spec_from

    configs = Path(__file__).resolve().parents[2] / "configs" / "datasets"
    rng = np.random.default_rng(0)
    votes = rng.multinomial(3, [0.34, 0.33, 0.33], size=200)
    pd.DataFrame({
        "id": [f"t{i:03d}" for i in range(200)], "tweet": [f"tweet {i}" for i in range(200)],
        "hate_votes": votes[:, 0], "offensive_votes": votes[:, 1], "neither_votes": votes[:, 2], "author": [f"u{i // 2}" for i in range(200)],
    }).to_csv(tmp_path / "counts.csv", index=False)  # fmt: skip
    data = load_data(dataset_spec_from(str(configs / "own_count_csv.yaml"), [f"path={tmp_path / 'counts.csv'}"]))
    assert data.vote_counts().loc["t000"].tolist() == [votes[0, 2], votes[0, 1], votes[0, 0]]  # neither, offensive, hate
    assert (data.items.groupby("author")["split"].nunique() == 1).all()

    people = {f"a{k:02d}": (["woman", "man"][k % 2], ["Black", "White", "Asian"][k % 3], ["18-24", "35-44"][k // 3 % 2]) for k in range(6)}
    rows = [
        {"item_id": i, "text": f"comment {i}", "annotator_id": a, "rating": int(rng.integers(1, 6)),
         "gender": g, "race": r, "age": age}
        for i in range(100) for a, (g, r, age) in people.items() if (i + int(a[1:])) % 2 == 0
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "ratings.csv", index=False)
    data = load_data(dataset_spec_from(str(configs / "own_long_demographics.yaml"), [f"path={tmp_path / 'ratings.csv'}"]))
    assert data.labels == (1, 2, 3, 4, 5) and len(data.workers) == 6
    assert data.workers.set_index("worker").loc["a03"].tolist() == ["man", "Black", "35-44"]
