import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from smo_impact.treatments.base import LabelState
from smo_impact.treatments.rater_pool import RaterPool, leave_one_out_agreement
from smo_impact.treatments.simulate import SimulatePool


def _state(annotations: pd.DataFrame, workers: pd.DataFrame | None = None) -> LabelState:
    items = pd.DataFrame({"task": annotations["task"].unique(), "text": "x", "split": "train"})
    return LabelState(items=items, annotations=annotations, labels_set=(0, 1), positive_label=1, workers=workers)


def test_leave_one_out_agreement_hand_computed(toy_annotations):
    # w1: t1 1, t2 1, t3 others 1,1,0,0 tie -> 1/2, t4 others 1,0,0,0 -> 0, t5 1 => 3.5/5
    # w3: t3 tie 1/2, t4 (says 0, others 1,1,0,0) tie 1/2 => 4/5; w5: t3 0, t4 1/2, t5 0 => 2.5/5
    q = leave_one_out_agreement(toy_annotations)
    assert q.to_dict() == pytest.approx({"w1": 0.7, "w2": 0.7, "w3": 0.8, "w4": 0.7, "w5": 0.5})


def test_quality_selector_separates_planted_good_and_bad_raters():
    n = 400
    truth = pd.Series((np.arange(n) % 2).astype(int), index=[f"t{i:03d}" for i in range(n)])
    items = pd.DataFrame({"task": truth.index, "text": "x", "split": "train"})
    base = LabelState(items=items, annotations=items[["task"]].assign(worker="w", label=0),
                      labels_set=(0, 1), positive_label=1, labels=truth)
    # 30% random spammers among 20 raters, honest raters 90% right
    sim = SimulatePool(SimulatePool.Params(n_raters=20, per_item=5, accuracy=0.9, accuracy_sd=0.02, spammer_fraction=0.3))
    state = sim.apply(base, np.random.default_rng(0))
    spammers = set(sim.raters_.loc[sim.raters_["type"] == "spammer", "worker"])
    top = RaterPool(RaterPool.Params(by="quality", fraction=0.7, keep="top"))
    out = top.apply(state, np.random.default_rng(0))
    assert set(out.annotations["worker"]).isdisjoint(spammers)
    bottom = RaterPool(RaterPool.Params(by="quality", fraction=0.3, keep="bottom"))
    assert set(bottom.apply(state, np.random.default_rng(0)).annotations["worker"]) == spammers
    assert top.artifacts_["rater_quality"].shape == (20, 1)


def test_attribute_selection_from_workers_table(toy_annotations):
    workers = pd.DataFrame({"worker": ["w1", "w2", "w3", "w4", "w5"], "group": ["target"] * 3 + ["control"] * 2})
    step = RaterPool(RaterPool.Params(by="attribute", column="group", values=["control"]))
    out = step.apply(_state(toy_annotations, workers), np.random.default_rng(0))
    assert set(out.annotations["worker"]) == {"w4", "w5"}
    assert step.metrics_ == {"treatment/pool_raters": 2.0, "treatment/pool_judgements": 10.0, "treatment/pool_items": 5.0}
    with pytest.raises(ValueError, match="column 'gruop' is in neither the workers table nor the annotations; found: group, label, task, worker"):
        RaterPool(RaterPool.Params(by="attribute", column="gruop", values=["x"])).apply(_state(toy_annotations, workers), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"no rater has group in \['expert'\]; values present: control, target; pick rater_pool.values from those$"):
        RaterPool(RaterPool.Params(by="attribute", column="group", values=["expert"])).apply(_state(toy_annotations, workers), np.random.default_rng(0))


def test_per_item_keeps_k_judgements_seeded(toy_annotations):
    step = RaterPool(RaterPool.Params(by="per_item", k=2))
    out = step.apply(_state(toy_annotations), np.random.default_rng(3))
    assert (out.annotations.groupby("task").size() == 2).all()
    again = RaterPool(RaterPool.Params(by="per_item", k=2)).apply(_state(toy_annotations), np.random.default_rng(3))
    assert out.annotations.equals(again.annotations)


def test_a_pool_then_k_judgements_per_item_equalises_pools_of_different_sizes(toy_annotations):
    """Three target raters and two control raters per item: with k=2 both pools give 2 per item."""
    workers = pd.DataFrame({"worker": ["w1", "w2", "w3", "w4", "w5"], "group": ["target"] * 3 + ["control"] * 2})
    for group in ("target", "control"):
        step = RaterPool(RaterPool.Params(by="attribute", column="group", values=[group], k=2))
        out = step.apply(_state(toy_annotations, workers), np.random.default_rng(1))
        members = set(workers.loc[workers["group"] == group, "worker"])
        assert set(out.annotations["worker"]) <= members
        assert (out.annotations.groupby("task").size() == 2).all() and out.annotations["task"].nunique() == 5
        assert step.metrics_["treatment/pool_judgements"] == 10.0
    first = RaterPool(RaterPool.Params(by="attribute", column="group", values=["target"], k=2))
    again = RaterPool(RaterPool.Params(by="attribute", column="group", values=["target"], k=2))
    state = _state(toy_annotations, workers)
    assert first.apply(state, np.random.default_rng(1)).annotations.equals(again.apply(state, np.random.default_rng(1)).annotations)


def test_random_pool_and_items_without_judgements_are_dropped(toy_annotations):
    ann = toy_annotations[~((toy_annotations["task"] == "t1") & (toy_annotations["worker"] != "w1"))]
    step = RaterPool(RaterPool.Params(by="random", n_raters=2))
    out = step.apply(_state(ann), np.random.default_rng(0))
    assert out.annotations["worker"].nunique() == 2
    assert set(out.items["task"]) == set(out.annotations["task"])
    with pytest.raises(ValueError, match="n_raters=9 but only 5 raters have judgements"):
        RaterPool(RaterPool.Params(by="random", n_raters=9)).apply(_state(ann), np.random.default_rng(0))


def test_params_name_what_is_missing():
    with pytest.raises(ValidationError, match="rater_pool by=attribute needs column and values"):
        RaterPool.Params(by="attribute")


def test_dropped_judgements_are_in_the_change_record(toy_annotations):
    out = RaterPool(RaterPool.Params(by="random", n_raters=2)).apply(_state(toy_annotations), np.random.default_rng(0))
    dropped = out.changes
    assert len(dropped) == len(toy_annotations) - len(out.annotations) == 15
    assert dropped["label_after"].isna().all() and (dropped["step"] == "rater_pool").all()
    kept = set(out.annotations["worker"])
    assert not set(dropped["worker"]) & kept and set(dropped["worker"]) | kept == {"w1", "w2", "w3", "w4", "w5"}
    truth = toy_annotations.set_index(["task", "worker"])["label"]
    assert dropped["label_before"].tolist() == truth.loc[list(zip(dropped["task"], dropped["worker"]))].tolist()
