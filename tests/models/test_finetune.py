import numpy as np
import pytest
import torch
from pydantic import ValidationError

from smo_impact.models.base import DevSet
from smo_impact.models.features import FeatureCache
from smo_impact.models.finetune import Finetune
from tests.conftest import make_text_dataset

TINY = dict(encoder="tiny", max_length=32, batch_size=16, learning_rate=1e-2, epochs=3, patience=2, monitor="dev/loss")


@pytest.fixture(scope="module")
def data():
    dataset = make_text_dataset(300)
    texts = FeatureCache(disk=False).get(dataset, Finetune(Finetune.Params()).featurizer())
    parts = {name: dataset.split(name) for name in ("train", "dev", "test")}
    return {name: (texts.rows(items["task"]), items["truth"].to_numpy()) for name, items in parts.items()}


def test_tiny_encoder_training_reduces_loss_and_beats_chance(data):
    (X, y), (X_dev, y_dev), (X_test, y_test) = data["train"], data["dev"], data["test"]
    model = Finetune(Finetune.Params(**TINY)).fit(X, y, seed=0, dev=DevSet(X_dev, y_dev))
    losses = model.curves_["train/loss"]
    first, last = np.mean([v for _, v in losses[:5]]), np.mean([v for _, v in losses[-5:]])
    assert last < 0.7 * first
    accuracy = ((model.predict_proba(X_test)[:, 1] >= 0.5) == y_test).mean()
    chance = max(y_test.mean(), 1 - y_test.mean())  # always predicting the majority class
    assert accuracy > chance + 0.2
    assert model.metrics_["train/best_epoch"] >= 1 and len(model.curves_["dev/macro_f1"]) == model.metrics_["train/epochs_run"]


def test_same_seed_same_model_and_global_rng_untouched(data):
    (X, y), (X_test, _) = data["train"], data["test"]
    params = Finetune.Params(**{**TINY, "max_steps": 6})
    state = torch.random.get_rng_state()
    a = Finetune(params).fit(X, y, seed=3).predict_proba(X_test)
    b = Finetune(params).fit(X, y, seed=3).predict_proba(X_test)
    c = Finetune(params).fit(X, y, seed=4).predict_proba(X_test)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_soft_labels_are_the_training_target(data):
    (X, y), (X_test, _) = data["train"], data["test"]
    params = Finetune.Params(**{**TINY, "max_steps": 6})
    hard = Finetune(params).fit(X, y, seed=0)
    # Vote shares that agree with the hard labels as one-hot: the same model, bit for bit.
    same = Finetune(params).fit(X, y, seed=0, soft_labels=y.astype(float))
    assert np.array_equal(hard.predict_proba(X_test), same.predict_proba(X_test))
    soft = Finetune(params).fit(X, y, seed=0, soft_labels=np.full(len(y), 0.5))
    assert soft.metrics_["train/soft_labels"] == 1.0
    assert not np.allclose(hard.predict_proba(X_test), soft.predict_proba(X_test))


def test_saved_model_reloads_with_transformers(data, tmp_path):
    from transformers import AutoModelForSequenceClassification

    (X, y), (X_test, _) = data["train"], data["test"]
    model = Finetune(Finetune.Params(**{**TINY, "max_steps": 2})).fit(X, y, seed=0)
    model.save(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    inputs = model.tokenizer_(list(X_test[:4]), padding=True, return_tensors="pt")
    with torch.inference_mode():
        proba = torch.softmax(reloaded(**inputs).logits, -1).numpy()
    assert np.allclose(proba, model.predict_proba(X_test[:4]), atol=1e-5)


def test_unknown_encoder_is_a_config_error_naming_the_choices():
    with pytest.raises(ValidationError, match="unknown encoder 'bert'; use 'minilm'"):
        Finetune.Params(encoder="bert")
    with pytest.raises(ValidationError, match="encoder './nowhere' is not a model directory"):
        Finetune.Params(encoder="./nowhere")


def test_config_validation_names_the_model_param():
    from smo_impact.config import validate
    from smo_impact.errors import ConfigError

    raw = {"name": "t", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]},
           "model": {"name": "finetune", "params": {"encoder": "tiny", "epochs": 0, "lr": 1}}}
    with pytest.raises(ConfigError, match=r"model\.params\.epochs: Input should be greater than or equal to 1.*model\.params\.lr: unknown key"):
        validate(raw)


