"""`datasets show` and `audit` read the same dataset block `run` reads: a dataset YAML file, a
file with a `dataset:` block, or an experiment YAML (tests of the two commands on your own data)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from smo_impact.cli import app

PEOPLE = {"r1": ("woman", "25-34"), "r2": ("man", "35-44"), "r3": ("woman", "18-24"), "r4": ("man", "25-34")}


@pytest.fixture
def own_files(tmp_path, monkeypatch):
    """A long CSV with rater demographics on every row and no split column, and its dataset block."""
    rows = []
    for i in range(40):
        for rater, (gender, age) in PEOPLE.items():
            # the women agree with each other on every item; the men disagree on every fourth
            toxic = (i % 3 == 0) != (gender == "man" and rater == "r4" and i % 4 == 0)
            rows.append({"comment_id": f"c{i}", "rater": rater, "answer": "toxic" if toxic else "ok",
                         "comment": f"comment {i}", "Gender": gender, "age": age})  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "judgements.csv", index=False)
    block = {
        "name": "comments", "path": "judgements.csv", "labels": ["ok", "toxic"],
        "column_map": {"task": "comment_id", "worker": "rater", "label": "answer", "text": "comment", "gender": "Gender"},
        "worker_columns": ["gender", "age"],
        "split": {"train": 0.5, "dev": 0.25, "test": 0.25, "stratify": "label", "seed": 0},
    }  # fmt: skip
    (tmp_path / "comments.yaml").write_text(yaml.safe_dump(block))
    (tmp_path / "wrapped.yaml").write_text(yaml.safe_dump({"dataset": {"from": "comments.yaml"}}))
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({"dataset": {"from": "comments.yaml"}, "arms": {"control": ["aggregate"]}}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str):
    """The typer app in-process; a user error surfaces as ``result.exception`` (main() turns it into exit 2)."""
    return CliRunner().invoke(app, list(args))


def test_datasets_show_reads_a_dataset_file_a_dataset_block_or_an_experiment(own_files):
    outputs = []
    for source in ("comments.yaml", "wrapped.yaml", "exp.yaml"):
        result = invoke("datasets", "show", source)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert outputs[0] == outputs[1] == outputs[2]
    out = outputs[0]
    assert "splits made (dataset.split)" in out and '"train":0.5' in out
    # Majority labels: 14 toxic (i % 3 == 0), 26 ok. Per class at 0.5/0.25/0.25: toxic 7 / 3.5 / 3.5 -> 7 / 4 / 3,
    # ok 13 / 6.5 / 6.5 -> 13 / 7 / 6 (a remainder tie goes to the earlier split).
    assert "│ train │    20 │" in out and "│ dev   │    11 │" in out and "│ test  │     9 │" in out
    assert "raters with attributes: 4" in out and "gender" in out and "18-24" in out


def test_overrides_apply_to_the_dataset_block(own_files):
    result = invoke("datasets", "show", "comments.yaml", "--set", "split.train=0.6", "--set", "split.dev=0.2", "--set", "split.test=0.2")
    assert result.exit_code == 0, result.output
    assert "│ train │    24 │" in result.output
    bad = invoke("datasets", "show", "comments.yaml", "--set", "split.test=0.5")
    assert bad.exit_code != 0
    assert "dataset.split: the split ratios must sum to 1: train 0.5 + dev 0.25 + test 0.5 = 1.25" in str(bad.exception)


def test_audit_by_a_rater_attribute_from_the_rows(own_files):
    result = invoke("audit", "comments.yaml", "--by", "gender", "--out", "out", "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    slices = pd.read_csv(own_files / "out" / "slices.csv").set_index("value")
    assert slices.loc["woman", "krippendorff_alpha"] == 1.0 and slices.loc["man", "krippendorff_alpha"] < 0.9
    assert slices.loc["woman", "pairable_items"] == slices.loc["man", "pairable_items"] == 40
    assert "agreement by group" in result.output and "gender (raters)" in result.output
    missing = invoke("audit", "exp.yaml", "--by", "religion", "--out", "out2", "--bootstrap", "0")
    assert missing.exit_code != 0
    assert "audit --by names 'religion', which is neither a rater attribute nor an item column of dataset 'comments'; " \
           "rater attributes: age, gender" in str(missing.exception)
