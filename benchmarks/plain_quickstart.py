"""The quickstart as a plain script would do it: no framework, no tracking, no caching.

For each of the quickstart's 15 runs (control + 4 noise rates, 3 seeds): majority vote of the
training judgements (ties positive), flip a share of the labels, fit TF-IDF (1-2-grams, min_df 2,
sublinear tf) and logistic regression (C 4) from scratch, and score macro-F1 and ROC-AUC on the
test split against its majority label. Same featurizer and model settings as
configs/models/tfidf_logreg.yaml. It reads the LeWiDi JSON files with the standard library, as a
user's script would. The baseline of benchmarks/bench_end_to_end.py.

    SMO_IMPACT_DATA_DIR=../shared/data python benchmarks/plain_quickstart.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

RATES = (0.0, 0.1, 0.2, 0.3, 0.4)
# The quickstart's seeds; $PLAIN_SEEDS=N runs seeds 0..N-1 (bench_end_to_end.py --seeds N).
SEEDS = tuple(range(int(os.environ.get("PLAIN_SEEDS", "3"))))


def read_split(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts and majority labels (ties -> 1) of one LeWiDi MD-Agreement split."""
    data = json.loads(path.read_text(encoding="utf-8"))
    texts, labels = [], []
    for item in data.values():
        votes = [int(v) for v in str(item["annotations"]).split(",") if v.strip() != ""]
        texts.append(item["text"])
        labels.append(int(2 * sum(votes) >= len(votes)))
    return texts, np.array(labels)


def main() -> None:
    root = Path(os.environ.get("SMO_IMPACT_DATA_DIR", "../shared/data")) / "lewidi-2023"
    train_texts, train_y = read_split(root / "MD-Agreement_train.json")
    test_texts, test_y = read_split(root / "MD-Agreement_test.json")
    for rate in RATES:
        for seed in SEEDS:
            rng = np.random.default_rng(seed)
            y = np.where(rng.random(len(train_y)) < rate, 1 - train_y, train_y)
            vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32)
            X = vectorizer.fit_transform(train_texts)
            model = LogisticRegression(C=4.0, max_iter=2000, random_state=seed).fit(X, y)
            score = model.predict_proba(vectorizer.transform(test_texts))[:, 1]
            f1 = f1_score(test_y, score >= 0.5, average="macro")
            auc = roc_auc_score(test_y, score)
            print(f"rate={rate} seed={seed} macro_f1={f1:.3f} roc_auc={auc:.3f}")


if __name__ == "__main__":
    main()
