"""TF-IDF n-grams + logistic regression: the fast, strong baseline safety classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from smo_impact.data.schema import AnnotationSet
from smo_impact.models.features import Features


class TfidfFeaturizer:
    """Word n-gram TF-IDF, vocabulary fit on the training split's texts (labels unseen)."""

    def __init__(self, ngram_max: int, min_df: int, max_features: int | None, sublinear_tf: bool) -> None:
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf

    # scikit-learn is imported where it is used: `smo-impact validate` reads the Params only, and
    # with cached features a sweep's parent process never needs it (1 s of start-up; issue 16).
    def cache_key(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "featurizer": "tfidf",
            "ngram_max": self.ngram_max,
            "min_df": self.min_df,
            "max_features": self.max_features,
            "sublinear_tf": self.sublinear_tf,
            "sklearn": version("scikit-learn"),  # = sklearn.__version__
        }

    def vectorizer(self) -> TfidfVectorizer:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            ngram_range=(1, self.ngram_max),
            min_df=self.min_df,
            max_features=self.max_features,
            sublinear_tf=self.sublinear_tf,
            dtype=np.float32,
        )

    def featurize(self, dataset: AnnotationSet) -> Features:
        vectorizer = self.vectorizer().fit(dataset.split("train")["text"])
        matrix = vectorizer.transform(dataset.items["text"]).tocsr()
        return Features(matrix=matrix, tasks=pd.Index(dataset.items["task"]))


class TfidfLogreg:
    """Logistic regression on cached TF-IDF features; K classes: multinomial (scikit-learn's lbfgs)."""

    name: ClassVar[str] = "tfidf_logreg"
    multiclass: ClassVar[bool] = True  # trains on K class codes as well as on 0/1

    class Params(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")

        ngram_max: int = Field(2, ge=1, le=5, description="Word n-grams from 1 to ngram_max.")
        min_df: int = Field(2, ge=1, description="Ignore n-grams in fewer training texts.")
        max_features: int | None = Field(None, ge=1, description="Keep the most frequent n-grams.")
        sublinear_tf: bool = True
        C: float = Field(4.0, gt=0.0, description="Inverse regularisation strength.")
        class_weight: Literal["balanced"] | None = None
        max_iter: int = Field(2000, ge=10)

    def __init__(self, params: Params) -> None:
        self.params = params

    def featurizer(self) -> TfidfFeaturizer:
        p = self.params
        return TfidfFeaturizer(p.ngram_max, p.min_df, p.max_features, p.sublinear_tf)

    def fit(self, X: Any, y: np.ndarray, seed: int) -> TfidfLogreg:
        from sklearn.linear_model import LogisticRegression

        self.classifier_ = LogisticRegression(
            C=self.params.C,
            class_weight=self.params.class_weight,
            max_iter=self.params.max_iter,
            random_state=seed,
        ).fit(X, y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``self.classes_`` order."""
        return self.classifier_.predict_proba(X)

    @property
    def classes_(self) -> np.ndarray:
        return self.classifier_.classes_

    def save(self, directory: Path) -> None:
        """The classifier as skops (no pickle) plus the params of the TF-IDF features it reads;
        ``tracking.log_models`` decides whether a run keeps it (as an MLflow model with its vectorizer)."""
        import json

        import skops.io

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        skops.io.dump(self.classifier_, directory / "head.skops")
        (directory / "model.json").write_text(json.dumps({"name": self.name, "params": self.params.model_dump()}, indent=2))
