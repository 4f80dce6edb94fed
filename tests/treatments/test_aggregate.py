import numpy as np
import pandas as pd
import pytest

from smo_impact.treatments.aggregate import Aggregate, majority_vote
from smo_impact.treatments.base import LabelState


def test_majority_vote_matches_hand_computed(toy_annotations):
    labels = majority_vote(toy_annotations, (0, 1), 1)
    assert labels.to_dict() == {"t1": 1, "t2": 0, "t3": 1, "t4": 0, "t5": 1}


@pytest.fixture
def tied() -> pd.DataFrame:
    # a: 1-1 tie; b: 2-0 clear; c: three-way tie over labels 0, 1, 2.
    rows = [("a", "w1", 0), ("a", "w2", 1), ("b", "w1", 0), ("b", "w2", 0),
            ("c", "w1", 0), ("c", "w2", 1), ("c", "w3", 2)]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def test_tie_rules(tied):
    binary = tied[tied["task"] != "c"]
    assert majority_vote(binary, (0, 1), 1, "positive").to_dict() == {"a": 1, "b": 0}
    assert majority_vote(binary, (0, 1), 1, "negative").to_dict() == {"a": 0, "b": 0}
    assert majority_vote(binary, (0, 1), 1, "drop").to_dict() == {"b": 0}
    # multi-class: 'positive' picks the positive label among the tied ones, 'negative' the earliest other
    assert majority_vote(tied, (0, 1, 2), 1, "positive")["c"] == 1
    assert majority_vote(tied, (0, 1, 2), 2, "negative")["c"] == 0


def test_random_tie_is_seeded_and_uses_both_labels():
    rows = [(f"t{i}", w, lab) for i in range(400) for w, lab in (("w1", 0), ("w2", 1))]
    ann = pd.DataFrame(rows, columns=["task", "worker", "label"])
    a = majority_vote(ann, (0, 1), 1, "random", np.random.default_rng(7))
    b = majority_vote(ann, (0, 1), 1, "random", np.random.default_rng(7))
    assert a.equals(b)
    assert 0.4 < a.mean() < 0.6


def test_aggregate_step_reports_ties_and_does_not_mutate_input(tied):
    binary = tied[tied["task"] != "c"].copy()
    items = pd.DataFrame({"task": ["a", "b"], "text": ["x", "y"], "split": "train"})
    state = LabelState(items=items, annotations=binary, labels_set=(0, 1), positive_label=1)
    step = Aggregate(Aggregate.Params(tie="drop"))
    out = step.apply(state, np.random.default_rng(0))
    assert step.metrics_ == {
        "treatment/aggregate_ties": 1.0,
        "treatment/aggregate_dropped": 1.0,
        "treatment/aggregate_vs_majority": 0.0,
    }
    assert list(out.items["task"]) == ["b"]
    assert state.labels is None and len(state.items) == 2  # input untouched
