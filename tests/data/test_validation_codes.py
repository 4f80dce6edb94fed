"""The integer-code paths of the data checks (built for 10M judgements) against plain pandas
reference implementations on small random tables, plus their edge cases."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from smo_impact.data.schema import positions_in, vote_counts
from smo_impact.data.validation import (
    TASK_ID,
    check_item_consistency,
    coerce_labels,
    factorize,
    normalize_splits,
    normalized_text,
    resolve_duplicates,
    split_per_task,
    text_leakage,
)
from smo_impact.errors import DataError


def random_rows(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "task": pd.Series(rng.integers(0, 60, n)).map("t{}".format).astype("str"),
            "worker": pd.Series(rng.integers(0, 25, n)).map("w{}".format).astype("str"),
            "label": rng.choice(["no", "yes"], n),
            "split": rng.choice(["train", "dev", "test"], n, p=[0.8, 0.1, 0.1]),
        }
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("policy", ["first", "last"])
def test_duplicate_policy_matches_pandas(seed, policy):
    rows = random_rows(seed)
    expected = rows.loc[~rows.duplicated(["task", "worker"], keep=policy)]
    got = resolve_duplicates(rows, policy, "x.csv")
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("seed", range(5))
def test_split_dedupe_matches_pandas(seed):
    rows = random_rows(seed)
    rank = rows["split"].map({"train": 0, "dev": 1, "test": 2})
    expected = rows.loc[rank == rank.groupby(rows["task"]).transform("max")]
    got = split_per_task(rows, "dedupe", "x.csv")
    pd.testing.assert_frame_equal(got, expected)
    assert got.groupby("task")["split"].nunique().max() == 1


def test_split_error_names_the_first_task_in_file_order():
    rows = pd.DataFrame({"task": ["a", "b", "b", "a"], "worker": ["1", "1", "2", "2"], "split": ["train", "dev", "test", "train"]})
    with pytest.raises(DataError, match=r"1 item\(s\) appear in more than one split, e.g. task 'b' in dev and test"):
        split_per_task(rows, "error", "x.csv")


def test_hidden_codes_are_used_when_present():
    """The loader adds task codes once; the checks must trust them (here they disagree with the
    text ids on purpose: two ids share a code, so they count as one item)."""
    rows = pd.DataFrame({"task": ["a", "b"], "worker": ["1", "1"], "split": ["train", "test"], TASK_ID: [0, 0]})
    # 'a' and 'b' share a code, so the one item is reported under its first id, in both splits.
    with pytest.raises(DataError, match=r"x.csv: 1 item\(s\) appear in more than one split, e.g. task 'a' in test and train at several rows; "
                       r"an item belongs to one split \(set dataset.leakage: dedupe"):
        split_per_task(rows, "error", "x.csv")


def test_item_consistency_treats_missing_as_equal_and_counts_values_of_one_item():
    rows = pd.DataFrame(
        {
            "task": ["a", "a", "b", "b", "b", "c"],
            "slice": [np.nan, np.nan, "x", "y", "z", "q"],
        }
    )
    check_item_consistency(rows.iloc[[0, 1, 5]], ["slice"], "x.csv")  # NaN == NaN for this check
    with pytest.raises(DataError, match=r"item 'b' has 3 different values in item column 'slice'"):
        check_item_consistency(rows, ["slice"], "x.csv")


@pytest.mark.parametrize(
    "text, key",
    [
        ("  Hello   World ", "hello world"),
        ("tab\tand\nnewline", "tab and newline"),
        ("MiXeD  \t case", "mixed case"),
        ("already normal", "already normal"),
        ("ÜBER  Straße", "über straße"),
    ],
)
def test_normalized_text(text, key):
    got = normalized_text(pd.Series([text, "other"]))
    assert got.iloc[0] == key
    assert got.iloc[0] == re.sub(r"[ \t\n\f\r]+", " ", text.lower()).strip()


def test_leakage_dedupe_keeps_the_most_held_out_copy():
    items = pd.DataFrame(
        {
            "task": ["a", "b", "c", "d"],
            "text": ["Same  text", "same text", "SAME TEXT", "unique"],
            "split": ["train", "test", "dev", "train"],
        }
    )
    kept = text_leakage(items, "dedupe", "x.csv")
    assert kept["task"].tolist() == ["b", "d"]
    with pytest.raises(DataError, match=r"2 item\(s\) share their text .* in train \(task 'a'\) and test \(task 'b'\)"):
        text_leakage(items, "error", "x.csv")


def test_split_spellings_and_label_coercion_on_distinct_values():
    rows = pd.DataFrame({"split": [" Validation", "TRAIN", "test", "val"], "label": ["1", 0, 1.0, "0"], "task": list("abcd")})
    assert normalize_splits(rows, "x.csv")["split"].tolist() == ["dev", "train", "test", "dev"]
    coerced = coerce_labels(rows, (0, 1), "x.csv")
    assert coerced["label"].tolist() == [1, 0, 1, 0] and coerced["label"].dtype == "int64"
    with pytest.raises(DataError, match=r"column 'split' has unknown value\(s\) 'holdout'"):
        normalize_splits(rows.assign(split=["train", "holdout", "dev", "test"]), "x.csv")


def test_positions_in_and_vote_counts_match_get_indexer():
    rows = random_rows(0)
    labels = ("no", "yes")
    assert (positions_in(rows["label"], labels) == pd.Index(labels).get_indexer(rows["label"].to_numpy())).all()
    assert (positions_in(pd.Series(["no", None, "maybe"]), labels) == [0, -1, -1]).all()
    expected = pd.crosstab(rows["task"], rows["label"]).reindex(columns=list(labels), fill_value=0)
    assert (vote_counts(rows, labels).to_numpy() == expected.to_numpy()).all()


def test_factorize_gives_missing_values_their_own_code():
    assert factorize(pd.Series(["a", None, "b", "a", None])).tolist() == [0, 2, 1, 0, 2]
