"""The bootstrap against brute force: each resample's metrics recomputed by scikit-learn (or a loop)
on the items repeated by their counts, and intervals and p-values from those values by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from smo_impact.evaluation.bootstrap import (
    BOOTSTRAP_METRICS,
    PairedDelta,
    bootstrap_ci,
    paired_bootstrap,
    resample_counts,
    weighted_metrics,
)
from tests.evaluation import references as reference


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.round(np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1), 2)  # rounded: many tied scores
    return y, s


def _resampled(counts_row):
    """The items of one resample, each repeated as often as it was drawn."""
    return np.repeat(np.arange(len(counts_row)), counts_row)


def _brute_force(y, s, threshold, counts):
    """Every metric per resample, by the reference on the repeated items: {metric: array}."""
    rows = [reference.all_metrics(y[_resampled(row)], s[_resampled(row)], threshold) for row in counts]
    return {metric: np.array([r[metric] for r in rows]) for metric in rows[0]}


def _percentile_interval(values, confidence=0.95):
    finite = values[np.isfinite(values)]
    return tuple(np.quantile(finite, [(1 - confidence) / 2, (1 + confidence) / 2]))


def test_bootstrap_metrics_are_the_documented_set():
    assert BOOTSTRAP_METRICS == (
        "accuracy", "precision", "recall", "f1", "macro_f1", "fpr", "fnr", "positive_rate", "roc_auc", "brier", "ece"
    )


def test_resample_counts_are_per_row_bincounts_of_the_generators_draws():
    # Pins the draw scheme (one rng.integers call, resamples x items): intervals stay reproducible
    # across versions only if the same seed gives the same resamples.
    counts = resample_counts(50, 4, np.random.default_rng(1))
    draws = np.random.default_rng(1).integers(0, 50, size=(4, 50))
    for b in range(4):
        assert counts[b].tolist() == [int(np.sum(draws[b] == i)) for i in range(50)]



def test_a_generator_in_a_seen_state_gets_the_same_resamples_and_ends_in_the_same_state():
    # The per-process cache of drawn resamples (issue 16) must be invisible: the reference is a
    # fresh draw by the generator itself (rng.integers), never the cache.
    from smo_impact.evaluation import bootstrap

    bootstrap._COUNTS_CACHE.clear()
    first_rng, second_rng = np.random.default_rng([7, 1]), np.random.default_rng([7, 1])
    first = bootstrap._compact_counts(90, 30, first_rng)
    second = bootstrap._compact_counts(90, 30, second_rng)  # served from the cache
    assert len(bootstrap._COUNTS_CACHE) == 1
    draws = np.random.default_rng([7, 1]).integers(0, 90, size=(30, 90))
    expected = np.stack([np.bincount(row, minlength=90) for row in draws])
    assert np.array_equal(first, expected) and np.array_equal(second, expected)
    assert not second.flags.writeable  # shared: nobody may change it
    # Both generators go on exactly as an uncached one would.
    fresh = np.random.default_rng([7, 1])
    fresh.integers(0, 90, size=(30, 90))
    assert first_rng.random() == second_rng.random() == fresh.random()
    # Another seed or size is another matrix.
    assert not np.array_equal(bootstrap._compact_counts(90, 30, np.random.default_rng([8, 1])), expected)
    assert bootstrap._compact_counts(91, 30, np.random.default_rng([7, 1])).shape == (30, 91)


SCORES = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), SCORES), min_size=1, max_size=15),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.0, 0.5, 0.75]),
)
def test_every_resample_equals_the_reference_on_its_repeated_items(rows, seed, threshold):
    # Single-class data, n = 1 and all-equal scores included: resamples that lack a class must give
    # NaN exactly where the reference does. int64 counts, the int32 copy the bootstrap uses, floats.
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    counts = resample_counts(len(y), 4, np.random.default_rng(seed))
    expected = _brute_force(y, s, threshold, counts)
    for weights in (counts, counts.astype(np.int32), counts.astype(float)):
        values = weighted_metrics(y, s, threshold, weights)
        assert set(values) == set(BOOTSTRAP_METRICS)
        for metric in BOOTSTRAP_METRICS:
            for b in range(len(counts)):
                assert reference.same(values[metric][b], expected[metric][b]), (metric, b, weights.dtype)


def test_bootstrap_ci_equals_percentiles_of_brute_force_resamples():
    y, s = _data(60, seed=3)
    metrics = ("macro_f1", "roc_auc", "recall", "fpr", "brier", "ece")
    ci = bootstrap_ci(y, s, 0.5, np.random.default_rng(11), n_resamples=100, metrics=metrics)
    brute = _brute_force(y, s, 0.5, resample_counts(60, 100, np.random.default_rng(11)))
    for metric in metrics:
        expected = _percentile_interval(brute[metric])
        assert ci[metric] == pytest.approx(expected, abs=1e-12), metric


def test_ci_contains_the_estimate_and_is_seeded():
    y, s = _data(400)
    a = bootstrap_ci(y, s, 0.5, np.random.default_rng(7))
    b = bootstrap_ci(y, s, 0.5, np.random.default_rng(7))
    assert a == b
    auc = roc_auc_score(y, s)
    low, high = a["roc_auc"]
    assert low < auc < high and high - low < 0.15


def _brute_force_paired(deltas, confidence=0.95):
    finite = deltas[np.isfinite(deltas)]
    low, high = _percentile_interval(deltas, confidence)
    at_most, at_least = sum(d <= 0 for d in finite) / len(finite), sum(d >= 0 for d in finite) / len(finite)
    return low, high, min(1.0, 2 * min(at_most, at_least))


def test_paired_bootstrap_equals_brute_force_interval_and_p_value():
    y, s = _data(80, seed=5)
    rng = np.random.default_rng(9)
    treatment = np.clip(s + rng.normal(0, 0.15, len(s)), 0, 1).round(2)
    metrics = ("macro_f1", "roc_auc", "recall", "accuracy", "ece")
    result = paired_bootstrap(y, s, treatment, 0.5, np.random.default_rng(4), n_resamples=100, metrics=metrics)
    counts = resample_counts(80, 100, np.random.default_rng(4))
    control_values, treatment_values = _brute_force(y, s, 0.5, counts), _brute_force(y, treatment, 0.5, counts)
    for metric in metrics:
        low, high, p = _brute_force_paired(treatment_values[metric] - control_values[metric])
        assert isinstance(result[metric], PairedDelta)
        assert (result[metric].low, result[metric].high) == pytest.approx((low, high), abs=1e-12), metric
        assert result[metric].p_value == pytest.approx(p), metric


def test_paired_bootstrap_identical_models_give_zero_and_p_one_and_a_shift_is_detected():
    y, s = _data(400)
    same = paired_bootstrap(y, s, s, 0.5, np.random.default_rng(0))
    assert same["macro_f1"] == PairedDelta(0.0, 0.0, 1.0)
    # The treatment flips every true positive at score >= 0.5 to 0.4: recall falls to 0.
    worse = np.where((y == 1) & (s >= 0.5), 0.4, s)
    delta = paired_bootstrap(y, s, worse, 0.5, np.random.default_rng(0))["recall"]
    assert delta.high < -0.5 and delta.p_value == 0.0  # every resample's delta is below 0


def test_paired_p_value_is_nan_when_no_resample_defines_the_metric():
    y = np.ones(20, dtype=int)  # no negatives: the FPR (and its delta) is undefined everywhere
    s = np.linspace(0, 1, 20)
    delta = paired_bootstrap(y, s, s[::-1], 0.5, np.random.default_rng(0), n_resamples=50, metrics=("fpr",))["fpr"]
    assert np.isnan(delta.low) and np.isnan(delta.high) and np.isnan(delta.p_value)


def test_unknown_metric_is_an_error_naming_the_choices():
    y, s = _data(20)
    with pytest.raises(ValueError, match=r"Cannot bootstrap metric\(s\) 'auc'; available: accuracy, brier, ece, f1, fnr, "):
        bootstrap_ci(y, s, 0.5, np.random.default_rng(0), metrics=("auc",))
