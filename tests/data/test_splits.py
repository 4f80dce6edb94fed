"""dataset.split: deterministic, stratified, grouped splits for data without a split column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from smo_impact.config import DatasetSpec
from smo_impact.data.loader import load_data
from smo_impact.data.splits import quotas
from smo_impact.errors import DataError

LABELS = ["neither", "offensive", "hate"]
RATIOS = {"train": 0.8, "dev": 0.1, "test": 0.1}


def count_csv(path, n_items: int = 300, seed: int = 0) -> pd.DataFrame:
    """A Davidson-style crowd file: one row per tweet, the votes per class, no split column."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, n_items, p=[0.6, 0.3, 0.1])
    votes = np.array([rng.multinomial(3, np.where(np.arange(3) == t, 0.8, 0.1)) for t in truth])
    frame = pd.DataFrame({
        "id": [f"tw{i:04d}" for i in range(n_items)],
        "tweet": [f"tweet number {i} about {LABELS[t]}" for i, t in enumerate(truth)],
        "author": [f"u{i // 4}" for i in range(n_items)],  # 4 tweets per author
        "neither": votes[:, 0], "offensive": votes[:, 1], "hate": votes[:, 2],
    })  # fmt: skip
    frame.to_csv(path, index=False)
    return frame


def count_spec(path, **split) -> DatasetSpec:
    return DatasetSpec(
        name="tweets", path=str(path), layout="count", labels=LABELS, column_map={"task": "id", "text": "tweet"},
        item_columns=["author"], split={**RATIOS, **split}, min_rater_judgements=1,
    )  # fmt: skip


def test_quotas_share_n_within_one_item_of_each_ratio():
    for n in range(0, 60):
        for ratios in ([0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.9, 0.0, 0.1]):
            q = quotas(n, np.array(ratios))
            assert q.sum() == n and (np.abs(q - n * np.array(ratios)) < 1).all()
            assert q[np.array(ratios) == 0].sum() == 0


def test_a_three_class_count_file_without_splits_gets_stratified_splits(tmp_path):
    """The issue's done-when: a 3-class count file with no split column loads as K classes with
    splits whose per-class sizes are within one item of the requested ratios."""
    raw = count_csv(tmp_path / "tweets.csv")
    data = load_data(count_spec(tmp_path / "tweets.csv"))
    assert data.labels == tuple(LABELS) and set(data.items["split"]) == {"train", "dev", "test"}
    # The majority label from the raw vote columns (ties: the class declared first), not the loader's.
    majority = pd.Series(np.array(LABELS)[raw[LABELS].to_numpy().argmax(axis=1)], index=raw["id"])
    split = data.items.set_index("task")["split"]
    for label in LABELS:
        members = majority[majority == label].index
        for name, ratio in RATIOS.items():
            got = int((split.loc[members] == name).sum())
            assert abs(got - ratio * len(members)) <= 1, (label, name, got, len(members))
    counts = data.vote_counts()
    assert counts.loc["tw0000"].tolist() == raw.loc[0, LABELS].tolist()


def test_splits_are_deterministic_by_seed_and_independent_of_row_order(tmp_path):
    raw = count_csv(tmp_path / "tweets.csv")
    first = load_data(count_spec(tmp_path / "tweets.csv")).items.set_index("task")["split"]
    again = load_data(count_spec(tmp_path / "tweets.csv")).items.set_index("task")["split"]
    assert first.to_dict() == again.to_dict()
    raw.sample(frac=1.0, random_state=3).to_csv(tmp_path / "shuffled.csv", index=False)
    shuffled = load_data(count_spec(tmp_path / "shuffled.csv")).items.set_index("task")["split"]
    assert shuffled.to_dict() == first.to_dict()
    other = load_data(count_spec(tmp_path / "tweets.csv", seed=1)).items.set_index("task")["split"]
    assert other.to_dict() != first.to_dict()
    assert (other.value_counts() - first.value_counts()).abs().max() <= 3  # same sizes, other items


def test_the_split_spec_is_part_of_the_data_digest(tmp_path):
    count_csv(tmp_path / "tweets.csv")
    digests = {
        load_data(count_spec(tmp_path / "tweets.csv", **extra)).digest()
        for extra in ({}, {"seed": 1}, {"stratify": None}, {"train": 0.7, "dev": 0.2})
    }
    assert len(digests) == 4
    assert load_data(count_spec(tmp_path / "tweets.csv")).split_spec.startswith('{"train":0.8,"dev":0.1,"test":0.1,')


def test_a_group_stays_in_one_split(tmp_path):
    count_csv(tmp_path / "tweets.csv", n_items=400)
    data = load_data(count_spec(tmp_path / "tweets.csv", group="author"))
    per_author = data.items.groupby("author")["split"].nunique()
    assert (per_author == 1).all() and len(per_author) == 100
    shares = data.items["split"].value_counts(normalize=True)
    for name, ratio in RATIOS.items():
        assert abs(shares[name] - ratio) < 0.03  # groups of 4: close to, not exactly, the ratios


