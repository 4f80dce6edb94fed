import numpy as np
import pandas as pd
import pytest

from smo_impact.treatments.aggregate import crowdkit_aggregate, majority_vote
from smo_impact.treatments.dawid_skene import dawid_skene


def _simulated(n_items=600, seed=0):
    """8 good raters (90% accurate), 4 spammers answering at random, 5 judgements per item."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_items) < 0.35).astype(int)
    accuracy = np.r_[np.full(8, 0.9), np.full(4, 0.5)]
    rows = []
    for i in range(n_items):
        for w in rng.choice(12, 5, replace=False):
            label = truth[i] if rng.random() < accuracy[w] else 1 - truth[i]
            rows.append((f"t{i:04d}", f"w{w:02d}", int(label)))
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), pd.Series(truth, index=[f"t{i:04d}" for i in range(n_items)])


def test_matches_crowdkit_dawid_skene():
    ann, _ = _simulated()
    from crowdkit.aggregation import DawidSkene

    ours = dawid_skene(ann, (0, 1), n_iter=100)
    reference = DawidSkene(n_iter=100).fit(ann.astype({"task": object, "worker": object}))
    theirs, probas = reference.labels_, reference.probas_
    agree = (ours.labels.reindex(theirs.index) == theirs).mean()
    assert agree >= 0.99
    assert np.abs(ours.probas.loc[probas.index, 1].to_numpy() - probas[1].to_numpy()).mean() < 0.02


def test_aggregate_step_uses_it():
    ann, _ = _simulated(seed=2)
    labels, probas, skills = crowdkit_aggregate(ann, "dawid_skene", 100, np.random.default_rng(0))
    direct = dawid_skene(ann, (0, 1))
    assert labels.equals(direct.labels) and skills.equals(direct.skills)


def test_beats_majority_vote_and_finds_spammers():
    ann, truth = _simulated(seed=1)
    ds = dawid_skene(ann, (0, 1))
    mv = majority_vote(ann, (0, 1), 1, "positive")
    assert (ds.labels == truth).mean() > (mv == truth).mean()
    skills = ds.skills.sort_values()
    assert set(skills.index[:4]) == {"w08", "w09", "w10", "w11"}  # the spammers have the lowest skill
    assert skills.iloc[:4].max() < 0.65 < skills.iloc[4:].min()


def test_outside_label_is_an_error():
    ann = pd.DataFrame({"task": ["a"], "worker": ["w"], "label": [3]})
    with pytest.raises(ValueError, match="outside the declared label set"):
        dawid_skene(ann, (0, 1))
