import numpy as np
import pandas as pd
import pytest

from smo_impact.quality.items import agreement_levels, item_difficulty


def test_item_difficulty_levels_and_entropy(toy_annotations):
    items = item_difficulty(toy_annotations, (0, 1))
    assert items.loc["t1", "level"] == "5/5" and items.loc["t1", "entropy"] == 0.0
    assert items.loc["t3", "level"] == "3/5" and items.loc["t4", "level"] == "3/5"
    assert items.loc["t5", "level"] == "4/5"
    # 3 vs 2 votes: -(0.6 log2 0.6 + 0.4 log2 0.4) = 0.97095
    assert items.loc["t3", "entropy"] == pytest.approx(0.970951, abs=1e-6)
    assert items.loc["t5", "agreement"] == pytest.approx(0.8)


def test_agreement_level_shares(toy_annotations):
    levels = agreement_levels(item_difficulty(toy_annotations, (0, 1)))
    assert levels["level"].tolist() == ["5/5", "4/5", "3/5"]
    assert levels["items"].tolist() == [2, 1, 2]
    assert levels["share"].tolist() == pytest.approx([0.4, 0.2, 0.4])


def test_contested_items_are_the_most_split_by_brute_force():
    import math
    from collections import Counter

    from smo_impact.quality.items import contested_items

    rng = np.random.default_rng(7)
    rows, texts = [], {}
    for i in range(60):
        task = f"t{i:02d}"
        texts[task] = f"text of {task}"
        lean = rng.random()
        for w in range(int(rng.integers(1, 7))):  # 1 to 6 judgements: entropy ties broken by count
            rows.append((task, f"w{w}", ["a", "b", "c"][int(rng.random() < lean) + int(rng.random() < 0.1)]))
    annotations = pd.DataFrame(rows, columns=["task", "worker", "label"])
    items = pd.DataFrame({"task": list(texts), "text": list(texts.values())})

    # Brute force: the entropy of each item's votes, written out.
    expected = []
    for task, group in annotations.groupby("task"):
        votes = Counter(group["label"])
        n = sum(votes.values())
        entropy = -sum(v / n * math.log2(v / n) for v in votes.values())
        if entropy > 0:
            expected.append((-round(entropy, 9), -n, task, votes))  # equal splits tie exactly
    expected.sort(key=lambda t: t[:3])
    table = contested_items(annotations, ["a", "b", "c"], items, top=8)

    assert list(table["task"]) == [t for _, _, t, _ in expected[:8]]
    assert list(table["entropy"]) == pytest.approx([-e for e, _, _, _ in expected[:8]])
    for row, (_, n, task, votes) in zip(table.itertuples(), expected):
        parsed = dict(part.split(": ") for part in row.votes.split(", "))
        assert {k: int(v) for k, v in parsed.items()} == dict(votes)
        assert row.judgements == -n and row.text == f"text of {task}"
        assert row.minority_share == pytest.approx(1 - max(votes.values()) / -n)
    unanimous = annotations.groupby("task")["label"].nunique().eq(1)
    assert not set(table["task"]) & set(unanimous[unanimous].index)
