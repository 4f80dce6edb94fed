"""Which runs keep their trained model, and the model as MLflow serves it (issue 19.4).

A run's ``model/`` files (``save()``: skops, safetensors) let a person reload the model with our
code. MLflow's own model format makes it a row in the UI's Models column, servable with
``mlflow models serve`` and registrable: for the logistic regressions (``tfidf_logreg``,
``embedding_logreg``) the head goes into an sklearn model that takes what a user has:

* ``tfidf_logreg``: a ``Pipeline`` of the TF-IDF vectorizer (fit on the training split's texts,
  exactly as the cached features were) and the classifier, on a table with a ``text`` column;
* ``embedding_logreg``: the classifier on the encoder's embeddings (the encoder is named in
  ``model/model.json``).

Torch models (``embedding_mlp``, ``finetune``) keep their ``model/`` files only.
"""

from __future__ import annotations

from typing import Any

from smo_impact.runner.plan import RunSpec

SKLEARN_MODELS = ("tfidf_logreg", "embedding_logreg")
_vectorizers: dict[tuple[int, str], Any] = {}  # fitted TF-IDF per (dataset, model spec): fit once per sweep


def keeps_model(spec: RunSpec, log_models: str) -> bool:
    """Whether the run's trained model is logged, by ``tracking.log_models``."""
    return log_models == "all" or (log_models == "control" and spec.is_control)


def servable_model(spec: RunSpec, context: Any, files: dict[str, bytes]) -> tuple[Any, Any] | None:
    """The run's model as an sklearn estimator with ``predict_proba``, and an input example for
    its MLflow signature; None for models without an sklearn form."""
    if spec.model.name not in SKLEARN_MODELS or "head.skops" not in files:
        return None
    import skops.io

    # Our own bytes, written by the model's save() in this sweep: every type in them is trusted.
    head = skops.io.loads(files["head.skops"], trusted=skops.io.get_untrusted_types(data=files["head.skops"]))
    if spec.model.name == "embedding_logreg":
        return head, context.features_for(spec.model).matrix[:3]
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from smo_impact.models import MODELS
    from smo_impact.runner.run import model_key

    texts = context.dataset.items[["text"]]
    key = (id(context.dataset), model_key(spec.model))
    if key not in _vectorizers:
        model_cls = MODELS.get(spec.model.name)
        featurizer = model_cls(model_cls.Params.model_validate(spec.model.params)).featurizer()
        train = context.dataset.split("train")[["text"]]
        _vectorizers.clear()  # one sweep at a time: keep only the vectorizers of the current one
        _vectorizers[key] = ColumnTransformer([("tfidf", featurizer.vectorizer(), "text")]).fit(train)
    pipeline = Pipeline([("features", _vectorizers[key]), ("classifier", head)])
    return pipeline, texts.head(3).reset_index(drop=True)


def best_model(summary: Any, runs: Any, split: str) -> tuple[str, str, str]:
    """The arm (grid point) with the highest mean macro-F1 on the primary benchmark, and the
    logged model of its best seed: (arm label, run id, model URI).

    Raises:
        ConfigError: when no arm was summarized, or the best arm's runs logged no MLflow model.
    """
    from smo_impact.errors import ConfigError

    column = f"{split}/macro_f1_mean"
    if summary.empty or column not in summary or summary[column].isna().all():
        raise ConfigError(f"--register: no arm has a mean {split}/macro_f1 to choose the best by")
    best = summary.loc[summary[column].idxmax()]
    label = best["arm"] if best["grid"] == "-" else f"{best['arm']} {best['grid']}"
    group = runs[(runs["arm"] == best["arm"]) & (runs["grid"] == best["grid"])]
    group = group[group["model_uri"].notna()] if "model_uri" in group else group.iloc[0:0]
    if group.empty:
        raise ConfigError(
            f"--register: the best arm ({label}, mean {split}/macro_f1 {best[column]:.3f}) has no logged MLflow "
            f"model: models are logged for {', '.join(SKLEARN_MODELS)} (tracking.log_models), and runs reused "
            "from the store keep what they logged (add --force to retrain them)"
        )
    run = group.loc[group[f"{split}/macro_f1"].idxmax()]
    return label, str(run["run_id"]), str(run["model_uri"])


__all__ = ["SKLEARN_MODELS", "best_model", "keeps_model", "servable_model"]
