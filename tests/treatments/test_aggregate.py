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


def test_aggregate_step_says_how_it_broke_ties(tied):
    items = pd.DataFrame({"task": ["a", "b", "c"], "text": ["x", "y", "z"], "split": "train"})
    # a: 0-1 tie, c: 0-1-2 tie. 'positive' (label 1) takes both; 'negative' with positive 2 the earliest, 0.
    for tie, positive, to in (("positive", 1, 1), ("negative", 2, 0)):
        state = LabelState(items=items, annotations=tied, labels_set=(0, 1, 2), positive_label=positive)
        step = Aggregate(Aggregate.Params(tie=tie))
        step.apply(state, np.random.default_rng(0))
        assert step.metrics_["treatment/aggregate_ties"] == 2.0
        assert step.metrics_[f"treatment/aggregate_ties_broken/{tie}"] == 2.0
        assert {k: v for k, v in step.metrics_.items() if "ties_to" in k} == {
            f"treatment/aggregate_ties_to/{label}": (2.0 if label == to else 0.0) for label in (0, 1, 2)
        }


# -- crowd-kit methods, soft labels, skills ------------------------------------------------------
from smo_impact.treatments.simulate import SimulatePool  # noqa: E402


def _simulated(spammer_fraction: float, seed: int = 0, n: int = 600, accuracy: float = 0.8) -> LabelState:
    truth = pd.Series((np.arange(n) % 3 == 0).astype(int), index=[f"t{i:04d}" for i in range(n)])
    items = pd.DataFrame({"task": truth.index, "text": "x", "split": "train"})
    state = LabelState(items=items, annotations=pd.DataFrame(columns=["task", "worker", "label"]),
                       labels_set=(0, 1), positive_label=1, labels=truth)
    sim = SimulatePool(SimulatePool.Params(n_raters=20, per_item=5, accuracy=accuracy, accuracy_sd=0.05,
                                           spammer_fraction=spammer_fraction, spammer="always_positive"))
    return sim.apply(state, np.random.default_rng(seed))


@pytest.mark.parametrize("seed", [0, 1])
def test_dawid_skene_beats_majority_vote_with_spammers(seed):
    # 4 of 20 raters always flag; honest raters are right 75% of the time.
    state = _simulated(spammer_fraction=0.2, seed=seed, n=300, accuracy=0.75)
    truth = state.reference
    acc = {}
    for method in ("majority", "dawid_skene"):
        out = Aggregate(Aggregate.Params(method=method, n_iter=20)).apply(state, np.random.default_rng(0))
        acc[method] = (out.labels.reindex(truth.index) == truth).mean()
    assert acc["dawid_skene"] > acc["majority"] + 0.05, acc
    assert acc["dawid_skene"] > 0.83


@pytest.mark.parametrize(
    "method", ["dawid_skene", "one_coin_ds", pytest.param("glad", marks=pytest.mark.slow), "mace", "wawa"]
)
def test_crowdkit_methods_expose_skills_leave_global_rng_alone_and_are_reproducible(method):
    state = _simulated(spammer_fraction=0.25, n=60)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = Aggregate(Aggregate.Params(method=method, n_iter=10, soft=True))
    out = a.apply(state, np.random.default_rng(5))
    assert (np.random.get_state()[1] == before).all()  # global RNG untouched
    b = Aggregate(Aggregate.Params(method=method, n_iter=10, soft=True))
    again = b.apply(state, np.random.default_rng(5))
    assert out.labels.equals(again.labels)
    assert set(a.skills_.index) == set(state.annotations["worker"])
    # spammers (always positive) get lower skill than honest raters on average
    spam = state.workers.set_index("worker")["type"] == "spammer"
    assert a.skills_[spam[spam].index].mean() < a.skills_[spam[~spam].index].mean()
    assert np.allclose(out.soft_labels.sum(axis=1), 1.0)
    assert list(out.soft_labels.columns) == [0, 1]