@pytest.mark.slow
@pytest.mark.integration
def test_minilm_fine_tunes_on_md_agreement(mirror):
    """A few real optimizer steps of MiniLM on the mirror: the loss goes down, the model is saved."""
    from smo_impact.data.catalog import load_dataset

    dataset = load_dataset("md-agreement")
    train = dataset.split("train").iloc[:192]
    y = (dataset.vote_counts().loc[train["task"], 1].to_numpy() >= 3).astype(int)
    params = Finetune.Params(encoder="minilm", max_length=64, batch_size=16, learning_rate=1e-4, warmup_ratio=0.0, epochs=2)
    model = Finetune(params).fit(train["text"].to_numpy(dtype=object), y, seed=0)
    losses = [v for _, v in model.curves_["train/loss"]]
    assert len(losses) == 24
    assert np.mean(losses[-6:]) < np.mean(losses[:6])
    proba = model.predict_proba(dataset.split("test")["text"].iloc[:32].to_numpy(dtype=object))
    assert proba.shape == (32, 2) and np.allclose(proba.sum(1), 1.0)


def test_three_classes_get_a_three_output_head_and_k_class_dev_scores(data, tmp_path):
    """K classes: the head has K outputs, soft targets are K-way vote shares, early stopping reads
    the K-class dev scores, and the saved model says num_labels = 3."""
    (X, y), (X_dev, y_dev) = data["train"], data["dev"]
    y3, y3_dev = y * 2 - (np.arange(len(y)) % 3 == 0) * y, y_dev * 2  # codes 0, 1 and 2
    model = Finetune(Finetune.Params(**{**TINY, "epochs": 2})).fit(X, y3, seed=0, dev=DevSet(X_dev, y3_dev), n_classes=3)
    proba = model.predict_proba(X_dev)
    assert proba.shape == (len(X_dev), 3) and np.allclose(proba.sum(axis=1), 1.0) and list(model.classes_) == [0, 1, 2]
    assert len(model.curves_["dev/macro_f1"]) == model.metrics_["train/epochs_run"]
    soft = Finetune(Finetune.Params(**{**TINY, "max_steps": 2})).fit(X, y3, seed=0, soft_labels=np.full((len(X), 3), 1 / 3), n_classes=3)
    soft.save(tmp_path)
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path).num_labels == 3


def test_fine_tuning_reports_steps_and_epochs_as_it_goes(data):
    from smo_impact.models.training import report_training_progress

    (X, y), (X_dev, y_dev) = data["train"], data["dev"]
    calls = []
    with report_training_progress(lambda *args: calls.append(args)):
        model = Finetune(Finetune.Params(**{**TINY, "max_steps": 15})).fit(X, y, seed=0, dev=DevSet(X_dev, y_dev))
    per_epoch = -(-len(X) // TINY["batch_size"])  # 180 texts in batches of 16: 12 steps an epoch
    assert [c[0] for c in calls] == list(range(1, len(model.curves_["train/loss"]) + 1))
    assert {c[1] for c in calls} == {15} and calls[-1][0] <= 15  # planned: min(3 x 12, max_steps)
    assert [c[2] for c in calls] == [(step - 1) // per_epoch + 1 for step, *_ in calls]
    assert {c[3] for c in calls} == {TINY["epochs"]} and calls[-1][:3] == (15, 15, 2)  # stopped in epoch 2
