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
