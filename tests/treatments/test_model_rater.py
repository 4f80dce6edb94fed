"""The model_rater step: the model's judgements are those of a logistic regression fit on the seed
items (refit here with scikit-learn directly), humans keep exactly the items the rule sends them,
the realised confusion is a plain crosstab, and the model's judgements are priced as its pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from smo_impact.config import CostSpec
from smo_impact.models.features import Features
from smo_impact.treatments.base import LabelState
from smo_impact.treatments.model_rater import ModelRater


def _state(costs: CostSpec | None = None) -> LabelState:
    """60 items on one feature x in [-3, 3]; 3 raters label x > 0 harmful, 15% of them flipped."""
    rng = np.random.default_rng(0)
    xs = np.linspace(-3, 3, 60)
    tasks = [f"t{i:02d}" for i in range(len(xs))]
    rows = [(t, f"w{j}", int((x > 0) != (rng.random() < 0.15))) for t, x in zip(tasks, xs) for j in range(3)]
    workers = pd.DataFrame({"worker": ["w0", "w1", "w2"], "pool": ["crowd"] * 3})
    return LabelState(
        items=pd.DataFrame({"task": tasks, "text": ["x"] * len(xs)}),
        annotations=pd.DataFrame(rows, columns=["task", "worker", "label"]),
        labels_set=(0, 1), positive_label=1, workers=workers, costs=costs,
        features=Features(matrix=xs.reshape(-1, 1), tasks=pd.Index(tasks)),
    )


def _apply(state: LabelState, seed: int = 0, **params) -> tuple[ModelRater, LabelState]:
    step = ModelRater(ModelRater.Params(**params))
    return step, step.apply(state, np.random.default_rng(seed))


def _reference(state: LabelState, seed_tasks: pd.Index) -> pd.DataFrame:
    """The same model, fit here: majority of the seed items' judgements (ties -> 1), then P(class)."""
    ann = state.annotations
    majority = (ann.groupby("task")["label"].mean() >= 0.5).astype(int)
    X = state.features.matrix
    tasks = state.features.tasks
    model = LogisticRegression(C=4.0, max_iter=2000).fit(X[tasks.get_indexer(seed_tasks)], majority[seed_tasks])
    proba = model.predict_proba(X)
    return pd.DataFrame({"label": proba.argmax(axis=1), "confidence": proba.max(axis=1)}, index=tasks)


def test_model_judgements_and_who_labels_what():
    state = _state()
    step, out = _apply(state, seed_share=0.2, threshold=0.9)
    reference = _reference(state, step.seed_tasks_)
    model = out.annotations[out.annotations["worker"] == "model"].set_index("task")["label"]
    assert len(model) == 60 and (model == reference["label"].reindex(model.index)).all()
    humans = set(out.annotations.loc[out.annotations["worker"] != "model", "task"])
    expected = set(step.seed_tasks_) | set(reference.index[reference["confidence"] < 0.9])
    assert humans == expected and 12 < len(humans) < 60  # the seed set plus the unsure middle
    assert step.metrics_["treatment/model_rater_human_items"] == len(humans)
    kept = out.annotations[out.annotations["worker"] != "model"]
    assert len(kept) == 3 * len(humans)  # every human judgement of those items, none of the others
    assert len(out.changes) == 3 * (60 - len(humans))


def test_threshold_one_keeps_every_human_and_zero_only_the_seed():
    state = _state()
    everyone, out = _apply(state, threshold=1.0)
    assert len(out.annotations) == 180 + 60
    alone, out = _apply(state, threshold=0.0, seed_share=0.1)
    assert set(out.annotations.loc[out.annotations["worker"] != "model", "task"]) == set(alone.seed_tasks_)
    audited, out = _apply(state, threshold=0.0, seed_share=0.1, audit=0.5)
    extra = set(out.annotations.loc[out.annotations["worker"] != "model", "task"]) - set(audited.seed_tasks_)
    assert 15 <= len(extra) <= 40  # about half of the 54 others (binomial, seeded)
    again, out_again = _apply(state, threshold=0.0, seed_share=0.1, audit=0.5)
    assert out_again.annotations.equals(out.annotations)


def test_realised_confusion_and_agreement_per_human():
    state = _state()
    step, _ = _apply(state, seed_share=0.2)
    model = _reference(state, step.seed_tasks_)["label"]
    ann = state.annotations
    majority = (ann.groupby("task")["label"].mean() >= 0.5).astype(int)
    outside = majority.index.difference(step.seed_tasks_)
    confusion = step.artifacts_["model_rater_confusion"]
    for h in (0, 1):
        for m in (0, 1):
            expected = int(((majority[outside] == h) & (model[outside] == m)).sum())
            assert confusion.loc[h, m] == expected if h in confusion.index and m in confusion.columns else expected == 0
    by_worker = step.artifacts_["model_rater_agreement_by_worker"]
    w1 = ann[ann["worker"] == "w1"]
    assert by_worker.loc["w1", "agreement"] == pytest.approx((w1["label"].to_numpy() == model[w1["task"]].to_numpy()).mean())
    assert step.metrics_["treatment/model_rater_accuracy"] == pytest.approx((majority[outside] == model[outside]).mean())


def test_the_model_is_priced_as_its_own_pool():
    from smo_impact.treatments.costs import cost_metrics

    state = _state(costs=CostSpec(column="pool", pools={"crowd": 1.0, "model": 0.01}))
    _, out = _apply(state, threshold=0.0, seed_share=0.1)
    metrics = cost_metrics(out.annotations, out.workers, state.costs, rounds=1)
    assert metrics["treatment/cost/model"] == pytest.approx(0.6) and metrics["treatment/cost/crowd"] == 3 * 6
    with pytest.raises(ValueError, match=r"no cost for pool\(s\) 'model'"):
        cost_metrics(out.annotations, out.workers, CostSpec(column="pool", pools={"crowd": 1.0}), rounds=1)


def test_a_seed_set_of_one_class_is_refused():
    state = _state()
    one_class = state.evolve(annotations=state.annotations.assign(label=0))
    with pytest.raises(ValueError, match=r"seed items' human labels hold one class; .* raise model_rater.seed_share"):
        _apply(one_class)


@pytest.mark.parametrize(("classes", "labels", "positive", "expected"), [
    (["harmful", "benign"], ("benign", "harmful"), "harmful", [1, 0]),  # the dataset's labels, any order
    ([0, 1], ("benign", "harmful"), "harmful", [0, 1]),  # binary codes: 1 = the positive label
    ([0, 1], ("harmful", "benign"), "harmful", [1, 0]),
    ([0, 1, 2], ("none", "offensive", "hate"), "hate", [0, 1, 2]),  # K codes: i = labels[i]
])
def test_label_columns_map_a_models_classes_to_the_labels(classes, labels, positive, expected):
    from smo_impact.treatments.model_rater import label_columns

    assert label_columns(np.asarray(classes), labels, positive).tolist() == expected


@pytest.mark.parametrize(("classes", "labels"), [
    ([0, 1, 2], (0, 1)),  # a 3-class model on binary data
    (["ok", "toxic"], (0, 1)),  # classes that are not the dataset's labels
    ([0, 1], ("none", "offensive", "hate")),  # a binary model on 3 labels
])
def test_a_model_with_another_label_set_is_refused(classes, labels):
    from smo_impact.treatments.model_rater import label_columns

    with pytest.raises(ValueError, match=r"model_rater.model: the model's classes .* are not the dataset's labels"):
        label_columns(np.asarray(classes), labels, labels[-1])
