import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from smo_impact.treatments.aggregate import Aggregate
from smo_impact.treatments.base import LabelState
from smo_impact.treatments.clean import Clean
from smo_impact.treatments.noise import Noise
from tests.conftest import make_text_dataset


def test_agreement_filter_hand_computed(toy_annotations):
    # top-vote shares: t1 1.0, t2 1.0, t3 0.6, t4 0.6, t5 0.8 -> min 0.7 drops t3 and t4
    items = pd.DataFrame({"task": ["t1", "t2", "t3", "t4", "t5"], "text": "x", "split": "train"})
    state = LabelState(items=items, annotations=toy_annotations, labels_set=(0, 1), positive_label=1)
    state = Aggregate(Aggregate.Params()).apply(state, np.random.default_rng(0))
    step = Clean(Clean.Params(method="agreement", min_agreement=0.7))
    out = step.apply(state, np.random.default_rng(0))
    assert list(out.labels.index) == ["t1", "t2", "t5"]
    assert list(out.items["task"]) == ["t1", "t2", "t5"]
    assert step.metrics_ == {"treatment/clean_flagged": 2.0, "treatment/clean_removed": 2.0, "treatment/clean_relabeled": 0.0}
    assert out.changes["task"].tolist() == ["t3", "t4"]


def _noisy_text_state(seed: int = 0) -> LabelState:
    data = make_text_dataset(n_items=500, workers_per_item=5, seed=seed)
    train = data.split("train")
    # the generator's known truth is the reference; 20% of the aggregated labels are flipped
    truth = train.set_index("task")["truth"]
    state = LabelState(items=train, annotations=data.split_annotations("train"), labels_set=(0, 1), positive_label=1)
    state = Aggregate(Aggregate.Params()).apply(state, np.random.default_rng(0))
    state = state.evolve(labels=truth.reindex(state.labels.index).astype(int), reference=None)
    return Noise(Noise.Params(rate=0.2)).apply(state, np.random.default_rng(seed))


def test_cleanlab_finds_mostly_truly_wrong_labels():
    state = _noisy_text_state()
    wrong = state.labels.ne(state.reference).mean()
    step = Clean(Clean.Params(method="cleanlab"))
    out = step.apply(state, np.random.default_rng(0))
    m = step.metrics_
    assert m["treatment/clean_flagged"] > 10
    assert m["treatment/clean_removed"] == m["treatment/clean_flagged"] == len(state.labels) - len(out.labels)
    # flagged labels are wrong far more often than labels at large (20%)
    assert m["treatment/clean_precision"] > 2 * wrong
    assert m["treatment/clean_flagged_truly_wrong"] == round(m["treatment/clean_precision"] * m["treatment/clean_flagged"])
    again = Clean(Clean.Params(method="cleanlab"))
    again.apply(state, np.random.default_rng(0))
    assert list(again.flagged_) == list(step.flagged_)  # seeded folds


def test_cleanlab_relabel_moves_labels_towards_the_truth():
    state = _noisy_text_state(1)
    step = Clean(Clean.Params(method="cleanlab", action="relabel"))
    out = step.apply(state, np.random.default_rng(0))
    assert len(out.labels) == len(state.labels)
    assert step.metrics_["treatment/clean_relabeled"] == (out.changes["step"] == "clean").sum() > 0
    before = state.labels.ne(state.reference).sum()
    after = out.labels.ne(state.reference).sum()
    assert after < before


def test_agreement_cannot_relabel():
    with pytest.raises(ValidationError, match="action 'relabel' needs method 'cleanlab'"):
        Clean.Params(method="agreement", action="relabel")


def test_cleanlab_works_on_three_classes():
    """cleanlab is multiclass: on three classes it flags mostly the labels noise made wrong."""
    rng = np.random.default_rng(0)
    words = {"neither": ["lovely", "sunny", "kind", "calm"], "offensive": ["idiot", "stupid", "trash", "moron"],
             "hate": ["vermin", "subhuman", "parasites", "savages"]}
    labels = list(words)
    truth = [labels[i % 3] for i in range(600)]
    items = pd.DataFrame({"task": [f"t{i}" for i in range(600)], "split": "train",
                          "text": [" ".join(rng.choice(words[y], 3)) + " the news" for y in truth]})
    annotations = pd.DataFrame({"task": items["task"], "worker": "w", "label": truth})
    state = LabelState(items=items, annotations=annotations, labels_set=tuple(labels), positive_label="hate")
    state = Aggregate(Aggregate.Params()).apply(state, np.random.default_rng(0))
    state = Noise(Noise.Params(rate=0.2)).apply(state, np.random.default_rng(1))
    step = Clean(Clean.Params(method="cleanlab", action="relabel"))
    out = step.apply(state, np.random.default_rng(0))
    assert step.metrics_["treatment/clean_precision"] > 0.9 and step.metrics_["treatment/clean_recall"] > 0.8
    assert out.labels.ne(state.reference).mean() < 0.05
