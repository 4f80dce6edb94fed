"""Unit costs (smo_impact/treatments/costs.py, config ``costs``): prices per pool, the fixed cost
per round, what every arm logs, and the frontier's intervals over seeds."""

from __future__ import annotations

import pandas as pd
import pytest

from smo_impact.config import CostSpec, validate
from smo_impact.errors import ConfigError
from smo_impact.treatments.costs import cost_metrics, judgement_costs
from tests.conftest import make_text_dataset


def test_pool_prices_and_round_costs_add_up(toy_annotations):
    workers = pd.DataFrame({"worker": [f"w{i}" for i in range(1, 6)], "pool": ["crowd"] * 4 + ["expert"]})
    costs = CostSpec(column="pool", pools={"crowd": 1.0, "expert": 5.0}, per_round=10.0)
    metrics = cost_metrics(toy_annotations, workers, costs, rounds=3)
    # 25 judgements: w5 rated all 5 tasks (5 x 5.0), w1..w4 the other 20 (20 x 1.0); 3 rounds x 10.
    assert metrics == {
        "treatment/cost/crowd": 20.0, "treatment/cost/expert": 25.0, "treatment/cost/rounds": 30.0,
        "treatment/cost": 75.0,
    }
    assert cost_metrics(toy_annotations, None, CostSpec(per_judgement=0.5), rounds=1) == {
        "treatment/cost/all": 12.5, "treatment/cost": 12.5,
    }


def test_a_pool_in_use_without_a_price_is_named(toy_annotations):
    workers = pd.DataFrame({"worker": [f"w{i}" for i in range(1, 6)], "pool": ["crowd"] * 4 + ["expert"]})
    with pytest.raises(ValueError, match=r"costs.pools has no cost for pool\(s\) 'expert' of column 'pool'.*"
                       r"add costs.pools.expert: <cost per judgement>"):
        judgement_costs(toy_annotations, workers, CostSpec(column="pool", pools={"crowd": 1.0}))


def test_costs_config_rules():
    base = {"name": "c", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]}}
    with pytest.raises(ConfigError, match=r"costs.pools: a cost per judgement is a number >= 0 .* pool 'expert' has -2.0: "
                       r"set costs.pools.expert"):
        validate({**base, "costs": {"column": "pool", "pools": {"crowd": 1, "expert": -2}}})
    with pytest.raises(ConfigError, match=r"costs.column needs costs.pools"):
        validate({**base, "costs": {"column": "pool"}})
    with pytest.raises(ConfigError, match=r"costs.per_round: Input should be greater than or equal to 0"):
        validate({**base, "costs": {"per_round": -1}})
    # No costs: the resolved config (and so every run key) is what it was before costs existed.
    assert "costs" not in validate(base).to_dict()


def test_every_arm_logs_its_cost_when_costs_are_configured(tmp_path):
    from smo_impact.config import load_config
    from smo_impact.runner.experiment import prepare
    from smo_impact.runner.run import treat

    toy = make_text_dataset(120, workers_per_item=3, seed=2)
    toy.annotations.merge(toy.items, on="task").to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "e.yaml").write_text(
        f"dataset: {{name: d, path: {tmp_path / 'd.csv'}, labels: [0, 1]}}\n"
        "arms:\n  control: [aggregate]\n  one: [{rater_pool: {by: per_item, k: 1}}, aggregate, {clean: {method: agreement}}]\n"
        "costs: {per_judgement: 2.0, per_round: 7.0}\nmodel: {name: tfidf_logreg, params: {min_df: 1}}\n"
    )
    _, context, specs, _ = prepare(load_config(tmp_path / "e.yaml"))
    by_arm = {spec.arm: spec for spec in specs}
    n_train = len(toy.items[toy.items["split"] == "train"])
    control = treat(by_arm["control"], context).metrics
    assert control["treatment/cost"] == 3 * n_train * 2.0 + 7.0
    assert control["treatment/cost/all"] == 3 * n_train * 2.0 and control["treatment/cost/rounds"] == 7.0
    # Cleaning after the aggregation drops items but refunds nothing: 1 judgement per item was paid.
    one = treat(by_arm["one"], context).metrics
    assert one["treatment/cost"] == n_train * 2.0 + 7.0
    assert one["treatment/items_kept"] <= n_train
    assert by_arm["one"].resolved(load_config(tmp_path / "e.yaml"))["costs"]["per_judgement"] == 2.0


