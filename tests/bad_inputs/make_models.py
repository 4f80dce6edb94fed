"""Writes data/three_class_model/: a tfidf_logreg folder as the model's save() writes it, whose head
was trained on 3 classes over the TF-IDF vocabulary of data/good.csv's training texts (binary data),
for model_rater_label_set_differs.yaml. Run from tests/bad_inputs/ to rebuild it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smo_impact.config import DatasetSpec
from smo_impact.data.loader import load_data
from smo_impact.models.tfidf_logreg import TfidfLogreg

if __name__ == "__main__":
    data = load_data(DatasetSpec(name="mine", path="data/good.csv", labels=[0, 1],
                                 column_map={"task": "item", "worker": "rater", "label": "answer"}))
    model = TfidfLogreg(TfidfLogreg.Params())
    features = model.featurizer().featurize(data)
    train = data.split("train")["task"]
    X = features.rows(train)
    y = np.arange(len(train)) % 3  # three classes: codes 0, 1, 2
    model.fit(X, y, seed=0).save(Path("data/three_class_model"))
