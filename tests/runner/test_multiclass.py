"""K-class label sets through the runner: training, K-class metrics, the binary view, comparisons.

Before K-class support a 3-label dataset trained its last label against the rest (with a warning):
``test/macro_f1`` was a binary figure and no per-class metric existed; these tests failed then.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from smo_impact.config import validate
from smo_impact.data.schema import AnnotationSet
from smo_impact.errors import DataError
from smo_impact.runner.experiment import prepare, run_experiment
from smo_impact.runner.run import score, train, treat
from smo_impact.tracking.mlflow_tracker import MlflowTracker

LABELS = ("neither", "offensive", "hate")
WORDS = {
    "neither": ["lovely", "sunny", "kind", "great", "thanks", "happy", "calm", "friendly"],
    "offensive": ["idiot", "stupid", "awful", "trash", "moron", "loser", "dumb", "clown"],
    "hate": ["vermin", "subhuman", "exterminate", "deport", "infest", "parasites", "savages", "plague"],
}


def make_three_class_dataset(n_items: int = 450, seed: int = 0, ordinal: bool = False) -> AnnotationSet:
    """Generated 3-class data (neither / offensive / hate, 50/30/20): each class has its own words;
    three raters per item agree with the truth 80% of the time, else pick another label."""
    rng = np.random.default_rng(seed)
    neutral = ["the", "a", "today", "people", "this", "weather", "game", "news", "city"]
    items, rows = [], []
    for i in range(n_items):
        truth = LABELS[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
        words = list(rng.choice(neutral, 4)) + list(rng.choice(WORDS[truth], 2))
        split = "train" if i < int(n_items * 0.6) else ("dev" if i < int(n_items * 0.7) else "test")
        items.append({"task": f"i{i}", "text": " ".join(words), "split": split, "domain": "ab"[i % 2]})
        for w in rng.choice(20, 3, replace=False):
            label = truth if rng.random() < 0.8 else str(rng.choice([x for x in LABELS if x != truth]))
            rows.append((f"i{i}", f"w{w}", label))
    return AnnotationSet(
        name="three", items=pd.DataFrame(items), annotations=pd.DataFrame(rows, columns=["task", "worker", "label"]),
        labels=LABELS, positive_label="hate", slice_columns=("domain",), binary_positive=("offensive", "hate"),
        ordinal=ordinal,
    )


def _config(arms=None, evaluation=None, model=None, seeds=(0,)):
    return validate(
        {
            "name": "three",
            "dataset": {"name": "md-agreement"},  # replaced by the generated data
            "arms": arms or {
                "control": ["aggregate"],
                "confused": ["aggregate", {"noise": {"transitions": {"offensive": {"hate": 0.5}, "hate": {"offensive": 0.5}}}}],
            },
            "seeds": list(seeds),
            "model": model or {"name": "tfidf_logreg", "params": {"min_df": 1}},
            "evaluation": {"bootstrap": 100, **(evaluation or {})},
        }
    )


def _scored(config, dataset):
    """Each run's (model, scores) through the runner's own treat/train/score."""
    _, ctx, specs, _ = prepare(config, dataset=dataset)
    out = {}
    for spec in specs:
        model = train(spec, ctx, treat(spec, ctx).state)
        out[spec.arm] = (model, score(spec, ctx, model))
    return ctx, out


def test_three_labels_train_three_classes_and_per_class_figures_match_sklearn():
    ctx, runs = _scored(_config(), make_three_class_dataset())
    model, scored = runs["control"]
    assert model.label_space_.classes == LABELS and model.label_space_.harmful == (1, 2)
    result = scored["test"]
    m, p = result.metrics, result.predictions
    assert set(p["predicted_label"]) == set(LABELS)  # a 3-class model, not hate-vs-rest
    y = p["reference_class"].to_numpy()
    pred = p["predicted_class"].to_numpy()
    proba = p[["proba_0", "proba_1", "proba_2"]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0) and np.array_equal(pred, proba.argmax(axis=1))
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=[0, 1, 2], zero_division=0)
    for code, label in enumerate(LABELS):
        assert m[f"test/class/{label}/precision"] == pytest.approx(precision[code])
        assert m[f"test/class/{label}/recall"] == pytest.approx(recall[code])
        assert m[f"test/class/{label}/f1"] == pytest.approx(f1[code])
        assert m[f"test/class/{label}/n"] == support[code]
    assert m["test/macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["test/weighted_f1"] == pytest.approx(f1_score(y, pred, average="weighted"))
    assert m["test/accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["test/worst_class_recall"] == pytest.approx(recall.min())
    assert m["test/macro_f1_ci_low"] <= m["test/macro_f1"] <= m["test/macro_f1_ci_high"]
    assert "test/mae" not in m  # a nominal scale
    # The binary view: harmful = offensive or hate, scored with P(offensive) + P(hate).
    harmful = np.isin(y, [1, 2]).astype(int)
    assert np.array_equal(p["reference"].to_numpy(), harmful)
    assert np.allclose(p["score"], proba[:, 1] + proba[:, 2])
    from sklearn.metrics import recall_score, roc_auc_score

    assert m["test/binary/recall"] == pytest.approx(recall_score(harmful, (p["score"] >= 0.5).astype(int)))
    assert m["test/binary/roc_auc"] == pytest.approx(roc_auc_score(harmful, p["score"]))
    assert "test/recall" not in m and "test/binary/recall_at_fpr_0.01" in m
    # The confusion matrix artifact, rows = reference, columns = prediction.
    table = result.artifacts["confusion/test.csv"]
    assert list(table.columns) == ["reference", *LABELS]
    assert table[list(LABELS)].to_numpy().sum() == len(p)
    assert table.set_index("reference").loc["hate", "offensive"] == ((y == 2) & (pred == 1)).sum()
    # Slices: K-class accuracy per slice.
    in_a = p["domain"].to_numpy() == "a"
    assert m["test/slice/domain/a/accuracy"] == pytest.approx(accuracy_score(y[in_a], pred[in_a]))


def test_confusing_the_harmful_classes_regresses_hate_and_is_compared_per_class(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = _config(seeds=(0,))
    result = run_experiment(config, lambda: MlflowTracker(store, "three"), dataset=make_three_class_dataset())
    assert not result.failures
    runs = result.runs.set_index("arm")
    confused = runs.loc["confused"]
    from mlflow import MlflowClient

    client = MlflowClient(store)

    def frame(arm):
        path = client.download_artifacts(runs.loc[arm, "run_id"], "predictions/test.parquet", str(tmp_path / arm))
        return pd.read_parquet(path).set_index("task")

    control, treated = frame("control"), frame("confused").loc[frame("control").index]
    right_before = control["predicted_class"] == control["reference_class"]
    wrong_after = treated["predicted_class"] != treated["reference_class"]
    new = right_before & wrong_after
    assert confused["regression/test/new_errors"] == new.sum() > 0
    pairs = pd.Series(list(zip(control["reference_label"][new], treated["predicted_label"][new]))).value_counts()
    for true in LABELS:  # every ordered pair is logged, zeros included
        for wrong in LABELS:
            if true != wrong:
                assert confused[f"regression/test/new_errors/{true}_to_{wrong}"] == pairs.get((true, wrong), 0)
    assert confused["delta/test/macro_f1"] == pytest.approx(confused["test/macro_f1"] - runs.loc["control", "test/macro_f1"])
    assert confused["delta/test/macro_f1_ci_low"] <= confused["delta/test/macro_f1"] <= confused["delta/test/macro_f1_ci_high"]
    assert 0 <= confused["delta/test/macro_f1_p"] <= 1 and 0 <= confused["regression/test/mcnemar_pvalue"] <= 1
    # The summary shows macro-F1, weighted F1 and the worst class's recall.
    assert {"test/weighted_f1_mean", "test/worst_class_recall_mean", "test/macro_f1_mean"} <= set(result.summary.columns)
    artifacts = {a.path for a in client.list_artifacts(runs.loc["control", "run_id"], "confusion")}
    assert artifacts == {"confusion/test.csv", "confusion/test.png"}


def test_task_binary_trains_harmful_vs_benign_on_three_labels():
    _, runs = _scored(_config(evaluation={"task": "binary"}), make_three_class_dataset())
    model, scored = runs["control"]
    assert model.label_space_.classes == () and list(model.classes_) == [0, 1]
    m = scored["test"].metrics
    assert "test/recall" in m and "test/class/hate/recall" not in m and "test/binary/recall" not in m
    assert scored["test"].predictions["reference"].mean() > 0.3  # offensive and hate both harmful


def test_ordinal_scales_add_mae_and_quadratic_kappa():
    from sklearn.metrics import cohen_kappa_score, mean_absolute_error

    _, runs = _scored(_config(), make_three_class_dataset(ordinal=True))
    result = runs["control"][1]["test"]
    y, pred = result.predictions["reference_class"], result.predictions["predicted_class"]
    assert result.metrics["test/mae"] == pytest.approx(mean_absolute_error(y, pred))
    assert result.metrics["test/qwk"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))


def test_an_ordinal_gate_on_a_nominal_scale_is_refused_before_any_run():
    config = _config(evaluation={"gates": {"max_drop": {"test/qwk": 0.05}}})
    with pytest.raises(DataError, match=r"evaluation.gates.max_drop.test/qwk: qwk is an ordinal metric, but benchmark "
                                         r"'test' scores the nominal labels \['neither', 'offensive', 'hate'\]"):
        prepare(config, dataset=make_three_class_dataset())


def test_a_model_that_trains_binary_classifiers_only_is_refused_on_three_labels(monkeypatch):
    from smo_impact.models import MODELS
    from smo_impact.models.tfidf_logreg import TfidfLogreg

    class BinaryOnly(TfidfLogreg):
        multiclass = False

    monkeypatch.setitem(MODELS._items, "tfidf_logreg", BinaryOnly)
    with pytest.raises(DataError, match=r"model.name: 'tfidf_logreg' trains harmful-vs-benign classifiers only, but arm "
                                         r"'control' trains on 3 labels \['neither', 'offensive', 'hate'\]; set "
                                         r"evaluation.task: binary"):
        prepare(_config(), dataset=make_three_class_dataset())


def test_a_guideline_maps_a_severity_scale_to_three_classes_scored_against_its_own_view():
    """ConvAbuse-like severity 1..-3 mapped to none / mild / strong by a guideline in every arm, and
    the primary benchmark's reference is the same guideline (evaluation.reference)."""
    rng = np.random.default_rng(1)
    severity = (1, 0, -1, -2, -3)
    base = make_three_class_dataset(300)
    to_severity = {"neither": [1, 0], "offensive": [-1], "hate": [-2, -3]}
    annotations = base.annotations.assign(label=[int(rng.choice(to_severity[x])) for x in base.annotations["label"]])
    data = AnnotationSet("sev", base.items, annotations, labels=severity, positive_label=-3, slice_columns=("domain",),
                         binary_positive=(-1, -2, -3), ordinal=True)
    guideline = {"guideline": {"version": "three", "labels": ["none", "mild", "strong"], "positive_label": "strong",
                               "positive_labels": ["mild", "strong"], "ordinal": True,
                               "rules": [{"when": {"label": {"le": -2}}, "label": "strong"},
                                         {"when": {"label": -1}, "label": "mild"}, {"when": {}, "label": "none"}]}}
    config = _config(arms={"control": [guideline, "aggregate"]}, evaluation={"reference": [guideline, "aggregate"]})
    ctx, runs = _scored(config, data)
    assert ctx.benchmarks[0].classes == ("none", "mild", "strong") and ctx.benchmarks[0].ordinal
    model, scored = runs["control"]
    assert model.label_space_.classes == ("none", "mild", "strong")
    m = scored["test"].metrics
    assert {"test/class/strong/recall", "test/mae", "test/qwk", "test/binary/recall"} <= set(m)
    # Without the reference pipeline the primary benchmark is the raw 5-level scale: another label
    # set, so only its binary view is scored.
    _, raw = _scored(_config(arms={"control": [guideline, "aggregate"]}), data)
    m = raw["control"][1]["test"].metrics
    assert "test/binary/recall" in m and "test/macro_f1" not in m


