import numpy as np
import pandas as pd
import pytest

from smo_impact.treatments.base import LabelState
from smo_impact.treatments.simulate import SimulatePool


def _truth_state(n: int = 3000, pos_every: int = 2) -> LabelState:
    truth = pd.Series((np.arange(n) % pos_every == 0).astype(int), index=[f"t{i:05d}" for i in range(n)])
    items = pd.DataFrame({"task": truth.index, "text": "x", "split": "train",
                          "target": np.where(np.arange(n) % 4 < 2, "muslims", "other")})
    return LabelState(items=items, annotations=items[["task"]].assign(worker="w", label=0),
                      labels_set=(0, 1), positive_label=1, labels=truth)


def _run(seed: int = 0, **params) -> tuple[SimulatePool, LabelState]:
    sim = SimulatePool(SimulatePool.Params(**params))
    return sim, sim.apply(_truth_state(), np.random.default_rng(seed))


@pytest.mark.parametrize("seed", [0, 1])
def test_accuracy_and_bias_realized(seed):
    sim, out = _run(seed, n_raters=30, per_item=3, accuracy=0.8, accuracy_sd=0.0, bias=0.5)
    # error 0.2 split by bias 0.5: FPR = 0.2 * 1.5 = 0.3, FNR = 0.2 * 0.5 = 0.1 (4500 judgements per class)
    tol = 4 * np.sqrt(0.3 * 0.7 / 4500)
    assert abs(sim.metrics_["treatment/sim_realized_fpr"] - 0.3) <= tol
    assert abs(sim.metrics_["treatment/sim_realized_fnr"] - 0.1) <= tol
    assert len(out.annotations) == 9000 and out.labels is None
    assert (out.annotations.groupby("task")["worker"].nunique() == 3).all()  # distinct raters per item
    c = sim.confusions_
    assert c[["tp", "fp", "tn", "fn"]].to_numpy().sum() == 9000
    assert np.allclose(c["fpr"], 0.3, atol=0.12)  # each rater's own realized matrix
    assert (out.reference == _truth_state().labels).all()


def test_spammers_are_planted_and_report_their_confusions():
    sim, out = _run(n_raters=20, per_item=4, spammer_fraction=0.25, spammer="always_positive", accuracy=0.95, accuracy_sd=0.0)
    spam = sim.raters_.loc[sim.raters_["type"] == "spammer", "worker"]
    assert len(spam) == 5 and sim.metrics_["treatment/sim_spammers"] == 5
    assert (sim.confusions_.loc[spam, "fpr"] == 1.0).all() and (sim.confusions_.loc[spam, "fnr"] == 0.0).all()
    honest = sim.confusions_.drop(spam.tolist())
    assert honest["accuracy"].mean() == pytest.approx(0.95, abs=0.02)


def test_slice_bias_over_flags_the_slice():
    sim, out = _run(n_raters=10, per_item=2, accuracy=0.9, accuracy_sd=0.0,
                    slice_bias={"column": "target", "values": ["muslims"], "false_positive": 0.3})
    ann = out.annotations.merge(_truth_state().items[["task", "target"]], on="task")
    ann["truth"] = ann["task"].map(out.reference)
    neg = ann[ann["truth"] == 0]
    fpr = neg.groupby("target")["label"].mean()
    assert fpr["muslims"] == pytest.approx(0.4, abs=0.05) and fpr["other"] == pytest.approx(0.1, abs=0.04)


def test_drift_lowers_accuracy_over_time():
    sim, out = _run(n_raters=10, per_item=2, accuracy=0.95, accuracy_sd=0.0, drift=-0.3)
    ann = out.annotations.assign(ok=out.annotations["label"].to_numpy() == out.annotations["task"].map(out.reference).to_numpy())
    early, late = ann[ann["timestamp"] < 300]["ok"].mean(), ann[ann["timestamp"] >= 2700]["ok"].mean()
    assert early == pytest.approx(0.94, abs=0.03) and late == pytest.approx(0.66, abs=0.05)


def test_seeded_and_global_rng_untouched():
    np.random.seed(1)
    state = np.random.get_state()[1].copy()
    _, a = _run(3, n_raters=10, spammer_fraction=0.2)
    _, b = _run(3, n_raters=10, spammer_fraction=0.2)
    assert a.annotations.equals(b.annotations)
    assert (np.random.get_state()[1] == state).all()


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="per_item=5 exceeds n_raters=3"):
        _run(n_raters=3, per_item=5)
    with pytest.raises(ValueError, match="slice_bias: column 'domain' is not an item column"):
        _run(slice_bias={"column": "domain", "values": ["x"]})
