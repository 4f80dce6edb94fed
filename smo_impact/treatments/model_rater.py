"""Model raters (AI feedback) and hybrid pools: a model labels every item; humans label where it is unsure."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from smo_impact.treatments.aggregate import majority_vote
from smo_impact.treatments.base import LabelState, TreatmentParams, keep_tasks, removal_rows, require_judgements


class ModelRater:
    """Add a rater whose judgements come from a model trained in the arm on a human-labelled seed set.

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
    rated). Metrics: ``treatment/model_rater_seed_items``, ``treatment/model_rater_human_items``,
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

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        require_judgements(state, self.name)
        p = self.params
        ann = state.annotations
        if (ann["worker"].astype(str) == p.worker).any():
            raise ValueError(f"model_rater.worker '{p.worker}' is already a human rater's id; pick another model_rater.worker")
        tasks = pd.Index(np.sort(ann["task"].unique()))
        n_seed = min(len(tasks) - 1, max(2, int(round(p.seed_share * len(tasks)))))
        order = rng.permutation(len(tasks))
        self.seed_tasks_ = tasks[np.sort(order[:n_seed])]
        human = majority_vote(ann, state.labels_set, state.positive_label, "positive")
        classes = list(state.labels_set)
        y_seed = pd.Index(classes).get_indexer(human.reindex(self.seed_tasks_).to_numpy())
        if len(np.unique(y_seed)) < 2:
            raise ValueError(
                f"model_rater: the {n_seed} seed items' human labels hold one class; nothing to train a model rater "
                "on; raise model_rater.seed_share"
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
