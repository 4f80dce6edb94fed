import warnings

import numpy as np
import pandas as pd
import pytest

from smo_impact.quality.raters import dawid_skene_skills, judgement_table, rater_slice_rates, rater_table


def test_leave_one_out_agreement_by_hand(toy_annotations):
    # toy: t1 11111, t2 00000, t3 11100, t4 11000, t5 11110 (workers w1..w5 in order).
    j = judgement_table(toy_annotations, (0, 1), 1)
    # w4 on t3 says 0; the others say 1,1,1,0 -> majority 1 -> 0 credit.
    # w4 on t4 says 0; others 1,1,0,0 -> tie -> 1/2. w1 on t4 says 1; others 1,0,0,0 -> 0.
    cell = j.set_index(["task", "worker"])["loo_agreement"]
    assert cell[("t3", "w4")] == 0.0
    assert cell[("t4", "w4")] == 0.5
    assert cell[("t4", "w1")] == 0.0
    assert cell[("t5", "w5")] == 0.0 and cell[("t5", "w1")] == 1.0
    raters = rater_table(j)
    # w1: t1 1, t2 1, t3 1 (others 1,1,0,0 tie -> .5), t4 0, t5 1 -> (1 + 1 + .5 + 0 + 1) / 5
    assert raters.loc["w1", "rater_agreement"] == pytest.approx(3.5 / 5)
    # w1 flags t1 t3 t4 t5 = 4/5; others' flag share on those items: t1 4/4, t2 0/4, t3 2/4, t4 1/4, t5 3/4
    assert raters.loc["w1", "flag_rate"] == pytest.approx(0.8)
    assert raters.loc["w1", "others_flag_rate"] == pytest.approx((1 + 0 + 0.5 + 0.25 + 0.75) / 5)
    assert raters.loc["w1", "flag_bias"] == pytest.approx(0.8 - 0.5)
    assert list(raters.columns) == ["judgements", "rater_agreement", "flag_rate", "others_flag_rate", "flag_bias"]


def test_single_judgement_items_have_no_peers():
    annotations = pd.DataFrame({"task": ["a", "b", "b"], "worker": ["x", "x", "y"], "label": [1, 0, 0]})
    j = judgement_table(annotations, (0, 1), 1)
    assert np.isnan(j.loc[0, "loo_agreement"]) and np.isnan(j.loc[0, "others_flag_rate"])
    assert rater_table(j).loc["x", "rater_agreement"] == 1.0  # only item b counts


def test_gold_accuracy_and_skill_columns(toy_annotations):
    gold = pd.Series({"t1": 1, "t2": 0, "t3": 0, "t4": np.nan, "t5": 1})
    skills = dawid_skene_skills(toy_annotations, (0, 1))
    table = rater_table(judgement_table(toy_annotations, (0, 1), 1), gold=gold, skills=skills)
    # w5 labels t1..t5: 1 0 0 0 0; gold known on t1 t2 t3 t5 -> correct on t1 t2 t3 -> 3/4
    assert table.loc["w5", "gold_judgements"] == 4
    assert table.loc["w5", "gold_accuracy"] == pytest.approx(0.75)
    assert table["ds_skill"].between(0, 1).all()
    # w3 agrees with the majority on every item, w1 (over-flags t4) and w5 (under-flags t5) do not.
    assert table.loc["w3", "ds_skill"] > table.loc["w1", "ds_skill"]
    assert table.loc["w3", "ds_skill"] > table.loc["w5", "ds_skill"]


def test_dawid_skene_skill_is_prior_weighted_diagonal_of_crowdkit_errors(toy_annotations):
    from crowdkit.aggregation import DawidSkene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # crowd-kit's pandas 3 deprecations
        model = DawidSkene(n_iter=100).fit(toy_annotations)
    errors, priors = model.errors_, model.priors_
    expected = sum(priors[c] * errors.loc[("w2", c), c] for c in (0, 1))
    assert dawid_skene_skills(toy_annotations, (0, 1))["w2"] == pytest.approx(expected)


def test_rater_slice_rates_show_who_over_flags_a_slice():
    # Rater z flags everything in domain "a" where the two others never do; in "b" all agree.
    rows = []
    for i in range(6):
        task, domain = f"i{i}", "a" if i < 3 else "b"
        rows += [(task, "x", 0), (task, "y", 0), (task, "z", 1 if domain == "a" else 0)]
    annotations = pd.DataFrame(rows, columns=["task", "worker", "label"])
    items = pd.DataFrame({"task": [f"i{i}" for i in range(6)], "domain": ["a"] * 3 + ["b"] * 3})
    table = rater_slice_rates(judgement_table(annotations, (0, 1), 1), items, ["domain"], min_judgements=3)
    top = table.iloc[0]
    assert (top["worker"], top["slice"], top["value"]) == ("z", "domain", "a")
    assert (top["judgements"], top["flag_rate"], top["others_flag_rate"], top["flag_bias"]) == (3, 1.0, 0.0, 1.0)
    assert len(table) == 6
    assert rater_slice_rates(judgement_table(annotations, (0, 1), 1), items, ["domain"], min_judgements=4).empty
