"""Cleaning: find training labels that look wrong and drop or relabel them."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from smo_impact.data.schema import vote_counts
from smo_impact.treatments.base import LabelState, TreatmentParams, change_rows, keep_tasks, require_labels
from smo_impact.treatments.oof import out_of_fold_proba


class Clean:
    """Flag suspicious training labels, then drop or relabel them.

    ``method: cleanlab`` flags items with cleanlab's ``find_label_issues`` on out-of-fold
    predicted probabilities (a cheap model on the run's cached features, else TF-IDF + logistic
    regression; see :mod:`.oof`); ``relabel`` gives a flagged item the model's most likely label.
    ``method: agreement`` flags items whose top-label vote share is below ``min_agreement``
    (relabel is not defined for it: the votes have no better label to offer).

    When the state carries reference labels (simulated raters, or the labels before a noise step)
    the step also reports how many flagged items were truly wrong.

    Metrics: ``treatment/clean_flagged``, ``treatment/clean_removed``, ``treatment/clean_relabeled``,
    and with reference labels ``treatment/clean_flagged_truly_wrong``, ``treatment/clean_precision``,
    ``treatment/clean_recall`` (share of the wrong labels that were flagged).
    """

    name: ClassVar[str] = "clean"
    requires_labels: ClassVar[bool] = True  # checked at validation: an 'aggregate' step comes first

    class Params(TreatmentParams):
        method: Literal["cleanlab", "agreement"] = Field("cleanlab", description="How suspicious labels are found.")
        action: Literal["drop", "relabel"] = Field("drop", description="What happens to a flagged item.")
        min_agreement: float = Field(0.6, gt=0.0, le=1.0, description="agreement: keep items whose top vote share >= this.")
        folds: int = Field(5, ge=2, le=20, description="cleanlab: cross-validation folds for out-of-fold probabilities.")
        filter_by: Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning"] = Field(
            "prune_by_noise_rate", description="cleanlab find_label_issues filter_by."
        )

        @model_validator(mode="after")
        def _relabel_needs_model(self) -> Clean.Params:
            if self.method == "agreement" and self.action == "relabel":
                raise ValueError("action 'relabel' needs method 'cleanlab'; the agreement filter can only drop")
            return self

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        p = self.params
        labels = require_labels(state, self.name).sort_index()
        if p.method == "agreement":
            counts = vote_counts(state.annotations, state.labels_set).reindex(labels.index, fill_value=0)
            share = counts.max(axis=1) / counts.sum(axis=1).clip(lower=1)
            flagged = (share < p.min_agreement).to_numpy()
            suggested = None
        else:
            from cleanlab.filter import find_label_issues

            proba = out_of_fold_proba(state, labels, rng, folds=p.folds)
            y = pd.Index(list(state.labels_set)).get_indexer(labels.to_numpy())
            flagged = find_label_issues(y, proba, filter_by=p.filter_by, n_jobs=1)
            suggested = np.asarray(state.labels_set, dtype=object)[proba.argmax(axis=1)]
        flagged_tasks = labels.index[flagged]
        self.flagged_ = flagged_tasks
        self.metrics_ = {"treatment/clean_flagged": float(flagged.sum())}
        if state.reference is not None:
            wrong = labels.ne(state.reference.reindex(labels.index)).to_numpy()
            truly = int((flagged & wrong).sum())
            self.metrics_["treatment/clean_flagged_truly_wrong"] = float(truly)
            self.metrics_["treatment/clean_precision"] = truly / flagged.sum() if flagged.any() else 0.0
            self.metrics_["treatment/clean_recall"] = truly / wrong.sum() if wrong.any() else 0.0

        if p.action == "drop":
            self.metrics_.update({"treatment/clean_removed": float(flagged.sum()), "treatment/clean_relabeled": 0.0})
            cause = f"clean {p.method}: dropped" + (f" (agreement < {p.min_agreement})" if p.method == "agreement" else "")
            changes = change_rows(flagged_tasks, self.name, labels.to_numpy()[flagged], None, cause)
            return keep_tasks(state, labels.index[~flagged]).with_changes(changes)

        assert suggested is not None
        relabel = flagged & (suggested != labels.to_numpy())
        new = labels.copy().astype(object)
        new.iloc[relabel] = suggested[relabel]
        new = new.infer_objects()
        self.metrics_.update({"treatment/clean_removed": 0.0, "treatment/clean_relabeled": float(relabel.sum())})
        changes = change_rows(
            labels.index[relabel], self.name, labels.to_numpy()[relabel], suggested[relabel],
            "clean cleanlab: relabelled to the out-of-fold prediction",
        )
        return state.evolve(labels=new, soft_labels=None).with_changes(changes)
