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
    assert (out.changes["cause"] == "symmetric rate=0.15 noise on judgements").all()
    flipped = out.annotations.set_index(["task", "worker"]).loc[list(zip(out.changes["task"], out.changes["worker"]))]
    assert (flipped["label"] == 0).all()  # each row names the judgement it flipped
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


# -- instance-dependent noise keeps the requested expectation (water-filling) ----------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


# (items, majority label, minority votes out of 5): disagreement weight 0, 0.2 or 0.4 per item.
# Class 0 is mostly unanimous, class 1 mostly contested: one weight mean over all units (not per
# class) moves each class away from its row, and at rate 0.5 the 2-vote items' weight exceeds 1.
SKEWED = [(1200, 0, 0), (1200, 0, 1), (600, 0, 2), (100, 1, 0), (300, 1, 1), (600, 1, 2)]
# 80% unanimous: at rate 0.5 the contested 20% cannot carry half of the flips.
SATURATED = [(800, 1, 0), (200, 1, 1)]


class _Features:
    """Cached-features stand-in: one noisy feature that separates the classes, for uncertainty."""

    def __init__(self, labels: pd.Series, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        x = labels.to_numpy(float) * 1.5 + rng.normal(size=len(labels))
        self._x = pd.Series(x, index=labels.index)

    def rows(self, tasks) -> np.ndarray:
        return self._x.reindex(tasks).to_numpy()[:, None]


def _groups_state(groups, with_features: bool = False) -> LabelState:
    """Aggregated labels with 5 judgements per item, built from (items, label, minority) groups.

    Items alternate between domains 'a' and 'b' for slice tests.
    """
    rows, labels = [], {}
    i = 0
    for n_items, label, minority in groups:
        for _ in range(n_items):
            task = f"t{i:05d}"
            votes = [label] * (5 - minority) + [1 - label] * minority
            rows += [(task, f"w{j}", v) for j, v in enumerate(votes)]
            labels[task] = label
            i += 1
    ann = pd.DataFrame(rows, columns=["task", "worker", "label"])
    tasks = list(labels)
    domain = np.where(np.arange(len(tasks)) % 2, "b", "a")
    items = pd.DataFrame({"task": tasks, "text": "x", "split": "train", "domain": domain})
    label_series = pd.Series(labels)
    features = _Features(label_series) if with_features else None
    return LabelState(items=items, annotations=ann, labels_set=(0, 1), positive_label=1, labels=label_series,
                      features=features)


NOISE_KINDS = {"symmetric": {"rate": 0.5}, "class-conditional": {"transitions": {1: {0: 0.7}, 0: {1: 0.45}}}}
ROWS = {"symmetric": {0: 0.5, 1: 0.5}, "class-conditional": {0: 0.45, 1: 0.7}}


@pytest.mark.parametrize("instance", ["disagreement", "uncertainty"])
@pytest.mark.parametrize("kind", sorted(NOISE_KINDS))
@pytest.mark.parametrize("slice_", [None, {"domain": ["a"]}])
def test_mean_flip_probability_equals_the_requested_row_per_class(instance, kind, slice_):
    state = _groups_state(SKEWED, with_features=instance == "uncertainty")
    step = Noise(Noise.Params(**NOISE_KINDS[kind], instance=instance, slice=slice_))
    step.apply(state, np.random.default_rng(0))
    p = step.flip_probability_
    assert list(p.index) == list(state.labels.sort_index().index)
    domain = state.items.set_index("task")["domain"].reindex(p.index)
    eligible = domain.eq("a") if slice_ else pd.Series(True, index=p.index)
    assert (p[~eligible] == 0).all()
    assert ((p >= 0) & (p <= 1)).all()
    labels = state.labels.reindex(p.index)
    for c, q in ROWS[kind].items():
        in_class = eligible & (labels == c)
        mean = p[in_class].mean()
        assert abs(mean - q) <= 1e-12, f"class {c}: mean flip probability {mean:.4f} vs requested {q}"
    # the weights were skewed enough that some units reached probability 1
    assert (p == 1).any()
    expected = sum(q * (eligible & (labels == c)).sum() for c, q in ROWS[kind].items()) / eligible.sum()
    assert step.metrics_["treatment/requested_flip_rate"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("rate", [0.5, 0.8])
def test_disagreement_noise_realizes_the_requested_rate_overall_and_per_class(rate):
    """Five seeds pooled: binomial tolerance from n and the rate (sum of Bernoulli(p_i) with mean
    p_i = rate has variance at most n * rate * (1 - rate))."""
    state = _groups_state(SKEWED)
    labels = state.labels
    flips, n = 0, 0
    per_class = {0: [0, 0], 1: [0, 0]}
    for seed in range(5):
        step = Noise(Noise.Params(rate=rate, instance="disagreement"))
        step.apply(state, np.random.default_rng(seed))
        flips += len(step.flipped_)
        n += len(labels)
        for c in (0, 1):
            per_class[c][0] += int((labels[step.flipped_] == c).sum())
            per_class[c][1] += int((labels == c).sum())
    tolerance = 4 * np.sqrt(rate * (1 - rate) / n)
    assert abs(flips / n - rate) <= tolerance, f"realized {flips / n:.4f} vs requested {rate}"
    for c, (k, m) in per_class.items():
        assert abs(k / m - rate) <= 4 * np.sqrt(rate * (1 - rate) / m), f"class {c}: realized {k / m:.4f} vs {rate}"


def test_saturated_weights_spread_the_remainder_over_zero_weight_units():
    # 200 contested items (weight > 0) cannot carry 500 expected flips: all 200 get probability 1,
    # the other 300 expected flips spread over the 800 unanimous items: 300 / 800 = 0.375 each.
    state = _groups_state(SATURATED)
    step = Noise(Noise.Params(rate=0.5, instance="disagreement"))
    step.apply(state, np.random.default_rng(0))
    p = step.flip_probability_
    contested = p.index >= "t00800"
    assert (p[contested] == 1).all()
    assert np.allclose(p[~contested], 0.375, rtol=0, atol=1e-12)
    assert abs(p.mean() - 0.5) <= 1e-12
    assert step.metrics_["treatment/noise_weight_saturated"] == 1.0
    flips = sum(len(step.apply(state, np.random.default_rng(seed)).changes) for seed in range(5))
    assert abs(flips / 5000 - 0.5) <= 4 * np.sqrt(0.25 / 5000)
    # below the saturation point (0.2) the unanimous items stay untouched and nothing is flagged
    low = Noise(Noise.Params(rate=0.15, instance="disagreement"))
    low.apply(state, np.random.default_rng(0))
    assert (low.flip_probability_[~contested] == 0).all()
    assert low.metrics_["treatment/noise_weight_saturated"] == 0.0


@pytest.mark.parametrize("instance", ["disagreement", "uncertainty"])
def test_higher_rate_flips_a_superset_with_instance_weights(instance):
    state = _groups_state(SKEWED, with_features=instance == "uncertainty")
    flipped = []
    for rate in (0.1, 0.3, 0.5, 0.7, 0.9):
        step = Noise(Noise.Params(rate=rate, instance=instance))
        step.apply(state, np.random.default_rng(4))
        flipped.append(set(step.flipped_))
    assert all(low <= high for low, high in zip(flipped, flipped[1:]))


# Subnormal weights are left out: the test's own ratios p / w overflow there (the function copes,
# see test_flip_probabilities_with_tiny_weights).
_weights = st.lists(
    st.one_of(st.sampled_from([0.0, 0.0, 0.2, 0.4, 1.0]), st.floats(0.0, 5.0, allow_subnormal=False)),
    min_size=1, max_size=40,
)


def test_flip_probabilities_with_tiny_weights():
    from smo_impact.treatments.noise import flip_probabilities

    p, saturated = flip_probabilities(np.array([5e-324]), 0.5)
    assert p.tolist() == [0.5] and not saturated
    p, _ = flip_probabilities(np.array([0.2, 5e-324, 0.0]), 0.5)
    assert p[0] == 1.0 and p[1] == pytest.approx(0.5) and p[2] == 0.0


@settings(max_examples=300, deadline=None)
@given(_weights, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_flip_probabilities_water_fill(weights, rate, other_rate):
    from smo_impact.treatments.noise import flip_probabilities

    w = np.array(weights)
    p, saturated = flip_probabilities(w, rate)
    assert p.shape == w.shape
    assert ((p >= 0) & (p <= 1)).all()
    assert abs(p.mean() - rate) <= 1e-12
    order = np.argsort(w, kind="stable")
    assert (np.diff(p[order]) >= 0).all()  # non-decreasing in the weight, ties equal
    # saturated: fewer positive-weight units than the rate's expected flips
    assert saturated == bool((w > 0).sum() < rate * len(w))
    if not saturated:
        # p = min(1, lambda * w): one lambda for every unit below the cap, nothing on zero weights
        assert (p[w == 0] == 0).all()
        below = (p < 1) & (w > 0)
        if below.any():
            top = np.flatnonzero(below)[np.argmax(w[below])]
            lam = p[top] / w[top]
            assert np.allclose(p[below], lam * w[below], rtol=1e-9, atol=1e-12)
            assert not (p == 1).any() or w[p == 1].min() * lam >= 1 - 1e-9  # capped units reach 1
    else:
        assert (p[w > 0] == 1).all()
        assert np.ptp(p[w == 0]) == 0
    # a higher rate never lowers a unit's probability (common random numbers stay nested);
    # 1e-12 allows float rounding where the capped set changes
    low, high = sorted((rate, other_rate))
    p_low, _ = flip_probabilities(w, low)
    p_high, _ = flip_probabilities(w, high)
    assert (p_high >= p_low - 1e-12).all()


def _old_uniform_rule(state: LabelState, rate_row: dict, seed: int, eligible=None) -> set:
    """The uniform path as it was: one uniform per unit in task order, flip where it is below the
    unit's row mass (binary labels, so the destination is the other class)."""
    labels = state.labels.sort_index()
    uniforms = np.random.default_rng(seed).random(len(labels))
    leave = labels.map(rate_row).to_numpy(float)
    keep = np.ones(len(labels), dtype=bool) if eligible is None else eligible
    return set(labels.index[keep & (uniforms < leave)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uniform_path_flips_exactly_what_the_old_rule_flipped(seed):
    state = _groups_state(SKEWED)
    cases = (({"rate": 0.3}, {0: 0.3, 1: 0.3}), ({"transitions": {1: {0: 0.6}, 0: {1: 0.3}}}, {0: 0.3, 1: 0.6}))
    for params, row in cases:
        step = Noise(Noise.Params(**params))
        step.apply(state, np.random.default_rng(seed))
        assert set(step.flipped_) == _old_uniform_rule(state, row, seed)
    sliced = Noise(Noise.Params(rate=0.3, slice={"domain": ["b"]}))
    sliced.apply(state, np.random.default_rng(seed))
    in_b = state.items.set_index("task")["domain"].reindex(state.labels.sort_index().index).eq("b").to_numpy()
    assert set(sliced.flipped_) == _old_uniform_rule(state, {0: 0.3, 1: 0.3}, seed, in_b)


def test_requested_and_realized_matrices_are_both_logged():
    n = 2000
    labels = pd.Series(np.arange(n) % 2, index=[f"t{i}" for i in range(n)])
    step = Noise(Noise.Params(transitions={1: {0: 0.3}, 0: {1: 0.05}}))
    step.apply(state_from_labels(labels), np.random.default_rng(0))
    m = step.metrics_
    assert (m["treatment/requested_flip_matrix/0_to_1"], m["treatment/requested_flip_matrix/1_to_0"]) == (0.05, 0.3)
    assert m["treatment/requested_flip_matrix/0_to_0"] == pytest.approx(0.95)
    assert m["treatment/requested_flip_matrix/1_to_1"] == pytest.approx(0.7)
    assert m["treatment/requested_flip_rate"] == pytest.approx((0.05 + 0.3) / 2, abs=1e-12)  # half the units each
    assert m["treatment/flip_matrix/1_to_0"] == pytest.approx(step.flip_matrix_.loc[1, 0])
    assert m["treatment/noise_weight_saturated"] == 0.0  # no instance weights, nothing to saturate
    assert np.allclose(step.flip_probability_, labels.sort_index().map({0: 0.05, 1: 0.3}), rtol=0, atol=1e-15)


@pytest.mark.integration
def test_md_agreement_disagreement_noise_realizes_the_requested_rate(mirror):
    from smo_impact.config import DatasetSpec
    from smo_impact.data.loader import load_data
    from smo_impact.treatments.aggregate import Aggregate

    data = load_data(DatasetSpec(name="md-agreement"))
    state = LabelState(items=data.split("train"), annotations=data.split_annotations("train"),
                       labels_set=tuple(data.labels), positive_label=data.positive_label)
    state = Aggregate(Aggregate.Params()).apply(state, np.random.default_rng(0))
    flips, n = 0, 0
    for seed in range(3):
        step = Noise(Noise.Params(rate=0.5, instance="disagreement"))
        step.apply(state, np.random.default_rng(seed))
        flips += len(step.flipped_)
        n += int(step.metrics_["treatment/noise_units_eligible"])
    assert abs(flips / n - 0.5) <= 4 * np.sqrt(0.25 / n), f"realized {flips / n:.4f} vs requested 0.5"


def test_workers_restricts_judgement_noise_to_those_raters():
    state = _voted_state(2000, unanimous_share=1.0)  # 4 raters w0..w3, all judgements 1
    step = Noise(Noise.Params(transitions={1: {0: 0.5}}, level="judgement", workers=["w2"]))
    out = step.apply(state, np.random.default_rng(0))
    flipped = out.annotations[out.annotations["label"] == 0]
    assert set(flipped["worker"]) == {"w2"} and set(out.changes["worker"]) == {"w2"}
    assert step.metrics_["treatment/noise_units_eligible"] == 2000  # w2's judgements only
    assert abs(len(flipped) / 2000 - 0.5) <= 4 * np.sqrt(0.25 / 2000)
    assert (out.changes["cause"] == "class-conditional noise on judgements of rater(s) w2").all()
    # same seed, all raters: w2's judgements draw the same uniforms, so they flip the same way
    everyone = Noise(Noise.Params(transitions={1: {0: 0.5}}, level="judgement")).apply(state, np.random.default_rng(0))
    assert set(zip(flipped["task"], flipped["worker"])) == {
        (t, w) for t, w, lab in everyone.annotations[["task", "worker", "label"]].itertuples(index=False) if w == "w2" and lab == 0
    }


def test_workers_errors_name_the_fix():
    with pytest.raises(ValidationError, match="workers selects raters' judgements: it needs level: judgement"):
        Noise.Params(rate=0.2, workers=["w1"])
    step = Noise(Noise.Params(rate=0.2, level="judgement", workers=["Ann9"]))
    with pytest.raises(ValueError, match=r"noise.workers: no judgement by rater\(s\) \['Ann9'\]; raters: w0, w1, w2, w3"):
        step.apply(_voted_state(10, 1.0), np.random.default_rng(0))


def test_transitions_survive_config_resolution():
    # validate() resolves a step's params with every default filled in (rate: 0.1 next to
    # transitions); re-validating them in the runner used to fail with "give either rate ... or
    # transitions", so class-conditional noise could not be run from a config at all.
    from smo_impact.config import validate

    config = validate({"name": "t", "dataset": {"name": "md-agreement"},
                       "arms": {"control": ["aggregate"], "flag": ["aggregate", {"noise": {"transitions": {0: {1: 0.3}}}}]}})
    params = Noise.Params.model_validate(config.arms["flag"][1].params)
    assert params.rate is None and params.transitions == {"0": {"1": 0.3}}
    assert Noise.Params.model_validate({}).rate == 0.1  # symmetric 10% when neither is given, as before


# -- K classes ---------------------------------------------------------------------------------
LABELS3 = ("none", "mild", "strong")


def _three_class_state(n=9000):
    labels = pd.Series(np.array(LABELS3, dtype=object)[np.arange(n) % 3], index=[f"t{i}" for i in range(n)])
    return state_from_labels(labels, labels_set=LABELS3, positive="strong"), n


@pytest.mark.parametrize("seed", [0, 1])
def test_symmetric_noise_over_three_classes_is_uniform_over_the_other_two(seed):
    state, n = _three_class_state()
    step = Noise(Noise.Params(rate=0.3))
    step.apply(state, np.random.default_rng(seed))
    m = step.flip_matrix_
    tol = 4 * np.sqrt(0.15 * 0.85 / (n / 3))
    for src in LABELS3:
        assert abs(m.loc[src, src] - 0.7) <= tol
        for dst in LABELS3:
            if dst != src:
                assert abs(m.loc[src, dst] - 0.15) <= tol, (src, dst)
                assert step.requested_matrix_.loc[src, dst] == pytest.approx(0.15)


@pytest.mark.parametrize("form", ["mapping", "matrix"])
def test_class_conditional_noise_between_the_two_harmful_classes(form):
    """Mild and strong abuse confused with each other, never with 'none': given as {from: {to: p}}
    or as the full matrix in the declared label order (rows sum to 1)."""
    state, n = _three_class_state()
    transitions = (
        {"mild": {"strong": 0.4}, "strong": {"mild": 0.4}} if form == "mapping"
        else [[1.0, 0.0, 0.0], [0.0, 0.6, 0.4], [0.0, 0.4, 0.6]]
    )
    step = Noise(Noise.Params(transitions=transitions))
    out = step.apply(state, np.random.default_rng(0))
    m = step.flip_matrix_
    assert m.loc["none", "none"] == 1.0 and m.loc["mild", "none"] == 0.0 and m.loc["strong", "none"] == 0.0
    tol = 4 * np.sqrt(0.4 * 0.6 / (n / 3))
    assert abs(m.loc["mild", "strong"] - 0.4) <= tol and abs(m.loc["strong", "mild"] - 0.4) <= tol
    assert step.metrics_["treatment/requested_flip_matrix/mild_to_strong"] == pytest.approx(0.4)
    assert set(out.labels.unique()) == set(LABELS3)


def test_a_full_matrix_whose_rows_do_not_sum_to_one_is_refused():
    with pytest.raises(ValidationError, match=r"transitions row 1 sums to 1.1; each row of a full transition matrix "
                                              r"is P\(new label \| label\) and must sum to 1"):
        Noise.Params(transitions=[[0.9, 0.1], [0.3, 0.8]])
    with pytest.raises(ValidationError, match=r"transitions must be a square matrix \(one row per label\); row 1 has 3 values, not 2"):
        Noise.Params(transitions=[[0.9, 0.1], [0.3, 0.6, 0.1]])
    with pytest.raises(ValidationError, match=r"flip probabilities from 'mild' sum to 1.2 > 1"):
        Noise.Params(transitions={"mild": {"strong": 0.7, "none": 0.5}})


def test_a_matrix_of_the_wrong_size_names_the_label_set():
    state, _ = _three_class_state(30)
    with pytest.raises(ValueError, match=r"noise.transitions: a 2 x 2 matrix for the 3 labels \['none', 'mild', 'strong'\]"):
        Noise(Noise.Params(transitions=[[0.9, 0.1], [0.2, 0.8]])).apply(state, np.random.default_rng(0))
