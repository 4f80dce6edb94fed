"""What treat() logs about the training labels: class shares and the ties the aggregation broke
(the pool-size confound: with an even number of judgements per item, the tie rule sets labels)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import make_text_dataset


@pytest.fixture
def prepared(tmp_path):
    from smo_impact.config import load_config
    from smo_impact.runner.experiment import prepare

    toy = make_text_dataset(200, workers_per_item=2, seed=4)  # two judgements per item: many 1-1 ties
    toy.annotations.merge(toy.items, on="task").to_csv(tmp_path / "two.csv", index=False)
    (tmp_path / "e.yaml").write_text(
        f"dataset: {{name: two, path: {tmp_path / 'two.csv'}, labels: [0, 1]}}\n"
        "arms:\n  control: [aggregate]\n  cautious: [{aggregate: {tie: negative}}]\n  dropped: [{aggregate: {tie: drop}}]\n"
        "model: {name: tfidf_logreg, params: {min_df: 1}}\n"
    )
    _, context, specs, _ = prepare(load_config(tmp_path / "e.yaml"))
    return toy, context, {spec.arm: spec for spec in specs}


def test_class_shares_and_broken_ties_are_logged(prepared):
    from smo_impact.runner.run import treat

    toy, context, specs = prepared
    train = toy.annotations[toy.annotations["task"].isin(toy.items.loc[toy.items["split"] == "train", "task"])]
    positives = train.groupby("task")["label"].sum()  # of 2 judgements
    n, ties = len(positives), int((positives == 1).sum())
    assert ties > 10
    expected = {
        "control": ((positives >= 1).mean(), "positive"),  # a 1-1 tie becomes 1
        "cautious": ((positives == 2).mean(), "negative"),  # ... or 0
    }
    for arm, (share, rule) in expected.items():
        metrics = treat(specs[arm], context).metrics
        assert metrics["treatment/class_share/1"] == pytest.approx(share)
        assert metrics["treatment/class_share/0"] == pytest.approx(1 - share)
        assert metrics["treatment/aggregate_ties"] == ties
        assert metrics[f"treatment/aggregate_ties_broken/{rule}"] == ties
        assert metrics[f"treatment/aggregate_ties_to/{1 if rule == 'positive' else 0}"] == ties
    dropped = treat(specs["dropped"], context).metrics
    assert dropped["treatment/aggregate_dropped"] == ties and dropped["treatment/items_kept"] == n - ties
    assert not any(k.startswith("treatment/aggregate_ties_broken/") for k in dropped)
    assert dropped["treatment/class_share/1"] == pytest.approx((positives == 2).sum() / (n - ties))