@pytest.mark.parametrize("model", [
    {"name": "embedding_mlp", "params": {"encoder": "tiny", "max_length": 16, "epochs": 2, "hidden": 16}},
    {"name": "embedding_logreg", "params": {"encoder": "tiny", "max_length": 16}},
])
def test_embedding_heads_train_three_classes_through_the_runner(model):
    """n_classes, K-way soft labels and K-class dev labels (the arm's own, treated) reach the model."""
    arms = {"control": ["aggregate"], "soft": [{"aggregate": {"method": "majority", "soft": True}}]}
    _, runs = _scored(_config(arms=arms, model=model), make_three_class_dataset(240))
    for arm in arms:
        trained, scored = runs[arm]
        assert trained.label_space_.classes == LABELS
        assert {"test/class/hate/recall", "test/macro_f1", "test/binary/recall"} <= set(scored["test"].metrics)
    assert runs["soft"][0].metrics_["train/soft_labels"] == 1.0


def test_a_binary_arm_against_a_k_class_control_is_compared_on_the_binary_view():
    """A guideline arm that maps the 3 labels to abusive/not trains binary; on the K-class benchmark
    only its binary view exists, and the paired bootstrap names it so (binary/macro_f1, not macro_f1)."""
    from smo_impact.evaluation.compare import compare_with_control

    binary = {"guideline": {"version": "v1", "labels": [0, 1], "positive_label": 1,
                            "rules": [{"when": {"label": "neither"}, "label": 0}, {"when": {}, "label": 1}]}}
    config = _config(arms={"control": ["aggregate"], "v1": [binary, "aggregate"]})
    _, runs = _scored(config, make_three_class_dataset())
    (_, control), (_, treated) = runs["control"], runs["v1"]
    assert "test/macro_f1" in control["test"].metrics and "test/macro_f1" not in treated["test"].metrics
    comparison = compare_with_control(treated["test"].metrics, control["test"].metrics, config.evaluation, 0,
                                      {"test": treated["test"]}, {"test": control["test"]})
    m = comparison.metrics
    assert "delta/test/binary/macro_f1_ci_low" in m and "delta/test/binary/recall_p" in m
    assert "delta/test/macro_f1_ci_low" not in m and "delta/test/macro_f1" not in m
    assert m["delta/test/binary/recall"] == pytest.approx(treated["test"].metrics["test/binary/recall"]
                                                          - control["test"].metrics["test/binary/recall"])


def test_k_class_training_labels_of_a_single_class_are_refused_before_any_run():
    data = make_three_class_dataset(120)
    only_hate = AnnotationSet(data.name, data.items, data.annotations.assign(label="hate"), labels=LABELS,
                              positive_label="hate", slice_columns=("domain",))
    with pytest.raises(DataError, match=r"arm 'control': the training labels of seed 0 contain a single class "
                                         r"\('hate' for all 72 items\); nothing to learn"):
        prepare(_config(arms={"control": ["aggregate"]}), dataset=only_hate)
