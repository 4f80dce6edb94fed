"""Issue 14's done-when, as a new user would do it: a 3-class crowd corpus in the count layout
(one row per item, a vote-count column per label, no split column) runs as a 3-class experiment
from a config file alone (`smo-impact run`), and the per-class figures it logs match scikit-learn
on the same test items.

The references share no code with the package: the majority label is recomputed from the CSV's
vote columns with pandas, and precision/recall/F1 come from scikit-learn on the logged predictions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from smo_impact.tracking.reader import MlflowReader

REPO = Path(__file__).resolve().parents[2]
LABELS = ["neither", "offensive", "hate"]
WORDS = {
    "neither": ["lovely", "sunny", "kind", "great", "thanks", "happy", "calm", "friendly"],
    "offensive": ["idiot", "stupid", "awful", "trash", "moron", "loser", "dumb", "clown"],
    "hate": ["vermin", "subhuman", "exterminate", "deport", "infest", "parasites", "savages", "plague"],
}


def _write_counts(path: Path, n_items: int = 600, seed: int = 0) -> pd.DataFrame:
    """Tweets with class words, 3 votes each (80% for the true class), 2 tweets per author
    (some items get one vote per label: a three-way tie)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        truth = int(rng.choice(3, p=[0.5, 0.3, 0.2]))
        words = list(rng.choice(["the", "a", "today", "people", "game", "news"], 4)) + list(rng.choice(WORDS[LABELS[truth]], 2))
        votes = np.zeros(3, int)
        for _ in range(3):
            votes[truth if rng.random() < 0.8 else int(rng.choice([k for k in range(3) if k != truth]))] += 1
        rows.append({"id": f"t{i:04d}", "tweet": " ".join(words), "hate_votes": votes[2],
                     "offensive_votes": votes[1], "neither_votes": votes[0], "author": f"u{i // 2}"})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False)
    return frame


def test_a_three_class_count_file_without_splits_runs_from_a_config_and_matches_sklearn(tmp_path):
    counts = _write_counts(tmp_path / "tweets_counts.csv")
    config = tmp_path / "experiment.yaml"
    config.write_text(f"""
name: byo_counts
dataset:
  from: {REPO / 'configs' / 'datasets' / 'own_count_csv.yaml'}
  path: {tmp_path / 'tweets_counts.csv'}
arms:
  control: [aggregate]
  confused:
    - aggregate
    - noise: {{transitions: {{offensive: {{hate: 0.4}}, hate: {{offensive: 0.4}}}}}}
seeds: [0]
model: {{name: tfidf_logreg, params: {{min_df: 1}}}}
evaluation: {{bootstrap: 100}}
tracking: {{uri: sqlite:///{tmp_path / 'mlflow.db'}}}
""")
    done = subprocess.run([str(Path(sys.executable).parent / "smo-impact"), "run", str(config)], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(os.environ), timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]

    reader = MlflowReader(f"sqlite:///{tmp_path / 'mlflow.db'}")
    stored = reader.load("byo_counts")
    assert {r.tags["smo.arm"] for r in stored.children} == {"control", "confused"}
    for run in stored.children:
        predictions = reader.load_frame(run.run_id, "predictions/test.parquet")
        # The test split was made by dataset.split: about 10% of the items, one author per split.
        assert 0.07 * len(counts) <= len(predictions) <= 0.13 * len(counts)
        # Each author's two tweets stay in one split, so every test author has both in the test split.
        authors = counts.set_index("id").loc[predictions["task"], "author"]
        assert (authors.value_counts() == 2).all()
        # The reference is the majority of each item's votes, recomputed from the CSV; the
        # documented tie rule (tie: positive) gives a tie to the most harmful tied label.
        votes = counts.set_index("id").loc[predictions["task"], ["hate_votes", "offensive_votes", "neither_votes"]]
        majority = np.array(LABELS[::-1])[votes.to_numpy().argmax(axis=1)]  # argmax takes the first maximum
        assert (votes.to_numpy() == 1).all(axis=1).any()  # the case is covered
        assert list(predictions["reference_label"]) == list(majority)
        y, pred = predictions["reference_label"].to_numpy(), predictions["predicted_label"].to_numpy()
        assert set(pred) <= set(LABELS) and len(set(pred)) == 3  # a 3-class model, not hate-vs-rest
        precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=LABELS, zero_division=0)
        metrics = run.metrics
        for k, label in enumerate(LABELS):
            assert metrics[f"test/class/{label}/precision"] == pytest.approx(precision[k], abs=1e-9)
            assert metrics[f"test/class/{label}/recall"] == pytest.approx(recall[k], abs=1e-9)
            assert metrics[f"test/class/{label}/f1"] == pytest.approx(f1[k], abs=1e-9)
            assert metrics[f"test/class/{label}/n"] == support[k]
        assert metrics["test/macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-9)
        assert metrics["test/weighted_f1"] == pytest.approx(f1_score(y, pred, average="weighted"), abs=1e-9)
    control = next(r for r in stored.children if r.tags["smo.arm"] == "control")
    assert control.metrics["test/macro_f1"] > 0.6  # the class words are learnable
