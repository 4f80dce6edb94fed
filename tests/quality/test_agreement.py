import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from smo_impact.data.schema import vote_counts
from smo_impact.quality.agreement import (
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_ci,
    pairwise_cohen_kappa,
    percent_agreement,
)

# The worked example of Wikipedia's "Fleiss' kappa" article (the coefficient of Fleiss, 1971):
# 10 subjects, 14 raters, 5 categories; it prints P_bar = 0.378, P_e = 0.213, kappa = 0.210.
FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def long_from_matrix(matrix: np.ndarray) -> pd.DataFrame:
    """raters x items matrix (NaN = missing) -> long task/worker/label judgements."""
    rows = [
        (f"t{j}", f"w{i}", int(matrix[i, j]))
        for i in range(matrix.shape[0])
        for j in range(matrix.shape[1])
        if not np.isnan(matrix[i, j])
    ]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def random_reliability(seed: int, raters=7, items=60, k=4, missing=0.4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, items)
    data = np.where(rng.random((raters, items)) < 0.6, truth, rng.integers(0, k, (raters, items))).astype(float)
    data[rng.random(data.shape) < missing] = np.nan
    return data


def test_fleiss_textbook_example():
    result = fleiss_kappa(FLEISS_TABLE)
    # Cited (three decimals, as printed), then to full precision against statsmodels.
    assert result.kappa == pytest.approx(0.210, abs=5e-4)
    assert result.kappa == pytest.approx(sm_fleiss_kappa(FLEISS_TABLE), abs=1e-12)
    assert result.balanced and result.raters_per_item == 14 and result.items_used == 10
    assert percent_agreement(FLEISS_TABLE) == pytest.approx(0.378, abs=1e-3)


def test_fleiss_equals_statsmodels_and_reports_unbalanced_design():
    rng = np.random.default_rng(3)
    table = rng.multinomial(6, [0.5, 0.3, 0.2], size=40)
    assert fleiss_kappa(table).kappa == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)
    unbalanced = np.vstack([table, [[2, 1, 0], [0, 3, 0]]])
    result = fleiss_kappa(unbalanced)
    assert not result.balanced
    assert result.items_used == 40 and result.items_total == 42
    assert result.kappa == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)
    assert "unbalanced design" in result.note and "40 of 42 items" in result.note


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_equals_krippendorff_package_on_sparse_data(level, seed):
    data = random_reliability(seed)
    counts = vote_counts(long_from_matrix(data), [0, 1, 2, 3]).to_numpy()
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=[0, 1, 2, 3])
    assert krippendorff_alpha(counts, level) == pytest.approx(expected, abs=1e-12)


def test_alpha_by_hand_on_two_items():
    # Item 1: 0,0 ; item 2: 0,1. Coincidences o00 = 2, o01 = o10 = 1: n = 4, n0 = 3, n1 = 1.
    # D_o = (o01 + o10) / n = 2/4; D_e = (n0 n1 + n1 n0) / (n (n - 1)) = 6/12; alpha = 1 - 1 = 0.
    counts = np.array([[2, 0], [1, 1]])
    d_o = (1 + 1) / 4
    d_e = (3 * 1 + 1 * 3) / (4 * 3)
    assert krippendorff_alpha(counts) == pytest.approx(1 - d_o / d_e)
    assert krippendorff_alpha(counts) == 0.0
    assert np.isnan(krippendorff_alpha(np.array([[3, 0], [2, 0]])))  # one label only: undefined
    assert np.isnan(krippendorff_alpha(np.array([[1, 0], [0, 1]])))  # nothing pairable


def test_alpha_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    counts = vote_counts(long_from_matrix(random_reliability(5, raters=5, items=300, k=2)), [0, 1]).to_numpy()
    alpha = krippendorff_alpha(counts)
    low, high = krippendorff_alpha_ci(counts, np.random.default_rng(0), n_boot=400)
    assert low < alpha < high
    assert 0.02 < high - low < 0.3
    assert (low, high) == krippendorff_alpha_ci(counts, np.random.default_rng(0), n_boot=400)


def test_cohen_kappa_two_raters_five_items_by_hand():
    # A: 1 1 0 0 1 ; B: 1 0 0 0 1 -> observed 4/5; A says 1 3/5, B 2/5;
    # chance = 3/5*2/5 + 2/5*3/5 = 12/25; kappa = (0.8 - 0.48) / 0.52 = 8/13.
    a, b = [1, 1, 0, 0, 1], [1, 0, 0, 0, 1]
    annotations = long_from_matrix(np.array([a, b], dtype=float))
    pairs = pairwise_cohen_kappa(annotations, [0, 1], min_shared=5)
    assert len(pairs) == 1
    row = pairs.iloc[0]
    assert (row["worker_a"], row["worker_b"], row["shared_items"]) == ("w0", "w1", 5)
    assert row["agreement"] == pytest.approx(0.8)
    assert row["kappa"] == pytest.approx(8 / 13)
    assert row["kappa"] == pytest.approx(cohen_kappa_score(a, b))
    assert pairwise_cohen_kappa(annotations, [0, 1], min_shared=6).empty


def test_pairwise_kappa_equals_sklearn_on_every_pair_of_sparse_raters():
    data = random_reliability(7, raters=6, items=80, k=3, missing=0.3)
    pairs = pairwise_cohen_kappa(long_from_matrix(data), [0, 1, 2], min_shared=10)
    assert len(pairs) == 15  # every pair shares ~40 items
    for row in pairs.itertuples():
        i, j = int(row.worker_a[1:]), int(row.worker_b[1:])
        both = ~np.isnan(data[i]) & ~np.isnan(data[j])
        assert row.shared_items == both.sum()
        assert row.kappa == pytest.approx(cohen_kappa_score(data[i, both], data[j, both]), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_interval_alpha_uses_the_label_values_like_the_krippendorff_package(seed):
    # Unequally spaced numeric labels: interval alpha depends on the values, not their positions.
    values = [1, 2, 5, 10]
    positions = random_reliability(seed)
    data = np.where(np.isnan(positions), np.nan, np.take(values, np.nan_to_num(positions).astype(int)))
    counts = vote_counts(long_from_matrix(data), values).to_numpy()
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="interval", value_domain=values)
    assert krippendorff_alpha(counts, "interval", values=np.array(values)) == pytest.approx(expected, abs=1e-12)
    by_position = krippendorff.alpha(reliability_data=positions, level_of_measurement="interval", value_domain=[0, 1, 2, 3])
    assert krippendorff_alpha(counts, "interval") == pytest.approx(by_position, abs=1e-12)
    assert expected != pytest.approx(by_position, abs=1e-3)
