import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from smo_impact.treatments.base import LabelState
from smo_impact.treatments.budget import Budget


def _state(n_items: int = 12, per_item: int = 5, workers: pd.DataFrame | None = None) -> LabelState:
    rows = [(f"t{i:02d}", f"w{(i + j) % 6}", (i + j) % 2) for i in range(n_items) for j in range(per_item)]
    ann = pd.DataFrame(rows, columns=["task", "worker", "label"])
    items = pd.DataFrame({"task": ann["task"].unique(), "text": "x", "split": "train"})
    return LabelState(items=items, annotations=ann, labels_set=(0, 1), positive_label=1, workers=workers)


@pytest.mark.parametrize(("per_item", "items"), [(1, 12), (3, 4), (5, 2)])
def test_fixed_budget_trades_items_for_judgements(per_item, items):
    step = Budget(Budget.Params(budget=12, per_item=per_item))
    out = step.apply(_state(), np.random.default_rng(0))
    assert step.metrics_["treatment/budget_items"] == items
    assert step.metrics_["treatment/cost"] == items * per_item <= 12
    assert (out.annotations.groupby("task").size() == per_item).all()
    assert len(out.items) == items


def test_same_seed_same_item_order_across_arms():
    three = Budget(Budget.Params(budget=12, per_item=3)).apply(_state(), np.random.default_rng(4))
    one = Budget(Budget.Params(budget=4, per_item=1)).apply(_state(), np.random.default_rng(4))
    assert set(three.items["task"]) == set(one.items["task"])


def test_pool_costs_from_config_and_workers_table():
    workers = pd.DataFrame({"worker": [f"w{i}" for i in range(6)], "pool": ["expert"] * 2 + ["crowd"] * 4,
                            "cost": [5.0, 5.0, 1.0, 1.0, 1.0, 1.0]})
    state = _state(n_items=6, per_item=6, workers=workers)  # every item rated by all 6 raters
    # 6 judgements per item: 2 experts x 5 + 4 crowd x 1 = 14 per item; budget 30 buys 2 items
    step = Budget(Budget.Params(budget=30, per_item=6, pool_column="pool", pool_costs={"expert": 5.0, "crowd": 1.0}))
    step.apply(state, np.random.default_rng(0))
    assert step.metrics_["treatment/budget_items"] == 2 and step.metrics_["treatment/cost"] == 28.0
    by_column = Budget(Budget.Params(budget=30, per_item=6, cost_column="cost"))
    by_column.apply(state, np.random.default_rng(0))
    assert by_column.metrics_["treatment/cost"] == 28.0
    with pytest.raises(ValueError, match=r"pool_costs has no cost for pool\(s\) \['expert'\]"):
        Budget(Budget.Params(budget=30, pool_column="pool", pool_costs={"crowd": 1.0})).apply(state, np.random.default_rng(0))


def test_errors():
    with pytest.raises(ValueError, match="budget 2.0 buys no item at 3 judgement\\(s\\) per item \\(cheapest item costs 3.0\\)"):
        Budget(Budget.Params(budget=2, per_item=3)).apply(_state(), np.random.default_rng(0))
    with pytest.raises(ValidationError, match="pool_column and pool_costs go together"):
        Budget.Params(budget=10, pool_column="pool")


def test_judgements_not_bought_are_in_the_change_record():
    state = _state()
    out = Budget(Budget.Params(budget=12, per_item=3)).apply(state, np.random.default_rng(0))
    dropped = out.changes
    assert len(dropped) + len(out.annotations) == len(state.annotations) == 60
    assert dropped["label_after"].isna().all() and dropped["cause"].eq("budget 12 at 3 per item: not bought").all()
    bought = set(zip(out.annotations["task"], out.annotations["worker"]))
    assert not bought & set(zip(dropped["task"], dropped["worker"]))
