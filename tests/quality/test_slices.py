import krippendorff
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from smo_impact.quality.slices import slice_agreement


def test_agreement_per_item_slice_and_rater_group(toy_annotations):
    # Items t1 t2 t3 in domain "a", t4 t5 in "b"; workers w1 w2 in group "target", w3-w5 "control".
    items = pd.DataFrame({"task": ["t1", "t2", "t3", "t4", "t5"], "domain": ["a", "a", "a", "b", None]})
    workers = pd.DataFrame({"worker": ["w1", "w2", "w3", "w4", "w5"], "group": ["target"] * 2 + ["control"] * 3})
    table = slice_agreement(toy_annotations, (0, 1), 1, items, ["domain"], workers, ["group"])
    rows = table.set_index(["kind", "slice", "value"])
    a = rows.loc[("item", "domain", "a")]
    # t1 and t2 unanimous (1.0); t3 3-2 split: (3*2 + 2*1) / (5*4) = 0.4
    assert a["percent_agreement"] == pytest.approx((1 + 1 + 0.4) / 3)
    assert (a["items"], a["judgements"], a["raters"]) == (3, 15, 5)
    assert rows.loc[("item", "domain", "(none)"), "items"] == 1
    target = rows.loc[("rater", "group", "target")]
    # w1 and w2 label 1 0 1 1 1: unanimous on every item
    assert target["percent_agreement"] == 1.0 and target["krippendorff_alpha"] == pytest.approx(1.0)
    assert target["positive_rate"] == pytest.approx(0.8)
    assert len(table) == 5


def test_rater_group_agreement_counts_only_items_the_group_judged_twice():
    """Alpha and Fleiss' kappa of a rater group use the items with >= 2 of its judgements, and the
    table says how many there are (a group of many judgements can have few pairable items)."""
    rng = np.random.default_rng(0)
    rows = []
    # Group "a" (a1..a4): 40 items judged by one of its raters only, 12 judged by two, 8 by three.
    for i in range(60):
        n_a = 1 if i < 40 else (2 if i < 52 else 3)
        truth = int(rng.integers(0, 3))
        for rater in rng.choice(["a1", "a2", "a3", "a4"], n_a, replace=False):
            rows.append((f"t{i}", rater, truth if rng.random() < 0.7 else int(rng.integers(0, 3))))
        # group "b" (b1..b3) judges every item
        for rater in ("b1", "b2", "b3"):
            rows.append((f"t{i}", rater, truth if rng.random() < 0.8 else int(rng.integers(0, 3))))
    annotations = pd.DataFrame(rows, columns=["task", "worker", "label"])
    workers = pd.DataFrame({"worker": ["a1", "a2", "a3", "a4", "b1", "b2", "b3"], "group": ["a"] * 4 + ["b"] * 3})
    table = slice_agreement(annotations, (0, 1, 2), 2, None, (), workers, ["group"]).set_index("value")

    members = annotations[annotations["worker"].str.startswith("a")]
    per_item = members.groupby("task").size()
    pairable = members[members["task"].isin(per_item[per_item >= 2].index)]
    assert table.loc["a", "items"] == 60 and table.loc["a", "pairable_items"] == 20 == pairable["task"].nunique()
    assert table.loc["a", "judgements"] == len(members)
    dense_a = pairable.pivot(index="worker", columns="task", values="label").to_numpy(float)
    assert table.loc["a", "krippendorff_alpha"] == pytest.approx(
        krippendorff.alpha(dense_a, level_of_measurement="nominal", value_domain=[0, 1, 2]), abs=1e-12
    )
    # Fleiss' kappa on the most common design of the pairable items (12 items with 2 judgements).
    twice = pairable[pairable["task"].isin(per_item[per_item == 2].index)]
    counts = pd.crosstab(twice["task"], twice["label"]).reindex(columns=[0, 1, 2], fill_value=0).to_numpy()
    assert table.loc["a", "fleiss_kappa"] == pytest.approx(sm_fleiss_kappa(counts), abs=1e-12)
    # Group b: a balanced design of 3 judgements on all 60 items.
    b = annotations[annotations["worker"].str.startswith("b")]
    counts_b = pd.crosstab(b["task"], b["label"]).reindex(columns=[0, 1, 2], fill_value=0).to_numpy()
    assert table.loc["b", "pairable_items"] == 60
    assert table.loc["b", "fleiss_kappa"] == pytest.approx(sm_fleiss_kappa(counts_b), abs=1e-12)


def test_ordinal_and_interval_alpha_per_group_on_a_numeric_scale():
    annotations = pd.DataFrame(
        {"task": ["x", "x", "y", "y", "z", "z"], "worker": ["p", "q"] * 3, "label": [1, 2, 5, 4, 1, 1]}
    )
    workers = pd.DataFrame({"worker": ["p", "q"], "team": ["one", "one"]})
    row = slice_agreement(annotations, (1, 2, 4, 5), (4, 5), None, (), workers, ["team"]).iloc[0]
    dense = np.array([[1, 5, 1], [2, 4, 1]], dtype=float)
    for level in ("ordinal", "interval"):
        expected = krippendorff.alpha(dense, level_of_measurement=level, value_domain=[1, 2, 4, 5])
        assert row[f"krippendorff_alpha_{level}"] == pytest.approx(expected, abs=1e-12)


def test_same_partitions_finds_two_names_for_one_grouping():
    from smo_impact.quality.slices import same_partitions

    table = pd.DataFrame({
        "group": ["target", "target", "control", "control", None],
        "group_id": ["group1", "group1", "group2", "group2", None],  # same groups, other names
        "region": ["n", "s", "n", "s", "n"],  # crosses group: a different partition
        "coarse": ["x", "x", "x", "x", None],  # merges target and control: not the same partition
        "renamed_none": ["g1", "g1", "g2", "g2", "g3"],  # the missing value is a group of its own
    })
    assert same_partitions(table, ["group", "group_id", "region", "coarse", "renamed_none"]) == {
        "group_id": "group", "renamed_none": "group",
    }
    assert same_partitions(table, ["group_id", "group"]) == {"group": "group_id"}  # the first named is kept
