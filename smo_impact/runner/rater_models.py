"""Models from outside the arm for ``model_rater`` (``model_rater.model``), loaded once per sweep.

A source is an MLflow URI of the experiment's tracking store (``runs:/<run_id>/model``,
``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/<model_id>``) or a local
directory: an MLflow model directory (it holds ``MLmodel``), a ``save_pretrained`` classifier folder
(a ``finetune`` run's ``model/``: ``config.json``, weights, tokenizer) or a folder written by a
``tfidf_logreg`` model's ``save()`` (``model.json`` + ``head.skops``). Every source is loaded before any run is created, so
a missing run, an unregistered name or a wrong path stops the experiment with one line.

What the model rater gets is a :class:`TextModel`: ``predict_proba`` on item texts and ``classes_``.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.errors import ConfigError

# skops types a saved logistic-regression head may hold; anything else in a user's folder is refused.
_SAFE_PREFIXES = ("sklearn.", "numpy.", "builtins.")


@dataclass(frozen=True)
class TextModel:
    """A trained classifier that reads raw text: ``predict_proba(texts)``, columns in ``classes_`` order.

    Attributes:
        estimator: A scikit-learn estimator on a table with a ``text`` column (our logged
            ``tfidf_logreg`` Pipeline), or a head on ``vectorizer``'s output.
        source: Where it came from (``model_rater.model``).
        vectorizer: For a ``save()`` folder: the TF-IDF vectorizer its head reads, refit on the
            dataset's training split exactly as the run that trained it did.
    """

    estimator: Any
    source: str
    vectorizer: Any = None

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.estimator.classes_)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if self.vectorizer is not None:
            return np.asarray(self.estimator.predict_proba(self.vectorizer.transform(texts)))
        return np.asarray(self.estimator.predict_proba(pd.DataFrame({"text": list(texts)})))


def rater_sources(specs: list[Any]) -> dict[str, str]:
    """``model_rater.model`` sources of the planned runs -> the config key that names each first."""
    sources: dict[str, str] = {}
    for spec in specs:
        for index, step in enumerate(spec.steps):
            source = step.params.get("model") if step.name == "model_rater" else None
            if source and source not in sources:
                sources[source] = f"arms.{spec.arm}[{index}].model_rater.model"
    return sources


def load_rater_models(specs: list[Any], tracking_uri: str | None, dataset: Any) -> dict[str, TextModel]:
    """Load every external model the plan's model raters name; one ConfigError with every problem.

    Raises:
        ConfigError: a run, registered name or logged model not in the store; a path that does not
            exist or holds no model a model rater can use.
    """
    sources = rater_sources(specs)
    if not sources:
        return {}
    from smo_impact.tracking.mlflow_tracker import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    models: dict[str, TextModel] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        for source, key in sources.items():
            try:
                models[source] = _load(source, uri, dataset, scratch)
            except LookupError as exc:
                problems.append(f"{key}: {exc.args[0]}")
    if problems:
        raise ConfigError(problems)
    return models


def _load(source: str, uri: str, dataset: Any, scratch: str) -> TextModel:
    from smo_impact.tracking.mlflow_tracker import load_logged_model, load_model_directory

    if source.startswith(("runs:/", "models:/")):
        estimator, directory = load_logged_model(source, uri, scratch)
        if estimator is not None:
            return _checked(TextModel(estimator, source), dataset)
    else:
        directory = Path(source).expanduser()
        if not directory.is_dir():
            raise LookupError(
                f"'{source}' is not a directory{' (it is a file)' if directory.exists() else ' (it does not exist)'}; "
                "give a folder written by a model's save() (model.json, head.skops), a save_pretrained "
                "classifier folder (config.json), an MLflow model folder (MLmodel), or a runs:/ or models:/ URI"
            )
    if (directory / "MLmodel").is_file():
        return _checked(TextModel(load_model_directory(directory), source), dataset)
    if (directory / "config.json").is_file():  # save_pretrained: a fine-tuned encoder with its head
        return _checked(TextModel(PretrainedClassifier(directory), source), dataset)
    return _from_saved(directory, source, dataset)


class PretrainedClassifier:
    """A sequence classifier saved with ``save_pretrained`` (a ``finetune`` run's ``model/`` folder,
    or any transformers classifier folder with its tokenizer), scoring texts on the CPU or GPU.

    Its classes are the head's output indices ``0 .. num_labels - 1`` (class codes, as a
    ``finetune`` run trains them); ``max_length`` comes from the run's ``smo_model.json`` if present.
    """

    def __init__(self, directory: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from smo_impact.models.device import select_device

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(directory))
            self.model = AutoModelForSequenceClassification.from_pretrained(str(directory))
        except (OSError, ValueError) as exc:
            raise LookupError(
                f"'{directory}' has a config.json but is not a transformers classifier with its tokenizer "
                f"({str(exc).splitlines()[0]}); save one with save_pretrained (model and tokenizer)"
            ) from None
        meta = directory / "smo_model.json"
        params = json.loads(meta.read_text()).get("params", {}) if meta.is_file() else {}
        self.max_length = int(params.get("max_length", 128))
        self.batch_size = int(params.get("eval_batch_size", 64))
        self.device = select_device("auto")
        self.model.to(self.device).eval()
        self.classes_ = np.arange(self.model.config.num_labels)

    def predict_proba(self, X: Any) -> np.ndarray:
        from smo_impact.models.finetune import classify_texts

        texts = list(X["text"]) if isinstance(X, pd.DataFrame) else list(X)
        return classify_texts(self.model, self.tokenizer, texts, self.max_length, self.batch_size, self.device)


def _from_saved(directory: Path, source: str, dataset: Any) -> TextModel:
    """A ``tfidf_logreg`` folder written by ``save()``: its skops head, and the TF-IDF vectorizer
    refit on the dataset's training split (the folder keeps the vectorizer's params, not its vocabulary)."""
    meta = directory / "model.json"
    name = json.loads(meta.read_text()).get("name") if meta.is_file() else None
    if name != "tfidf_logreg" or not (directory / "head.skops").is_file():
        found = f"a '{name}' model" if name else "no model.json"
        raise LookupError(
            f"'{source}' holds {found}; a model rater reads texts with a tfidf_logreg folder (model.json, "
            "head.skops), a fine-tuned classifier saved with save_pretrained (config.json) or an MLflow "
            "scikit-learn model (MLmodel); for other models use their run's logged MLflow model (runs:/<run_id>/model)"
        )
    import skops.io

    from smo_impact.models import MODELS

    data = (directory / "head.skops").read_bytes()
    untrusted = skops.io.get_untrusted_types(data=data)
    unsafe = [t for t in untrusted if not t.startswith(_SAFE_PREFIXES)]
    if unsafe:
        raise LookupError(f"'{source}/head.skops' holds types a logistic regression does not: {', '.join(sorted(unsafe))}")
    head = skops.io.loads(data, trusted=untrusted)
    model_cls = MODELS.get("tfidf_logreg")
    params = model_cls.Params.model_validate(json.loads(meta.read_text()).get("params", {}))
    vectorizer = model_cls(params).featurizer().vectorizer().fit(dataset.split("train")["text"])
    if len(vectorizer.vocabulary_) != getattr(head, "n_features_in_", len(vectorizer.vocabulary_)):
        raise LookupError(
            f"'{source}' was trained on {head.n_features_in_} TF-IDF features, but its params give "
            f"{len(vectorizer.vocabulary_)} on this dataset's training texts: it was trained on other data; "
            "use its run's logged MLflow model (runs:/<run_id>/model), which keeps its vocabulary"
        )
    return _checked(TextModel(head, source, vectorizer), dataset)


def _checked(model: TextModel, dataset: Any) -> TextModel:
    """``model``, once it has given class probabilities for two of the dataset's texts."""
    if not hasattr(model.estimator, "predict_proba") or not hasattr(model.estimator, "classes_"):
        raise LookupError(
            f"{model.source} has no predict_proba and classes_; a model rater needs class probabilities "
            "(a scikit-learn classifier)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's feature-name hints on input it is about to refuse
            model.predict_proba(list(dataset.items["text"].astype(str).head(2)))
    except Exception as exc:  # noqa: BLE001 - whatever the estimator raises on input it cannot read
        raise LookupError(
            f"{model.source} cannot score texts (a table with a 'text' column): {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}; a model rater needs a model that reads raw text, "
            "e.g. a tfidf_logreg run's logged model (an embedding_logreg model reads embeddings)"
        ) from None
    return model


__all__ = ["TextModel", "load_rater_models", "rater_sources"]
