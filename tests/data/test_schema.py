import pandas as pd
import pytest

from smo_impact.data.schema import AnnotationSet, vote_counts
from smo_impact.errors import DataError


def _items(tasks):
    return pd.DataFrame({"task": tasks, "text": [f"text {t}" for t in tasks], "split": "train"})


def test_vote_counts_hand_computed(toy_annotations):
    counts = vote_counts(toy_annotations, (0, 1))
    assert counts.loc["t3"].tolist() == [2, 3]
    assert counts.loc["t5"].tolist() == [1, 4]
    assert counts.to_numpy().sum() == 25


def test_label_outside_declared_set(toy_annotations):
    bad = toy_annotations.copy()
    bad.loc[3, "label"] = 7
    with pytest.raises(DataError, match=r"label 7 \(task 't1', worker 'w4'\) is outside the declared label set \[0, 1\]"):
        AnnotationSet(name="toy", items=_items([f"t{i}" for i in range(1, 6)]), annotations=bad)


def test_missing_column_and_unknown_items(toy_annotations):
    with pytest.raises(DataError, match="column\\(s\\) worker missing from the annotations table; found: task, rater, label"):
        AnnotationSet(name="toy", items=_items(["t1"]), annotations=toy_annotations.rename(columns={"worker": "rater"}))
    with pytest.raises(DataError, match="refer to unknown items, e.g. task 't2'"):
        AnnotationSet(name="toy", items=_items(["t1"]), annotations=toy_annotations)


def test_isin_matches_pandas_on_text_numbers_and_missing_values():
    from smo_impact.data.schema import isin

    values = pd.Series(["a", "b", None, "c"], dtype="str")
    assert isin(values, pd.Series(["c", "a"])).tolist() == [True, False, False, True]
    assert isin(pd.Series([1, 2, 3]), [3]).tolist() == [False, False, True]
    assert isin(pd.Series(["1", 2], dtype=object), ["1"]).tolist() == [True, False]  # mixed: pandas path
