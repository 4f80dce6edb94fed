"""Every validation rule of the data layer, triggered on a tiny generated file, wording pinned."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from smo_impact.config import DatasetSpec
from smo_impact.data.loader import load_data
from smo_impact.data.validation import DataWarning
from smo_impact.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def judgements() -> pd.DataFrame:
    """3 items x 3 raters, long format, our column names; rows 1-9 in file order."""
    rows = []
    for t, text, split in (("a", "first text", "train"), ("b", "second text", "train"), ("c", "third text", "test")):
        for w in ("r1", "r2", "r3"):
            rows.append({"task": t, "worker": w, "label": 1 if t == "a" else 0, "text": text, "split": split})
    return pd.DataFrame(rows)


def load(tmp_path, frame: pd.DataFrame, name: str = "judgements.csv", **spec) -> object:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return load_data(DatasetSpec(**{"name": "mine", "path": str(path), "labels": [0, 1], "min_rater_judgements": 1, **spec}))


def test_missing_unmapped_column(tmp_path):
    frame = judgements().rename(columns={"worker": "annotator"})
    with pytest.raises(
        DataError,
        match=r"judgements.csv: required column\(s\) 'worker' missing; found: task, annotator, label, text, split\. "
        r"Map them with dataset.column_map, e.g. column_map: \{worker: <your column>\}",
    ):
        load(tmp_path, frame)


def test_mapped_column_absent_from_file(tmp_path):
    with pytest.raises(DataError, match=r"column 'rater' \(mapped to 'worker' by dataset.column_map\) is not in the file; found: task, label, text, split"):
        load(tmp_path, judgements().drop(columns="worker"), column_map={"worker": "rater"})


def test_label_outside_declared_set(tmp_path):
    frame = judgements()
    frame["label"] = frame["label"].astype(object)
    frame.loc[4, "label"] = "maybe"
    with pytest.raises(
        DataError,
        match=r"judgements.csv: column 'label' has 1 value\(s\) outside the declared label set: 'maybe' at "
        r"judgements.csv row 5; expected one of \[0, 1\] \(dataset.labels\)",
    ):
        load(tmp_path, frame)


def test_missing_label_is_outside_the_set(tmp_path):
    frame = judgements()
    frame["label"] = frame["label"].astype(float)
    frame.loc[[1, 7], "label"] = None
    with pytest.raises(DataError, match=r"2 value\(s\) outside the declared label set: None at judgements.csv rows 2, 8"):
        load(tmp_path, frame)


def test_duplicate_judgements_policy(tmp_path):
    frame = pd.concat([judgements(), judgements().iloc[[3]].assign(label=1)], ignore_index=True)  # b/r1 again, row 10
    with pytest.raises(
        DataError,
        match=r"1 duplicate \(task, worker\) judgement\(s\), e.g. task 'b' worker 'r1' at judgements.csv rows 4, 10; "
        r"set dataset.duplicates to first or last to keep one",
    ):
        load(tmp_path, frame)
    first = load(tmp_path, frame, duplicates="first").annotations.set_index(["task", "worker"])["label"]
    last = load(tmp_path, frame, duplicates="last").annotations.set_index(["task", "worker"])["label"]
    assert (first.loc[("b", "r1")], last.loc[("b", "r1")]) == (0, 1)
    assert len(first) == len(last) == 9


def test_empty_text(tmp_path):
    frame = judgements()
    frame.loc[frame["task"] == "b", "text"] = "   "
    with pytest.raises(DataError, match=r"1 item\(s\) with empty text in column 'text', e.g. task 'b' at judgements.csv row 4; fill or drop them"):
        load(tmp_path, frame)


def test_annotations_for_unknown_items(tmp_path):
    items = pd.DataFrame({"task": ["a", "b"], "text": ["first text", "second text"], "split": ["train", "test"]})
    items.to_csv(tmp_path / "items.csv", index=False)
    with pytest.raises(
        DataError,
        match=r"judgements.csv: 3 judgement\(s\) refer to tasks missing from items.csv, e.g. task 'c' at judgements.csv rows 7, 8, 9",
    ):
        load(tmp_path, judgements().drop(columns=["text", "split"]), items={"path": str(tmp_path / "items.csv")})


def test_item_in_two_splits(tmp_path):
    frame = judgements()
    frame.loc[2, "split"] = "test"  # a/r3 says test, a/r1 and a/r2 say train
    with pytest.raises(
        DataError,
        match=r"1 item\(s\) appear in more than one split, e.g. task 'a' in test and train at judgements.csv rows 1, 2, 3; "
        r"an item belongs to one split",
    ):
        load(tmp_path, frame)
    # dedupe keeps the item's most held-out split only
    kept = load(tmp_path, frame, leakage="dedupe")
    assert kept.items.set_index("task").loc["a", "split"] == "test"
    assert kept.annotations.loc[kept.annotations["task"] == "a", "worker"].tolist() == ["r3"]


def test_same_text_in_train_and_test(tmp_path):
    frame = judgements()
    frame.loc[frame["task"] == "a", "text"] = "Third  TEXT"  # same as c's text up to case and spacing
    with pytest.raises(
        DataError,
        match=r"1 item\(s\) share their text with an item of a more held-out split \(leakage\), e.g. 'Third  TEXT' in "
        r"train \(task 'a'\) and test \(task 'c'\); set dataset.leakage to dedupe",
    ):
        load(tmp_path, frame)
    deduped = load(tmp_path, frame, leakage="dedupe")
    assert sorted(deduped.items["task"]) == ["b", "c"]  # the train copy goes, the test set stays whole
    assert len(deduped.annotations) == 6
    with pytest.warns(DataWarning, match=r"share their text .* kept \(dataset.leakage: warn\)"):
        assert len(load(tmp_path, frame, leakage="warn").items) == 3


def test_empty_result_after_filters(tmp_path):
    with pytest.raises(DataError, match=r"judgements.csv: no judgements left after dataset.where=\{'split': \['dev'\]\} \(9 judgements before\)"):
        load(tmp_path, judgements(), where={"split": ["dev"]})
    kept = load(tmp_path, judgements(), where={"worker": ["r1", "r2"]})
    assert len(kept.annotations) == 6


def test_unknown_split_value(tmp_path):
    frame = judgements()
    frame.loc[frame["task"] == "c", "split"] = "holdout"
    with pytest.raises(DataError, match=r"column 'split' has unknown value\(s\) 'holdout' at judgements.csv rows 7, 8, 9; expected one of \['train', 'dev', 'test'\]"):
        load(tmp_path, frame)


def test_unreadable_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("task,worker,label,text,split\na,r1,1,caf\xe9 cr\xe8me,train\n".encode("latin-1"))
    spec = {"name": "mine", "path": str(path), "labels": [0, 1]}
    with pytest.raises(DataError, match=r"latin.csv: cannot be read as utf-8 \(invalid continuation byte: byte 0xe9 at position \d+\); set dataset.encoding"):
        load_data(DatasetSpec(**spec))
    with pytest.warns(DataWarning, match=r"^latin.csv: 1 item\(s\) have a single judgement, e.g. task 'a'; their label is one rater's opinion$"):
        data = load_data(DatasetSpec(**spec, encoding="latin-1"))
    assert data.items["text"].tolist() == ["café crème"]


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.csv: the file is empty; expected a header row and judgements"):
        load_data(DatasetSpec(name="mine", path=str(tmp_path / "empty.csv"), labels=[0, 1]))


def test_bad_vote_count(tmp_path):
    pd.DataFrame({"task": ["a"], "text": ["x"], "split": ["train"], "0": [2], "1": [-1]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(DataError, match=r"c.csv: column '1' row 1: vote count -1 is not a non-negative integer"):
        load_data(DatasetSpec(name="mine", path=str(tmp_path / "c.csv"), labels=[0, 1], layout="count"))


def test_warnings_for_single_judgement_items_and_sparse_raters(tmp_path):
    frame = pd.concat(
        [judgements(), pd.DataFrame([{"task": "d", "worker": "r9", "label": 0, "text": "fourth", "split": "train"}])],
        ignore_index=True,
    )
    with pytest.warns(DataWarning) as record:
        load(tmp_path, frame, min_rater_judgements=3)
    messages = [str(r.message) for r in record]
    assert any(m == "judgements.csv: 1 item(s) have a single judgement, e.g. task 'd'; their label is one rater's opinion" for m in messages)
    assert any(m.startswith("judgements.csv: 1 of 4 rater(s) have fewer than 3 judgements, e.g. worker 'r9' with 1") for m in messages)


def test_cli_prints_one_line_and_exits_2(tmp_path):
    frame = judgements()
    frame.loc[frame["task"] == "a", "text"] = ""
    frame.to_csv(tmp_path / "judgements.csv", index=False)
    config = {
        "name": "own",
        "dataset": {"name": "mine", "path": str(tmp_path / "judgements.csv"), "labels": [0, 1]},
        "arms": {"control": ["aggregate"]},
    }
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "smo_impact.cli", "datasets", "show", str(tmp_path / "own.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: judgements.csv: 1 item(s) with empty text in column 'text', e.g. task 'a' at judgements.csv row 1;")


def test_item_text_must_agree_across_its_rows(tmp_path):
    frame = judgements()
    frame.loc[4, "text"] = "second text, edited"
    with pytest.raises(
        DataError,
        match=r"item 'b' has 2 different values in item column 'text' at judgements.csv rows 4, 5, 6, e.g. 'second text', "
        r"'second text, edited'; an item's text must be the same in every row",
    ):
        load(tmp_path, frame)


def test_items_and_workers_tables_are_checked_against_their_own_rows(tmp_path):
    judgements().drop(columns=["text", "split"]).to_csv(tmp_path / "judgements.csv", index=False)
    items = pd.DataFrame({"task": ["a", "b", "c", "z"], "text": ["first", "", "third", "unrated"], "split": ["train", "train", "test", "dev"]})
    items.to_csv(tmp_path / "items.csv", index=False)
    spec = {"name": "mine", "path": str(tmp_path / "judgements.csv"), "labels": [0, 1], "items": {"path": str(tmp_path / "items.csv")}}
    with pytest.warns(DataWarning, match=r"items.csv: 1 item\(s\) have no judgements and are left out, e.g. task 'z'"):
        with pytest.raises(DataError, match=r"items.csv: 1 item\(s\) with empty text in column 'text', e.g. task 'b' at items.csv row 2"):
            load_data(DatasetSpec(**spec))
    items.loc[1, "text"] = "second"
    items.iloc[:3].to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"worker": ["r1", "r2", "r2"], "pool": ["a", "b", "c"]}).to_csv(tmp_path / "workers.csv", index=False)
    with pytest.raises(DataError, match=r"workers.csv: worker 'r2' appears twice \(row 3\); the workers table has one row per worker"):
        load_data(DatasetSpec(**spec, workers={"path": str(tmp_path / "workers.csv")}))
    pd.DataFrame({"worker": ["r1", "r2"], "pool": ["a", "b"]}).to_csv(tmp_path / "workers.csv", index=False)
    with pytest.warns(DataWarning, match=r"workers.csv: 1 rater\(s\) with judgements have no row here, e.g. worker 'r3'"):
        data = load_data(DatasetSpec(**spec, workers={"path": str(tmp_path / "workers.csv")}))
    assert data.workers["pool"].tolist() == ["a", "b"]


def test_text_longer_than_max_text_chars_is_an_error_or_truncated(tmp_path):
    frame = judgements()
    frame.loc[frame["task"] == "b", "text"] = "long " * 30  # 150 characters
    with pytest.raises(
        DataError,
        match=r"judgements.csv: 1 item\(s\) with text longer than dataset.max_text_chars=100 characters, e.g. task 'b' "
        r"\(150 characters\) at judgements.csv row 4; shorten them, raise dataset.max_text_chars, or set "
        r"dataset.long_text: truncate",
    ):
        load(tmp_path, frame, max_text_chars=100)
    with pytest.warns(DataWarning, match=r"judgements.csv: 1 item\(s\) with text longer than dataset.max_text_chars=100 "
                      r"characters truncated to 100, e.g. task 'b' \(150 characters\) \(dataset.long_text: truncate\)"):
        data = load(tmp_path, frame, max_text_chars=100, long_text="truncate")
    assert data.items.set_index("task")["text"].to_dict() == {"a": "first text", "b": ("long " * 30)[:100], "c": "third text"}
    assert DatasetSpec(name="x").max_text_chars == 100_000


def test_items_table_text_is_bounded_too(tmp_path):
    frame = judgements().drop(columns=["text", "split"])
    items = pd.DataFrame({"task": ["a", "b", "c"], "text": ["short", "x" * 101, "short too"], "split": ["train", "train", "test"]})
    items.to_csv(tmp_path / "items.csv", index=False)
    with pytest.raises(DataError, match=r"items.csv: 1 item\(s\) with text longer than dataset.max_text_chars=100 "
                       r"characters, e.g. task 'b' \(101 characters\) at items.csv row 2"):
        load(tmp_path, frame, max_text_chars=100, items={"path": str(tmp_path / "items.csv")})


def test_messages_quote_at_most_about_100_characters_of_a_user_value(tmp_path):
    """A label, task, split or column name may be megabytes long; a message quotes ~100 characters."""
    long = "x" * 5000

    def frame_with(changes):
        frame = judgements().astype(object)
        for (row, column), value in changes.items():
            frame.loc[row, column] = value
        return frame

    cases = [
        dict(frame=frame_with({(4, "label"): long})),
        dict(frame=frame_with({(4, "split"): long})),
        dict(frame=judgements().assign(task=long)),  # every row: duplicate judgements of one task
        dict(frame=judgements().rename(columns={"worker": long})),
        dict(frame=judgements(), where={long: [long]}),
        dict(frame=judgements().assign(text=lambda f: f["text"].where(f.index != 3, long)), max_text_chars=100),
        dict(frame=frame_with({(0, "text"): long})),  # the same item, two texts
    ]
    for case in cases:
        frame = case.pop("frame")
        with pytest.raises(DataError) as info:
            load(tmp_path, frame, **case)
        assert "x" * 101 not in str(info.value) and len(str(info.value)) < 600, str(info.value)[:300]


def test_cells_of_the_wrong_type_name_file_column_and_expected_type(tmp_path):
    frame = judgements()
    frame["label"] = frame["label"].astype(object)
    frame.at[4, "label"] = {"toxic": 1}
    (tmp_path / "j.jsonl").write_text(frame.to_json(orient="records", lines=True))
    with pytest.raises(DataError, match=r"j.jsonl: column 'label' holds dict values, e.g. \{'toxic': 1\} at j.jsonl row 5; "
                       r"expected one label per row: a string or a number"):
        load_data(DatasetSpec(name="mine", path=str(tmp_path / "j.jsonl"), labels=[0, 1]))
    frame = judgements().rename(columns={"worker": "rater"})
    frame["rater"] = [[w] for w in frame["rater"]]
    frame.to_parquet(tmp_path / "w.parquet")
    with pytest.raises(DataError, match=r"w.parquet: column 'rater' \(mapped to 'worker' by dataset.column_map\) holds list "
                       r"values, e.g. \['r1'\] at w.parquet rows 1, 2, 3 \(and 6 more\); expected one rater id per row"):
        load_data(DatasetSpec(name="mine", path=str(tmp_path / "w.parquet"), labels=[0, 1], column_map={"worker": "rater"}))
    items = pd.DataFrame({"task": ["a", "b", "c"], "text": ["fine", 7, "fine too"], "split": ["train", "train", "test"]})
    items.to_json(tmp_path / "items.jsonl", orient="records", lines=True)
    with pytest.raises(DataError, match=r"items.jsonl: column 'text' holds int values, e.g. 7 at items.jsonl row 2; expected text"):
        load(tmp_path, judgements().drop(columns=["text", "split"]), items={"path": str(tmp_path / "items.jsonl")})


def test_empty_task_ids_name_their_rows(tmp_path):
    frame = judgements().astype(object)
    frame.loc[[2, 6], "task"] = None
    with pytest.raises(DataError, match=r"judgements.csv: 2 judgement\(s\) with an empty task id in column 'task' at "
                       r"judgements.csv rows 3, 7; every judgement needs its item: fill them in or drop those rows"):
        load(tmp_path, frame)
