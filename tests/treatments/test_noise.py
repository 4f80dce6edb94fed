import numpy as np
import pandas as pd
import pytest

from smo_impact.treatments.noise import Noise, flip_matrix
from tests.conftest import state_from_labels


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_realized_flip_rate_within_binomial_error(rate, seed):
    n = 5000
    labels = pd.Series(np.arange(n) % 2, index=[f"t{i}" for i in range(n)])
    step = Noise(Noise.Params(rate=rate))
    out = step.apply(state_from_labels(labels), np.random.default_rng(seed))
    realized = step.metrics_["treatment/realized_flip_rate"]
    tolerance = 4 * np.sqrt(rate * (1 - rate) / n) + 1e-12
    assert abs(realized - rate) <= tolerance
    # the matrix rows agree with the rate for each class (binomial error per class of n/2)
    per_class_tol = 4 * np.sqrt(rate * (1 - rate) / (n / 2)) + 1e-12
    assert abs(step.metrics_["treatment/flip_matrix/0_to_1"] - rate) <= per_class_tol
    assert abs(step.metrics_["treatment/flip_matrix/1_to_0"] - rate) <= per_class_tol
    # the change record lists exactly the flipped items, with before/after
    assert len(out.changes) == step.metrics_["treatment/labels_flipped"]
    assert (out.changes["label_before"] != out.changes["label_after"]).all()
    assert (labels[out.changes["task"]].to_numpy() == out.changes["label_before"].to_numpy()).all()


def test_same_seed_same_flips_and_higher_rate_flips_a_superset():
    labels = pd.Series([0, 1] * 500, index=[f"t{i}" for i in range(1000)])
    low = Noise(Noise.Params(rate=0.1))
    high = Noise(Noise.Params(rate=0.3))
    low.apply(state_from_labels(labels), np.random.default_rng(3))
    again = Noise(Noise.Params(rate=0.1))
    again.apply(state_from_labels(labels), np.random.default_rng(3))
    high.apply(state_from_labels(labels), np.random.default_rng(3))
    assert list(low.flipped_) == list(again.flipped_)
    assert set(low.flipped_) <= set(high.flipped_)


def test_multiclass_flips_go_to_other_labels():
    labels = pd.Series([0, 1, 2] * 1000, index=[f"t{i}" for i in range(3000)])
    step = Noise(Noise.Params(rate=0.3))
    out = step.apply(state_from_labels(labels, labels_set=(0, 1, 2), positive=2), np.random.default_rng(0))
    m = step.flip_matrix_
    assert np.allclose(np.diag(m), 0.7, atol=0.05)
    assert np.allclose(m.to_numpy()[~np.eye(3, dtype=bool)], 0.15, atol=0.04)
    assert set(out.labels.unique()) == {0, 1, 2}


def test_flip_matrix_hand_computed():
    before = pd.Series([0, 0, 0, 0, 1, 1])
    after = pd.Series([0, 1, 0, 0, 1, 0])
    m = flip_matrix(before, after, (0, 1))
    assert m.loc[0, 1] == pytest.approx(0.25)
    assert m.loc[1, 0] == pytest.approx(0.5)


def test_noise_needs_labels(text_dataset):
    from smo_impact.treatments.base import LabelState

    state = LabelState(items=text_dataset.items, annotations=text_dataset.annotations, labels_set=(0, 1), positive_label=1)
    with pytest.raises(ValueError, match="put an 'aggregate' step before it"):
        Noise(Noise.Params(rate=0.1)).apply(state, np.random.default_rng(0))


# -- class-conditional, instance-dependent, slice-targeted, judgement-level -----------------------
from pydantic import ValidationError  # noqa: E402

from smo_impact.treatments.base import LabelState  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_conditional_matrix_realized_within_binomial_error(seed):
    n = 6000
    labels = pd.Series(np.arange(n) % 2, index=[f"t{i}" for i in range(n)])
    step = Noise(Noise.Params(transitions={1: {0: 0.3}, 0: {1: 0.05}}))
    step.apply(state_from_labels(labels), np.random.default_rng(seed))
    m = step.flip_matrix_
    for src, dst, p in ((1, 0, 0.3), (0, 1, 0.05)):
        tol = 4 * np.sqrt(p * (1 - p) / (n / 2))
        assert abs(m.loc[src, dst] - p) <= tol
    assert step.requested_matrix_.loc[1, 1] == pytest.approx(0.7)


def test_rate_and_transitions_together_is_an_error():
    with pytest.raises(ValidationError, match="give either rate .symmetric. or transitions"):
        Noise.Params(rate=0.2, transitions={1: {0: 0.3}})
    with pytest.raises(ValueError, match=r"noise.transitions: label 7 is not in the label set \[0, 1\]"):
        Noise(Noise.Params(transitions={7: {0: 0.3}})).apply(
            state_from_labels(pd.Series([0, 1], index=["a", "b"])), np.random.default_rng(0)
        )


