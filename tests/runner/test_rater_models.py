"""Model raters with a model from outside the arm: a tfidf_logreg run of the store (runs:/, a
registered name, a logged model id) or a folder. The model rater's judgements are checked against
the model loaded here with mlflow.sklearn and called on the item texts (no project code)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from smo_impact.config import validate
from smo_impact.errors import ConfigError, DataError
from smo_impact.runner.experiment import prepare, run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset

THRESHOLD = 0.8


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store with one tfidf_logreg run that logged its model, registered as 'rater' version 1."""
    path = tmp_path_factory.mktemp("store")
    store = f"sqlite:///{path / 'mlflow.db'}"
    data = make_text_dataset(200)
    config = validate({
        "name": "teacher", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]},
        "seeds": [0], "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
        "evaluation": {"bootstrap": 0}, "tracking": {"uri": store, "log_models": "all"},
    })
    result = run_experiment(config, lambda: MlflowTracker(store, "teacher"), dataset=data)
    run_id = str(result.runs["run_id"].iloc[0])
    tracker = MlflowTracker(store, "teacher")
    model_uri = MlflowClient(store).get_run(run_id).data.tags["smo.model_uri"]
    assert tracker.register_model(model_uri, "rater") == "1"
    return store, data, run_id, model_uri, path


def _hybrid(store: str, source: str, threshold: float = THRESHOLD, audit: float = 0.0):
    return validate({
        "name": "hybrid", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"],
                 "hybrid": [{"model_rater": {"model": source, "threshold": threshold, "audit": audit}},
                            {"aggregate": {"method": "dawid_skene"}}]},
        "seeds": [0], "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
        "evaluation": {"bootstrap": 0}, "tracking": {"uri": store},
    })


def _model_rater_state(store, data, source, threshold=THRESHOLD):
    """The hybrid arm's training state after its model_rater step, as the runner builds it."""
    from smo_impact.runner.run import apply_steps

    _, context, specs, _ = prepare(_hybrid(store, source, threshold), dataset=data)
    spec = next(s for s in specs if s.arm == "hybrid")
    state, metrics, artifacts = apply_steps(spec, context.initial_state, spec.entropy)
    return context, state, metrics, artifacts


def _independent(model_uri: str, store: str, data, tasks: pd.Index) -> pd.DataFrame:
    """The logged model's label and confidence per training item, from mlflow.sklearn alone."""
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(store)
    model = mlflow.sklearn.load_model(model_uri)
    texts = data.items.set_index("task").loc[tasks, ["text"]].reset_index(drop=True)
    return pd.DataFrame(
        {"label": model.predict(texts), "confidence": model.predict_proba(texts).max(axis=1)}, index=tasks
    )


@pytest.mark.parametrize("form", ["runs", "runs_classifier", "registered", "alias", "model_id"])
def test_judgements_are_the_logged_models_predictions_and_humans_get_the_unsure_items(trained, form):
    store, data, run_id, model_uri, _ = trained
    if form == "alias":
        MlflowClient(store).set_registered_model_alias("rater", "champion", "1")
    source = {
        "runs": f"runs:/{run_id}/model", "runs_classifier": f"runs:/{run_id}/classifier",
        "registered": "models:/rater/1", "alias": "models:/rater@champion", "model_id": model_uri,
    }[form]
    context, state, metrics, artifacts = _model_rater_state(store, data, source)
    ann = state.annotations
    model = ann[ann["worker"] == "model"].set_index("task")["label"].sort_index()
    train_tasks = pd.Index(np.sort(context.initial_state.annotations["task"].unique()))
    expected = _independent(model_uri, store, data, train_tasks)
    assert list(model.index) == list(train_tasks)
    assert (model.to_numpy() == expected["label"].to_numpy()).all()  # label codes 0/1 = the dataset's labels 0/1
    # Humans keep exactly the items under the threshold (no seed set, no audit), with all their judgements.
    unsure = set(expected.index[expected["confidence"] < THRESHOLD])
    assert set(ann.loc[ann["worker"] != "model", "task"]) == unsure and 0 < len(unsure) < len(train_tasks)
    human = context.initial_state.annotations
    assert (ann["worker"] != "model").sum() == human["task"].isin(unsure).sum()
    assert metrics["treatment/model_rater_human_items"] == len(unsure)
    assert metrics["treatment/model_rater_seed_items"] == 0
    # Realised confusion: every training item, human majority (ties -> harmful) x model label.
    majority = (human.groupby("task")["label"].mean() >= 0.5).astype(int)
    confusion = pd.crosstab(majority.reindex(train_tasks).to_numpy(), expected["label"].to_numpy())
    assert artifacts["model_rater_confusion"].to_numpy().tolist() == confusion.to_numpy().tolist()


def test_a_hybrid_arm_runs_through_and_logs_its_model_rater(trained):
    store, data, run_id, _, _ = trained
    result = run_experiment(_hybrid(store, f"runs:/{run_id}/model"), lambda: MlflowTracker(store, "hybrid"), dataset=data)
    hybrid = result.runs[result.runs["arm"] == "hybrid"].iloc[0]
    run = MlflowClient(store).get_run(hybrid["run_id"])
    assert run.info.status == "FINISHED"
    assert 0 < run.data.metrics["treatment/model_rater_human_share"] < 1
    assert run.data.params["treatment.model_rater.model"] == f"runs:/{run_id}/model"


