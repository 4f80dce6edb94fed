"""The acquire step: each policy buys the items its definition says (checked by brute force or by
construction on tiny data), spend never exceeds the budget, and purchases are seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smo_impact.config import CostSpec, validate
from smo_impact.errors import ConfigError
from smo_impact.models.features import Features
from smo_impact.treatments.acquire import Acquire
from smo_impact.treatments.base import LabelState
from tests.conftest import make_text_dataset


def _state(n_items: int = 60, per_item: int = 5, seed: int = 0, costs: CostSpec | None = None) -> LabelState:
    toy = make_text_dataset(n_items, workers_per_item=per_item, seed=seed)
    workers = pd.DataFrame({"worker": [f"w{i}" for i in range(20)], "pool": ["crowd"] * 15 + ["expert"] * 5})
    return LabelState(items=toy.items, annotations=toy.annotations, labels_set=(0, 1), positive_label=1,
                      workers=workers, costs=costs)


def _run(state: LabelState, seed: int = 0, **params) -> tuple[Acquire, LabelState]:
    step = Acquire(Acquire.Params(**params))
    return step, step.apply(state, np.random.default_rng(seed))


def _bought(step: Acquire, out: LabelState) -> pd.DataFrame:
    """The judgements bought: in the output, not in the start design (computed by the test)."""
    key = ["task", "worker"]
    merged = out.annotations.merge(step.start_[key], on=key, how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge")


def _price(judgements: pd.DataFrame, prices: dict[str, float], workers: pd.DataFrame) -> float:
    pool = judgements["worker"].map(workers.set_index("worker")["pool"])
    return float(pool.map(prices).sum())


@pytest.mark.parametrize("policy", ["random", "disagreement", "uncertainty", "label_quality", "new_items"])
def test_spend_never_exceeds_the_budget(policy):
    prices = {"crowd": 1.0, "expert": 3.5}
    state = _state(costs=CostSpec(column="pool", pools=prices))
    budget = 47.0
    step, out = _run(state, policy=policy, budget=budget, rounds=3, start_items=0.5 if policy == "new_items" else 1.0)
    bought = _bought(step, out)
    spend = _price(bought, prices, state.workers)
    assert 0 < spend <= budget
    assert step.metrics_["treatment/acquire_spend"] == pytest.approx(spend)
    assert step.metrics_["treatment/acquire_judgements"] == len(bought)
    # The start design is 1 judgement per started item, all of them real judgements of the item.
    assert step.start_.groupby("task").size().eq(1).all()
    rounds = step.artifacts_["acquire_rounds"]
    assert rounds["round"].tolist() == [0, 1, 2, 3] and rounds["spend"].is_monotonic_increasing
    assert rounds["judgements_used"].iloc[-1] == len(out.annotations)
    assert step.curves_["acquire/cost"][-1] == (3, pytest.approx(_price(out.annotations, prices, state.workers)))


def test_same_seed_same_purchases_other_seed_other_purchases():
    state = _state()
    first, _ = _run(state, seed=3, policy="random", budget=30, rounds=2)
    again, _ = _run(state, seed=3, policy="random", budget=30, rounds=2)
    other, _ = _run(state, seed=4, policy="random", budget=30, rounds=2)
    assert first.purchases_ == again.purchases_
    assert first.purchases_ != other.purchases_
    for policy in ("disagreement", "uncertainty", "label_quality"):
        a, _ = _run(state, seed=3, policy=policy, budget=20, rounds=2, start=2)
        b, _ = _run(state, seed=3, policy=policy, budget=20, rounds=2, start=2)
        assert a.purchases_ == b.purchases_


def test_disagreement_buys_the_most_split_items():
    """Brute force: after one round, no item left unbought had a more split start design than a bought one."""
    state = _state(n_items=80)
    k = 15
    step, out = _run(state, policy="disagreement", budget=k, rounds=1, start=3)
    votes = step.start_.groupby("task")["label"].agg(lambda v: 1 - v.value_counts().max() / len(v))
    open_items = votes.index  # every item has 5 judgements: all can take a 4th
    bought = set(_bought(step, out)["task"])
    assert len(bought) == k
    assert votes[list(bought)].min() >= votes[open_items.difference(list(bought))].max()
    assert votes[list(bought)].min() > 0  # 2-1 splits exist in 80 items of 85% raters


def test_uncertainty_buys_the_items_nearest_the_boundary():
    """One feature x = ±1..±20, every rater labels sign(x): a logistic regression's P(harmful) is
    monotone in x with its 0.5 crossing near 0, so the items nearest the threshold are x = ±1."""
    xs = np.array([s * v for v in range(1, 21) for s in (-1, 1)], dtype=float)
    tasks = [f"t{i:02d}" for i in range(len(xs))]
    rows = [(t, f"w{j}", int(x > 0)) for t, x in zip(tasks, xs) for j in range(3)]
    state = LabelState(
        items=pd.DataFrame({"task": tasks, "text": ["x"] * len(xs)}),
        annotations=pd.DataFrame(rows, columns=["task", "worker", "label"]),
        labels_set=(0, 1), positive_label=1,
        features=Features(matrix=xs.reshape(-1, 1), tasks=pd.Index(tasks)),
    )
    step, out = _run(state, policy="uncertainty", budget=2, rounds=1, folds=2)
    assert sorted(xs[[tasks.index(t) for t in _bought(step, out)["task"]]]) == [-1.0, 1.0]


def test_label_quality_buys_the_labels_the_model_contradicts():
    """ActiveLab scores lowest the items whose given label the model confidently contradicts: with
    x = ±1..±20 and every rater but one labelling sign(x), the start labels of the far items given
    the wrong sign are the ones bought first."""
    xs = np.array([s * v for v in range(1, 21) for s in (-1, 1)], dtype=float)
    tasks = [f"t{i:02d}" for i in range(len(xs))]
    flipped = {tasks[i] for i in np.flatnonzero(np.abs(xs) >= 18)}  # 6 far items
    rows = []
    for t, x in zip(tasks, xs):
        rows += [(t, f"w{j}", int(x > 0) if (t not in flipped or j > 0) else int(x <= 0)) for j in range(3)]
    annotations = pd.DataFrame(rows, columns=["task", "worker", "label"])
    state = LabelState(
        items=pd.DataFrame({"task": tasks, "text": ["x"] * len(xs)}), annotations=annotations,
        labels_set=(0, 1), positive_label=1, features=Features(matrix=xs.reshape(-1, 1), tasks=pd.Index(tasks)),
    )
    # start=1 must hold the wrong judgement of the flipped items: find a seed whose queue does.
    for seed in range(200):
        step, out = _run(state, seed=seed, policy="label_quality", budget=len(flipped), rounds=1)
        start = step.start_.set_index("task")["label"]
        wrong = {t for t in flipped if start[t] != int(xs[tasks.index(t)] > 0)}
        if len(wrong) >= 2:
            break
    assert len(wrong) >= 2
    bought = set(_bought(step, out)["task"])
    assert wrong <= bought


def test_new_items_buys_only_items_outside_the_start_design():
    state = _state(n_items=50)
    step, out = _run(state, policy="new_items", budget=24, rounds=2, start=2, start_items=0.5)
    started = set(step.start_["task"])
    bought = _bought(step, out)
    assert set(bought["task"]).isdisjoint(started)
    assert bought.groupby("task").size().eq(2).all() and len(bought) == 24  # 12 new items x 2 judgements
    assert len(set(out.annotations["task"])) == len(started) + 12


def test_budget_below_one_judgement_and_nothing_left_to_buy_are_refused():
    state = _state(costs=CostSpec(column="pool", pools={"crowd": 2.0, "expert": 5.0}))
    with pytest.raises(ValueError, match=r"acquire.budget 1.5 is less than the cheapest held-back judgement \(2\); "
                       r"raise acquire.budget to at least 2"):
        _run(state, policy="random", budget=1.5)
    with pytest.raises(ValueError, match=r"start=5\) already holds every judgement; nothing is left to buy"):
        _run(state, policy="random", budget=10, start=5)


def test_config_rules_across_step_and_config():
    base = {"name": "a", "dataset": {"name": "md-agreement"}, "control": "control"}
    def arms(**params):
        return {"control": ["aggregate"], "buy": [{"acquire": params}, "aggregate"]}
    with pytest.raises(ConfigError, match=r"arms.buy\[0\].acquire.budget: 3 is less than one judgement's cost \(4, the "
                       r"cheapest in costs\), so no judgement can be bought; raise acquire.budget to at least 4"):
        validate({**base, "arms": arms(policy="random", budget=3), "costs": {"per_judgement": 4}})
    with pytest.raises(ConfigError, match=r"arms.buy\[0\].acquire.policy: 'uncertainty' ranks items with a cheap model "
                       r".* model 'finetune' trains on raw text"):
        validate({**base, "arms": arms(policy="uncertainty", budget=100), "model": {"name": "finetune"}})
    with pytest.raises(ConfigError, match=r"acquire.start_items: policy 'new_items' buys items outside the start design"):
        validate({**base, "arms": arms(policy="new_items", budget=100)})
    with pytest.raises(ConfigError, match=r"'acquire' works on individual judgements; put it before the 'aggregate'"):
        validate({**base, "arms": {"control": ["aggregate"], "buy": ["aggregate", {"acquire": {"policy": "random", "budget": 5}}]}})
    validate({**base, "arms": arms(policy="uncertainty", budget=100)})  # tfidf_logreg caches features


def test_the_runner_logs_rounds_by_step_and_prices_the_design(tmp_path):
    """Through the runner's treat(): per-round curves (step = round), the rounds table, and the
    arm's treatment/cost from the config's costs equal to what the step counted itself."""
    from smo_impact.config import load_config
    from smo_impact.runner.experiment import prepare
    from smo_impact.runner.run import treat

    toy = make_text_dataset(150, workers_per_item=4, seed=5)
    toy.annotations.merge(toy.items, on="task").to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "e.yaml").write_text(
        f"dataset: {{name: d, path: {tmp_path / 'd.csv'}, labels: [0, 1]}}\n"
        "arms:\n  control: [aggregate]\n  buy: [{acquire: {policy: uncertainty, budget: 40, rounds: 2}}, aggregate]\n"
        "costs: {per_judgement: 1.5, per_round: 3.0}\nmodel: {name: tfidf_logreg, params: {min_df: 1}}\n"
    )
    _, context, specs, _ = prepare(load_config(tmp_path / "e.yaml"))
    treated = treat(next(s for s in specs if s.arm == "buy"), context)
    assert [step for step, _ in treated.curves["acquire/cost"]] == [0, 1, 2]
    table = treated.artifacts["acquire_rounds"]
    assert table["round"].tolist() == [0, 1, 2]
    n_train = int((toy.items["split"] == "train").sum())
    # 1 judgement per item at 1.5, then 40 of budget = 26 judgements at 1.5 (39.0); 3 rounds x 3.0.
    assert treated.metrics["treatment/cost"] == pytest.approx(n_train * 1.5 + 39.0 + 9.0)
    assert treated.metrics["treatment/cost"] == pytest.approx(table["cost"].iloc[-1])
    assert treated.metrics["treatment/judgements_kept"] == n_train + 26