def test_majority_soft_labels_are_vote_shares(toy_annotations):
    items = pd.DataFrame({"task": ["t1", "t2", "t3", "t4", "t5"], "text": "x", "split": "train"})
    state = LabelState(items=items, annotations=toy_annotations, labels_set=(0, 1), positive_label=1)
    out = Aggregate(Aggregate.Params(soft=True)).apply(state, np.random.default_rng(0))
    assert out.soft_labels[1].to_dict() == {"t1": 1.0, "t2": 0.0, "t3": 0.6, "t4": 0.4, "t5": 0.8}
    assert out.changes.empty  # plain majority: nothing changed vs majority


def test_aggregate_change_record_against_reference():
    state = _simulated(spammer_fraction=0.0, n=300)
    out = Aggregate(Aggregate.Params()).apply(state, np.random.default_rng(0))
    wrong = out.labels.ne(state.reference)
    assert len(out.changes) == wrong.sum() > 0
    assert (out.changes["label_before"].to_numpy() == state.reference[out.changes["task"]].to_numpy()).all()
    assert out.changes["cause"].str.contains("vs reference").all()


def test_aggregate_refuses_labels_already_aggregated(toy_annotations):
    items = pd.DataFrame({"task": ["t1"], "text": "x", "split": "train"})
    state = LabelState(items=items, annotations=toy_annotations, labels_set=(0, 1), positive_label=1,
                       labels=pd.Series({"t1": 1}))
    with pytest.raises(ValueError, match="put it before the 'aggregate' step"):
        Aggregate(Aggregate.Params()).apply(state, np.random.default_rng(0))


# -- K classes ---------------------------------------------------------------------------------
THREE = ("neither", "offensive", "hate")


def test_tie_rules_over_three_labels():
    """positive: the positive label when tied, else the tied label latest in the declared (benign ->
    harmful) order; negative: the earliest tied label other than the positive one."""
    votes = {"a": ["neither", "offensive"], "b": ["offensive", "hate"], "c": ["neither", "hate", "offensive"],
             "d": ["hate", "hate", "neither"]}
    rows = [(t, f"w{i}", lab) for t, labs in votes.items() for i, lab in enumerate(labs)]
    annotations = pd.DataFrame(rows, columns=["task", "worker", "label"])
    positive = majority_vote(annotations, THREE, "hate", "positive")
    negative = majority_vote(annotations, THREE, "hate", "negative")
    assert positive.to_dict() == {"a": "offensive", "b": "hate", "c": "hate", "d": "hate"}
    assert negative.to_dict() == {"a": "neither", "b": "offensive", "c": "neither", "d": "hate"}
    assert list(majority_vote(annotations, THREE, "hate", "drop").index) == ["d"]


@pytest.mark.parametrize("method", ["dawid_skene", "one_coin_ds", "glad", "mace", "wawa"])
def test_aggregation_methods_work_on_three_labels(method):
    rng = np.random.default_rng(0)
    truth = rng.choice(3, 120, p=[0.5, 0.3, 0.2])
    rows = []
    for t, y in enumerate(truth):
        for w in range(5):
            label = y if rng.random() < (0.9 if w < 4 else 0.34) else rng.choice([c for c in range(3) if c != y])
            rows.append((f"t{t}", f"w{w}", THREE[label]))
    annotations = pd.DataFrame(rows, columns=["task", "worker", "label"])
    items = pd.DataFrame({"task": [f"t{t}" for t in range(120)], "text": "x", "split": "train"})
    state = LabelState(items=items, annotations=annotations, labels_set=THREE, positive_label="hate")
    out = Aggregate(Aggregate.Params(method=method, soft=True)).apply(state, np.random.default_rng(0))
    assert set(out.labels.unique()) == set(THREE)
    got = out.labels.reindex([f"t{t}" for t in range(120)]).to_numpy()
    assert (got == np.asarray(THREE, dtype=object)[truth]).mean() > 0.9
    assert list(out.soft_labels.columns) == list(THREE)
    assert np.allclose(out.soft_labels.sum(axis=1), 1.0, atol=1e-6)