def test_slice_targeted_noise_flips_only_the_slice():
    n = 4000
    labels = pd.Series(np.arange(n) % 2, index=[f"t{i}" for i in range(n)])
    state = state_from_labels(labels)
    state = state.evolve(items=state.items.assign(domain=np.where(np.arange(n) < 1000, "BLM", "Covid")))
    step = Noise(Noise.Params(rate=0.4, slice={"domain": ["BLM"]}))
    out = step.apply(state, np.random.default_rng(0))
    flipped = set(out.changes["task"])
    assert flipped <= {f"t{i}" for i in range(1000)}
    assert step.metrics_["treatment/noise_units_eligible"] == 1000
    assert abs(step.metrics_["treatment/realized_flip_rate"] - 0.4) <= 4 * np.sqrt(0.24 / 1000)
    with pytest.raises(ValueError, match="noise.slice: column 'target' is not an item column; found: domain, split, text"):
        Noise(Noise.Params(rate=0.4, slice={"target": ["x"]})).apply(state, np.random.default_rng(0))


def _voted_state(n_items: int, unanimous_share: float) -> LabelState:
    """Items with 4 judgements: the first share unanimous, the rest split 3-1."""
    rows = []
    for i in range(n_items):
        votes = [1, 1, 1, 1] if i < unanimous_share * n_items else [1, 1, 1, 0]
        rows += [(f"t{i:05d}", f"w{j}", v) for j, v in enumerate(votes)]
    ann = pd.DataFrame(rows, columns=["task", "worker", "label"])
    items = pd.DataFrame({"task": ann["task"].unique(), "text": "x", "split": "train"})
    return LabelState(items=items, annotations=ann, labels_set=(0, 1), positive_label=1)


def test_disagreement_dependent_noise_spares_unanimous_items():
    state = _voted_state(4000, unanimous_share=0.5)
    labels = pd.Series(1, index=state.items["task"])
    step = Noise(Noise.Params(rate=0.1, instance="disagreement"))
    out = step.apply(state.evolve(labels=labels), np.random.default_rng(0))
    flipped = out.changes["task"].str[1:].astype(int)
    assert (flipped >= 2000).all()  # unanimous items never flip
    # weights average 1: the overall rate is kept, concentrated on contested items (0.2 there)
    assert abs(step.metrics_["treatment/realized_flip_rate"] - 0.1) <= 4 * np.sqrt(0.09 / 4000)


def test_uncertainty_dependent_noise_runs_on_texts(text_dataset):
    from smo_impact.treatments.aggregate import Aggregate

    train = text_dataset.split("train")
    state = LabelState(items=train, annotations=text_dataset.split_annotations("train"), labels_set=(0, 1), positive_label=1)
    state = Aggregate(Aggregate.Params()).apply(state, np.random.default_rng(0))
    step = Noise(Noise.Params(rate=0.2, instance="uncertainty"))
    step.apply(state, np.random.default_rng(1))
    again = Noise(Noise.Params(rate=0.2, instance="uncertainty"))
    again.apply(state, np.random.default_rng(1))
    assert list(step.flipped_) == list(again.flipped_)
    assert 0.1 < step.metrics_["treatment/realized_flip_rate"] < 0.3


@pytest.mark.parametrize("seed", [0, 1])
def test_judgement_level_noise_flips_judgements_before_aggregation(seed):
    state = _voted_state(3000, unanimous_share=1.0)  # all judgements are 1
    step = Noise(Noise.Params(rate=0.15, level="judgement"))
    out = step.apply(state, np.random.default_rng(seed))
    realized = (out.annotations["label"] == 0).mean()
    assert abs(realized - 0.15) <= 4 * np.sqrt(0.15 * 0.85 / 12000)
    assert step.metrics_["treatment/flip_matrix/1_to_0"] == pytest.approx(realized)
    assert out.changes["cause"].str.contains("judgement of worker w").all()
    assert (out.reference == 1).all() and out.labels is None
    with pytest.raises(ValueError, match="put it before the 'aggregate' step"):
        step.apply(state.evolve(labels=pd.Series(1, index=state.items["task"])), np.random.default_rng(0))


def test_aggregated_noise_makes_flipped_soft_labels_one_hot():
    labels = pd.Series([0, 1] * 200, index=[f"t{i}" for i in range(400)])
    soft = pd.DataFrame({0: np.where(labels == 0, 0.8, 0.4), 1: np.where(labels == 0, 0.2, 0.6)}, index=labels.index)
    state = state_from_labels(labels).evolve(soft_labels=soft)
    step = Noise(Noise.Params(rate=0.3))
    out = step.apply(state, np.random.default_rng(0))
    flipped = step.flipped_
    assert len(flipped) > 50
    assert (out.soft_labels.loc[flipped].idxmax(axis=1) == out.labels[flipped]).all()
    assert (out.soft_labels.loc[flipped].max(axis=1) == 1.0).all()
    untouched = labels.index.difference(flipped)
    assert out.soft_labels.loc[untouched].equals(soft.loc[untouched])