def test_a_saved_folder_labels_like_the_logged_model(trained, tmp_path):
    """The run's model/ folder (skops head + params): the vectorizer refit on the same training
    texts gives the logged Pipeline's predictions."""
    store, data, run_id, model_uri, _ = trained
    folder = MlflowClient(store).download_artifacts(run_id, "model", str(tmp_path))
    context, state, _, _ = _model_rater_state(store, data, folder)
    model = state.annotations[state.annotations["worker"] == "model"].set_index("task")["label"].sort_index()
    expected = _independent(model_uri, store, data, model.index)
    assert (model.to_numpy() == expected["label"].to_numpy()).all()


def test_an_mlflow_model_folder_labels_like_the_logged_model(trained, tmp_path):
    import mlflow
    import mlflow.sklearn

    store, data, _, model_uri, _ = trained
    mlflow.set_tracking_uri(store)
    folder = tmp_path / "exported"
    mlflow.sklearn.save_model(mlflow.sklearn.load_model(model_uri), str(folder), serialization_format="cloudpickle")
    _, state, _, _ = _model_rater_state(store, data, str(folder))
    model = state.annotations[state.annotations["worker"] == "model"].set_index("task")["label"].sort_index()
    assert (model.to_numpy() == _independent(model_uri, store, data, model.index)["label"].to_numpy()).all()


def test_missing_sources_are_named_before_any_run(trained, tmp_path):
    store, data, _, _, _ = trained
    for source, message in [
        ("runs:/0123456789abcdef/model", "arms.hybrid[0].model_rater.model: no run '0123456789abcdef' in the tracking store"),
        ("models:/nobody/1", "no registered model 'nobody' in the tracking store"),
        (str(tmp_path / "nowhere"), "is not a directory (it does not exist)"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            prepare(_hybrid(store, source), dataset=data)


def test_a_model_with_another_label_set_is_refused(trained):
    """Three-class data rated by the binary model: its classes 0/1 are not the labels 0/1/2."""
    store, _, run_id, _, _ = trained
    data = make_text_dataset(200)
    rng = np.random.default_rng(1)
    ann = data.annotations.assign(label=rng.integers(0, 3, len(data.annotations)))
    three = type(data)(name="three", items=data.items, annotations=ann, labels=(0, 1, 2), positive_label=2,
                       slice_columns=("domain",))
    with pytest.raises(DataError, match=r"model_rater.model: the model's classes \[0, 1\] are not the dataset's labels \[0, 1, 2\]"):
        prepare(_hybrid(store, f"runs:/{run_id}/model"), dataset=three)


def test_a_model_that_does_not_read_text_is_refused(tmp_path):
    """An embedding_logreg run's logged model reads embeddings, not texts: named before any run."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data = make_text_dataset(120)
    config = validate({
        "name": "emb", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]}, "seeds": [0],
        "model": {"name": "embedding_logreg", "params": {"encoder": "tiny", "max_length": 32}},
        "evaluation": {"bootstrap": 0}, "tracking": {"uri": store, "log_models": "all"},
    })
    run_id = str(run_experiment(config, lambda: MlflowTracker(store, "emb"), dataset=data).runs["run_id"].iloc[0])
    with pytest.raises(ConfigError, match=re.escape(f"runs:/{run_id}/model cannot score texts") + ".*embedding_logreg"):
        prepare(_hybrid(store, f"runs:/{run_id}/model"), dataset=data)


def test_a_fine_tuned_run_rates_like_its_save_pretrained_folder_read_by_transformers(tmp_path):
    """A finetune run's model/ folder (save_pretrained) as a model rater, by runs:/ URI and by path:
    its labels are the argmax of the classifier loaded with transformers alone (no project code)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data = make_text_dataset(160)
    config = validate({
        "name": "tuned", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]}, "seeds": [0],
        "model": {"name": "finetune", "params": {"encoder": "tiny", "max_length": 32, "epochs": 1, "max_steps": 3}},
        "evaluation": {"bootstrap": 0}, "tracking": {"uri": store, "log_models": "all"},
    })
    run_id = str(run_experiment(config, lambda: MlflowTracker(store, "tuned"), dataset=data).runs["run_id"].iloc[0])
    folder = MlflowClient(store).download_artifacts(run_id, "model", str(tmp_path / "download"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    for source in (f"runs:/{run_id}/model", folder):
        context, state, _, _ = _model_rater_state(store, data, source, threshold=0.0)  # the model labels every item
        rated = state.annotations[state.annotations["worker"] == "model"].set_index("task")["label"].sort_index()
        texts = list(data.items.set_index("task").loc[rated.index, "text"])
        with torch.inference_mode():  # one text at a time: no padding at all
            expected = [int(model(**tokenizer(t, truncation=True, max_length=32, return_tensors="pt")).logits.argmax())
                        for t in texts]
        assert rated.to_numpy().tolist() == expected
        assert len(rated) == context.initial_state.annotations["task"].nunique()
