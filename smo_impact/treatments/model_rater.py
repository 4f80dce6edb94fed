"""Model raters (AI feedback) and hybrid pools: a model labels every item; humans label where it is unsure."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from smo_impact.treatments.aggregate import majority_vote
from smo_impact.treatments.base import LabelState, TreatmentParams, keep_tasks, removal_rows, require_judgements


class ModelRater:
    """Add a rater whose judgements come from a model: trained in the arm on a human-labelled seed
    set, or taken from outside the arm (``model``).

    A seeded share ``seed_share`` of the items keeps its human judgements and trains a logistic
    regression (the run's cached features; TF-IDF of the texts without them) on their human
    majority labels. The model then labels every item as worker ``worker`` (one judgement each).
    Humans keep their judgements on the seed items, on items whose model confidence (top class
    probability) is below ``threshold``, and on a random ``audit`` share of the others; their
    other judgements are dropped (not bought). ``threshold: 1`` keeps every human judgement (the
    model is one more rater); ``threshold: 0`` with ``audit: 0`` leaves the model alone outside the
    seed set. The aggregation that follows treats the model as one more worker (Dawid-Skene learns
    its skill). For costs, the model's pool is its ``worker`` name (price it as
    ``costs.pools.<worker>`` when costs has a column).

    Runs before ``aggregate``. Artifacts: ``model_rater_confusion`` (human majority of all the
    item's real judgements x model label, items outside the seed set) and
    ``model_rater_agreement_by_worker`` (each human's agreement with the model on the items they
    rated).

    With ``model`` (a ``runs:/<run_id>/model`` or ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
    ``models:/<model_id>`` URI of the experiment's tracking store, or a local folder written by a
    model's ``save()`` or an MLflow model folder) nothing is trained and there is no seed set
    (``seed_share`` is unused): the model's ``predict_proba`` on the item texts gives its label and
    confidence. Its classes must be the dataset's labels, or class codes of them: 0/1 for
    benign/harmful on binary data, i for ``labels[i]`` on K classes (what our runs train on).
    Metrics: ``treatment/model_rater_seed_items``, ``treatment/model_rater_human_items``,
    ``treatment/model_rater_human_share``, ``treatment/model_rater_accuracy`` (model label = human
    majority, outside the seed set).
    """

    name: ClassVar[str] = "model_rater"
    requires_judgements: ClassVar[bool] = True  # checked at validation: comes before 'aggregate'
    preflight: ClassVar[bool] = True  # one logistic regression: cheap enough to try before any run

    class Params(TreatmentParams):
        seed_share: float = Field(0.1, gt=0.0, lt=1.0, description="Share of items whose human labels train the model.")
        threshold: float = Field(1.0, ge=0.0, le=1.0, description="Humans label items whose model confidence is below this.")
        audit: float = Field(0.0, ge=0.0, le=1.0, description="Random share of the confident items humans label anyway.")
        worker: str = Field("model", min_length=1, description="The model rater's worker id (and pool for costs).")
        C: float = Field(4.0, gt=0.0, description="Inverse regularisation of the logistic regression.")
        model: str | None = Field(
            None, min_length=1,
            description="A trained model instead of the seed set: runs:/<run_id>/model, models:/<name>/<version>, "
            "models:/<name>@<alias>, models:/<model_id>, or a local folder (save() or MLflow model).",
        )

        quiet_defaults: ClassVar[tuple[str, ...]] = ("model",)  # configs without it keep their run keys

        @model_validator(mode="after")
        def _seed_set_or_model(self) -> ModelRater.Params:
            # seed_share would be silently unused next to a model from elsewhere: say so instead. (Compared
            # with its default, not by fields_set: resolved steps are re-validated with every field.)
            if self.model is not None and self.seed_share != type(self).model_fields["seed_share"].default:
                raise ValueError(
                    "seed_share trains a model in the arm, model names one trained elsewhere: give one of them"
                )
            return self

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        require_judgements(state, self.name)
        p = self.params
        ann = state.annotations
        if (ann["worker"].astype(str) == p.worker).any():
            raise ValueError(f"model_rater.worker '{p.worker}' is already a human rater's id; pick another model_rater.worker")
        tasks = pd.Index(np.sort(ann["task"].unique()))
        human = majority_vote(ann, state.labels_set, state.positive_label, "positive")
        classes = list(state.labels_set)
        if p.model is not None:  # a trained model from outside the arm: no seed set
            n_seed = 0
            self.seed_tasks_ = tasks[:0]
            proba = self._external_proba(state, tasks)
        else:
            n_seed = min(len(tasks) - 1, max(2, int(round(p.seed_share * len(tasks)))))
            order = rng.permutation(len(tasks))
            self.seed_tasks_ = tasks[np.sort(order[:n_seed])]
            y_seed = pd.Index(classes).get_indexer(human.reindex(self.seed_tasks_).to_numpy())
            if len(np.unique(y_seed)) < 2:
                raise ValueError(
                    f"model_rater: the {n_seed} seed items' human labels hold one class; nothing to train a model "
                    "rater on; raise model_rater.seed_share"
                )
            proba = self._fit_predict(state, tasks, y_seed, len(classes))
        confidence = proba.max(axis=1)
        predicted = np.asarray(classes)[proba.argmax(axis=1)]
        is_seed = tasks.isin(self.seed_tasks_)
        audited = rng.random(len(tasks)) < p.audit  # drawn for every item: same stream whatever the threshold
        to_humans = is_seed | (confidence < p.threshold) | audited
        self.confidence_ = pd.Series(confidence, index=tasks)

        model_rows = pd.DataFrame({"task": tasks.to_numpy(), "worker": p.worker, "label": predicted})
        workers = state.workers
        column = getattr(state.costs, "column", None)
        if column is not None and column in ann.columns:
            model_rows[column] = p.worker
        if workers is not None:
            row = {c: (p.worker if c in ("worker", column) else None) for c in workers.columns}
            workers = pd.concat([workers, pd.DataFrame([row])], ignore_index=True)
        keep = ann["task"].isin(tasks[to_humans]).to_numpy()
        annotations = pd.concat([ann.loc[keep], model_rows], ignore_index=True)

        # The model's realised quality against the human majority of all the item's real judgements.
        outside = ~is_seed
        model_label = pd.Series(predicted, index=tasks)
        self.artifacts_ = {
            "model_rater_confusion": pd.crosstab(
                human.reindex(tasks[outside]).rename("human_majority"), model_label[outside].rename("model")
            ),
            "model_rater_agreement_by_worker": (
                ann.assign(agree=ann["label"].to_numpy() == model_label.reindex(ann["task"]).to_numpy())
                .groupby("worker")["agree"].agg(n="size", agreement="mean")
            ),
        }
        self.metrics_ = {
            "treatment/model_rater_seed_items": float(n_seed),
            "treatment/model_rater_human_items": float(to_humans.sum()),
            "treatment/model_rater_human_share": float(to_humans.mean()),
            "treatment/model_rater_accuracy": float(
                (model_label[outside] == human.reindex(tasks[outside])).mean()
            ) if outside.any() else float("nan"),
        }
        dropped = removal_rows(ann.loc[~keep], self.name, f"model_rater: model confident (>= {p.threshold:g}), not audited")
        return keep_tasks(state, tasks, annotations=annotations, workers=workers).with_changes(dropped)

    def _external_proba(self, state: LabelState, tasks: pd.Index) -> np.ndarray:
        """P(class) for every task (columns in label-set order) from the external model on the item texts."""
        source = self.params.model
        model = (state.rater_models or {}).get(source)
        if model is None:
            raise ValueError(f"model_rater.model '{source}' was not loaded; run it through `smo-impact run`")
        columns = label_columns(model.classes_, tuple(state.labels_set), state.positive_label)
        texts = state.items.set_index("task")["text"].reindex(tasks).fillna("").astype(str)
        raw = model.predict_proba(list(texts))
        out = np.zeros((len(tasks), len(state.labels_set)))
        out[:, columns] = raw
        return out

    def _fit_predict(self, state: LabelState, tasks: pd.Index, y_seed: np.ndarray, k: int) -> np.ndarray:
        """P(class) for every task (columns in label-set order) from a model fit on the seed items."""
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.params.C, max_iter=2000)
        if state.features is not None:
            X_all = state.features.rows(tasks)
            X_seed = state.features.rows(self.seed_tasks_)
        else:
            from sklearn.feature_extraction.text import TfidfVectorizer

            texts = state.items.set_index("task")["text"].reindex(tasks).fillna("").astype(str)
            vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(texts[self.seed_tasks_])
            X_all, X_seed = vectorizer.transform(texts), vectorizer.transform(texts[self.seed_tasks_])
        model.fit(X_seed, y_seed)
        out = np.zeros((len(tasks), k))
        out[:, model.classes_] = model.predict_proba(X_all)
        return out


def label_columns(classes: np.ndarray, labels_set: tuple, positive: object) -> np.ndarray:
    """Where each of a model's classes goes in ``labels_set`` order.

    Classes that are the dataset's labels map to themselves; integer codes map as our runs train
    them: 0/1 to the other label/``positive`` on two labels, i to ``labels_set[i]`` on K. Either way
    the model's classes must cover the label set exactly.

    Raises:
        ValueError: the model's label set differs from the dataset's.
    """
    classes = list(np.asarray(classes).tolist())
    labels = list(labels_set)
    if set(classes) == set(labels) and len(classes) == len(labels):
        return np.asarray([labels.index(c) for c in classes])
    codes = all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes)
    if codes and sorted(classes) == list(range(len(labels))):
        if len(labels) == 2:
            other = labels[1 - labels.index(positive)]
            return np.asarray([labels.index(positive) if c == 1 else labels.index(other) for c in classes])
        return np.asarray(classes)
    raise ValueError(
        f"model_rater.model: the model's classes {classes} are not the dataset's labels {labels} "
        f"({len(classes)} classes for {len(labels)} labels); use a model trained on this dataset's labels "
        "(or drop model_rater.model to train one in the arm on a seed set)"
    )
