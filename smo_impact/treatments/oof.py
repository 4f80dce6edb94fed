"""Out-of-fold predicted probabilities from a cheap model, for steps that need a model's view.

Cleaning (cleanlab's ``find_label_issues``) and uncertainty-dependent noise need, for every
training item, P(label) from a model that never saw that item's label. With cached run features
(``state.features``) a logistic regression is fit per fold on them; otherwise TF-IDF + logistic
regression on the item texts. Folds are shuffled with a seed drawn from the step's generator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smo_impact.treatments.base import LabelState


def out_of_fold_proba(state: LabelState, labels: pd.Series, rng: np.random.Generator, folds: int = 5) -> np.ndarray:
    """P(label) per task of ``labels`` (rows in ``labels`` order, columns in ``state.labels_set`` order).

    Raises:
        ValueError: when a class has fewer examples than ``folds``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    classes = list(state.labels_set)
    y = pd.Index(classes).get_indexer(labels.to_numpy())
    present, counts = np.unique(y, return_counts=True)
    if counts.min() < folds:
        raise ValueError(
            f"out-of-fold probabilities need at least {folds} items per class; "
            f"got {dict(zip([classes[i] for i in present], counts.tolist()))}"
        )
    if state.features is not None:
        X = state.features.rows(labels.index)
        model = LogisticRegression(C=4.0, max_iter=2000)
    else:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline

        texts = state.items.set_index("task")["text"].reindex(labels.index).fillna("")
        X = texts.to_numpy()
        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=4.0, max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(rng.integers(0, 2**31 - 1)))
    proba = cross_val_predict(model, X, y, cv=cv, method="predict_proba")
    # cross_val_predict orders columns by the classes present; map them onto the declared set.
    out = np.zeros((len(y), len(classes)))
    out[:, present] = proba
    return out