def test_items_with_the_same_text_stay_in_one_split(tmp_path):
    raw = count_csv(tmp_path / "tweets.csv", n_items=200)
    raw.loc[raw.index % 10 == 0, "tweet"] = "RT the same tweet"  # 20 copies
    raw.loc[raw.index % 10 == 1, "tweet"] = "  rt THE same   tweet "  # 20 more, case and spaces aside
    raw.to_csv(tmp_path / "tweets.csv", index=False)
    data = load_data(count_spec(tmp_path / "tweets.csv", stratify=None))  # leakage: error (the default) passes
    copies = data.items[data.items["text"].str.lower().str.split().str.join(" ") == "rt the same tweet"]
    assert len(copies) == 40 and copies["split"].nunique() == 1


def test_stratify_on_an_item_column(tmp_path):
    raw = count_csv(tmp_path / "tweets.csv")
    raw["lang"] = np.where(raw.index % 3 == 0, "de", "en")
    raw.to_csv(tmp_path / "tweets.csv", index=False)
    spec = count_spec(tmp_path / "tweets.csv", stratify="lang").model_copy(update={"item_columns": ["author", "lang"]})
    items = load_data(spec).items
    for lang, group in items.groupby("lang"):
        for name, ratio in RATIOS.items():
            assert abs((group["split"] == name).sum() - ratio * len(group)) <= 1, (lang, name)


def test_long_file_without_a_split_column(tmp_path):
    rows = [(f"i{i}", f"r{r}", ("yes" if (i + r) % 4 else "no"), f"text {i}") for i in range(50) for r in range(3)]
    pd.DataFrame(rows, columns=["task", "worker", "label", "text"]).to_csv(tmp_path / "long.csv", index=False)
    spec = DatasetSpec(name="long", path=str(tmp_path / "long.csv"), labels=["no", "yes"], split={"train": 0.6, "dev": 0.0, "test": 0.4})
    items = load_data(spec).items
    assert set(items["split"]) == {"train", "test"} and (items["split"] == "test").sum() == 20


# -- bad input --------------------------------------------------------------------------------------
def test_ratios_that_do_not_sum_to_one_are_a_config_error():
    with pytest.raises(ValidationError, match=r"the split ratios must sum to 1: train 0.8 \+ dev 0.1 \+ test 0.2 = 1.1; "
                                              r"e.g. \{train: 0.8, dev: 0.1, test: 0.1\}"):
        DatasetSpec(name="x", path="x.csv", labels=[0, 1], split={"train": 0.8, "dev": 0.1, "test": 0.2})
    with pytest.raises(ValidationError, match="train must be above 0"):
        DatasetSpec(name="x", path="x.csv", labels=[0, 1], split={"train": 0.0, "dev": 0.5, "test": 0.5})
    with pytest.raises(ValidationError, match="split only appl"):
        DatasetSpec(name="md-agreement", split={})


def test_a_class_too_rare_to_split_names_the_class_and_the_fix(tmp_path):
    raw = count_csv(tmp_path / "tweets.csv", n_items=60)
    raw[LABELS] = [3, 0, 0]
    raw.loc[[5, 17, 40], LABELS] = [0, 0, 3]  # three 'hate' tweets cannot fill train, dev and test at 0.8/0.1/0.1
    raw.to_csv(tmp_path / "tweets.csv", index=False)
    with pytest.raises(DataError) as error:
        load_data(count_spec(tmp_path / "tweets.csv"))
    assert str(error.value) == (
        "tweets.csv: dataset.split.stratify: majority label 'hate' has 3 item(s), too few to put one in each of "
        "train, dev, test at 0.8/0.1/0.1 (dev and test would get none); merge it with another class, drop those items "
        "(dataset.where), or set dataset.split.stratify: null"
    )
    load_data(count_spec(tmp_path / "tweets.csv", stratify=None))  # unstratified, 60 items split fine


def test_too_few_items_or_groups_for_every_split(tmp_path):
    count_csv(tmp_path / "tweets.csv", n_items=12)  # 3 authors of 4 tweets
    with pytest.raises(DataError, match=r"tweets.csv: dataset.split: 12 item\(s\) in 3 group\(s\) \(dataset.split.group, and "
                                        r"items sharing a text\) are too few to put one in each of train, dev, test"):
        load_data(count_spec(tmp_path / "tweets.csv", stratify=None, group="author", train=0.9, dev=0.05, test=0.05))


def test_missing_columns_and_a_split_column_already_there(tmp_path):
    raw = count_csv(tmp_path / "tweets.csv")
    with pytest.raises(DataError, match="tweets.csv: dataset.split.group names column 'conversation', which is not in the data; "
                                        "found: author, label, task, text, worker; or set group: null"):
        load_data(count_spec(tmp_path / "tweets.csv", group="conversation"))
    with pytest.raises(DataError, match="dataset.split.stratify names column 'lang', which is not in the data"):
        load_data(count_spec(tmp_path / "tweets.csv", stratify="lang"))
    raw.assign(split="train").to_csv(tmp_path / "with_split.csv", index=False)
    with pytest.raises(DataError, match="with_split.csv: the data has a 'split' column and dataset.split asks to make splits"):
        load_data(count_spec(tmp_path / "with_split.csv"))
    no_split = DatasetSpec(name="t", path=str(tmp_path / "tweets.csv"), layout="count", labels=LABELS, column_map={"task": "id", "text": "tweet"})
    with pytest.raises(DataError, match=r"required column\(s\) 'split' missing; .*; data without splits can get them with "
                                        r"dataset.split: \{train: 0.8, dev: 0.1, test: 0.1\}"):
        load_data(no_split)