def test_frontier_has_95_percent_intervals_over_seeds():
    from scipy import stats

    from smo_impact.analysis.impact import frontier

    runs = pd.DataFrame({
        "arm": ["a", "a", "a", "b"], "grid": ["-"] * 4, "seed": [0, 1, 2, 0],
        "treatment/cost": [10.0, 12.0, 14.0, 5.0], "test/macro_f1": [0.5, 0.6, 0.7, 0.4],
    })
    table = frontier(runs, ["test/macro_f1"]).set_index("arm")
    half = stats.t.ppf(0.975, 2) * 0.1 / 3**0.5  # std of (0.5, 0.6, 0.7) is 0.1
    assert table.loc["a", "n"] == 3
    assert table.loc["a", "test/macro_f1_ci_low"] == pytest.approx(0.6 - half)
    assert table.loc["a", "test/macro_f1_ci_high"] == pytest.approx(0.6 + half)
    assert table.loc["a", "cost_ci_high"] == pytest.approx(12.0 + stats.t.ppf(0.975, 2) * 2.0 / 3**0.5)
    assert table.loc["b", "cost_ci_low"] == table.loc["b", "cost_ci_high"] == 5.0  # one seed: no interval


def test_named_raters_are_priced_apart(toy_annotations):
    # w5 (say, a model rater) at 0.1; everyone else at the default 2.0 or their pool's price.
    costs = CostSpec(per_judgement=2.0, workers={"w5": 0.1})
    assert cost_metrics(toy_annotations, None, costs, rounds=1) == {
        "treatment/cost/all": 40.0, "treatment/cost/w5": pytest.approx(0.5), "treatment/cost": pytest.approx(40.5),
    }
    workers = pd.DataFrame({"worker": [f"w{i}" for i in range(1, 6)], "pool": ["crowd"] * 5})
    pooled = CostSpec(column="pool", pools={"crowd": 1.0}, workers={"w5": 0.1})
    assert cost_metrics(toy_annotations, workers, pooled, rounds=1)["treatment/cost/crowd"] == 20.0
    with pytest.raises(ConfigError, match=r"costs.workers: .* worker 'w5' has -1.0: set costs.workers.w5"):
        validate({"name": "c", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]},
                  "costs": {"workers": {"w5": -1}}})


def test_a_price_per_character_of_the_item_text(toy_annotations):
    items = pd.DataFrame({"task": ["t1", "t2", "t3", "t4", "t5"], "text": ["a" * 10, "b" * 20, "", "c", "d" * 100]})
    costs = CostSpec(per_judgement=1.0, per_char=0.01, workers={"w5": 0.0})
    # Humans w1..w4 rate every task: 4 x (5 x 1.0 + 0.01 x 131 chars); w5 (named, a model) costs 0.
    metrics = cost_metrics(toy_annotations, None, costs, rounds=1, items=items)
    assert metrics["treatment/cost/all"] == pytest.approx(4 * (5.0 + 1.31))
    assert metrics["treatment/cost/w5"] == 0.0
    with pytest.raises(ValueError, match=r"costs.per_char prices judgements by their item's text, but the items carry no text"):
        cost_metrics(toy_annotations, None, costs, rounds=1)
    # A field added later stays out of the resolved config while unused: older run keys hold.
    assert CostSpec(per_judgement=2.0).model_dump() == {"per_judgement": 2.0, "column": None, "pools": None, "per_round": 0.0}
