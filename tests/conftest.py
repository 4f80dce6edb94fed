"""Shared fixtures: tiny generated annotation data and the real-data mirror (when present)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smo_impact.data.schema import AnnotationSet
from smo_impact.treatments.base import LabelState

REPO = Path(__file__).resolve().parent.parent
MIRROR = Path(os.environ.get("SMO_IMPACT_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature/data cache so tests never share disk state."""
    monkeypatch.setenv("SMO_IMPACT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def mirror(monkeypatch) -> Path:
    """The real-data mirror; tests that need it skip with a reason when it is absent."""
    if not (MIRROR / "lewidi-2023" / "MD-Agreement_train.json").is_file():
        pytest.skip(f"data mirror not found at {MIRROR} (set SMO_IMPACT_DATA_DIR to run this test)")
    monkeypatch.setenv("SMO_IMPACT_DATA_DIR", str(MIRROR))
    return MIRROR


@pytest.fixture
def toy_annotations() -> pd.DataFrame:
    """5 workers x 5 tasks with hand-checkable majorities.

    t1: 5x1 -> 1; t2: 5x0 -> 0; t3: 3x1 2x0 -> 1; t4: 2x1 3x0 -> 0; t5: 4x1 1x0 -> 1.
    """
    votes = {
        "t1": [1, 1, 1, 1, 1],
        "t2": [0, 0, 0, 0, 0],
        "t3": [1, 1, 1, 0, 0],
        "t4": [1, 1, 0, 0, 0],
        "t5": [1, 1, 1, 1, 0],
    }
    rows = [(t, f"w{i + 1}", lab) for t, labs in votes.items() for i, lab in enumerate(labs)]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def make_text_dataset(n_items: int = 400, workers_per_item: int = 3, seed: int = 0, name: str = "toy") -> AnnotationSet:
    """A generated, learnable dataset: positive items contain 'bad' words.

    Each item has a true label; raters agree with it 85% of the time.
    """
    rng = np.random.default_rng(seed)
    good = ["lovely", "sunny", "kind", "great", "thanks", "happy", "calm", "friendly"]
    bad = ["idiot", "stupid", "hate", "awful", "trash", "moron", "disgusting", "loser"]
    neutral = ["the", "a", "today", "people", "this", "weather", "game", "news", "city"]
    items, rows = [], []
    for i in range(n_items):
        truth = int(rng.random() < 0.4)
        words = list(rng.choice(neutral, 4)) + list(rng.choice(bad if truth else good, 2))
        rng.shuffle(words)
        split = "train" if i < int(n_items * 0.6) else ("dev" if i < int(n_items * 0.7) else "test")
        task = f"i{i}"
        items.append({"task": task, "text": " ".join(words), "split": split, "domain": ["a", "b"][i % 2], "truth": truth})
        for w in rng.choice(20, workers_per_item, replace=False):
            label = truth if rng.random() < 0.85 else 1 - truth
            rows.append((task, f"w{w}", label))
    return AnnotationSet(
        name=name,
        items=pd.DataFrame(items),
        annotations=pd.DataFrame(rows, columns=["task", "worker", "label"]),
        labels=(0, 1),
        positive_label=1,
        slice_columns=("domain",),
    )


@pytest.fixture
def text_dataset() -> AnnotationSet:
    return make_text_dataset()


def state_from_labels(labels: pd.Series, labels_set=(0, 1), positive=1) -> LabelState:
    """A LabelState whose aggregated labels are given (no judgements needed)."""
    items = pd.DataFrame({"task": labels.index, "text": "x", "split": "train"})
    annotations = pd.DataFrame({"task": labels.index, "worker": "w", "label": labels.to_numpy()})
    return LabelState(items=items, annotations=annotations, labels_set=labels_set, positive_label=positive, labels=labels)
