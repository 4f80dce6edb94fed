"""Treatments on the real datasets of the mirror (skipped without it)."""

import numpy as np
import pytest

from smo_impact.config import DatasetSpec
from smo_impact.data.loader import load_data
from smo_impact.treatments.base import LabelState
from smo_impact.treatments.rater_pool import RaterPool
from tests.treatments.test_guideline import _guideline

pytestmark = pytest.mark.integration


def _train_state(name: str) -> LabelState:
    data = load_data(DatasetSpec(name=name))
    return LabelState(items=data.split("train"), annotations=data.split_annotations("train"),
                      labels_set=tuple(data.labels), positive_label=data.positive_label, workers=data.workers)


def test_convabuse_v1_reproduces_the_default_binary_rule_and_v2_v3_only_remove_abuse(mirror):
    state = _train_state("convabuse")
    v1 = _guideline("convabuse_v1.yaml").apply(state, np.random.default_rng(0))
    assert (v1.annotations["label"].to_numpy() == state.annotations["label"].to_numpy()).all()
    assert v1.changes.empty
    for file in ("convabuse_v2.yaml", "convabuse_v3.yaml"):
        out = _guideline(file).apply(state, np.random.default_rng(0))
        assert len(out.annotations) == len(state.annotations)  # every severity answer is covered
        assert ((out.annotations["label"] == 1) <= (v1.annotations["label"] == 1)).all()
        assert (out.changes["label_before"] == 1).all() and (out.changes["label_after"] == 0).all()


@pytest.mark.parametrize(("name", "value", "raters"), [("hs-brexit", "target", 3), ("armis", "Conservative_Male", 1)])
def test_rater_groups_from_the_workers_table(mirror, name, value, raters):
    state = _train_state(name)
    step = RaterPool(RaterPool.Params(by="attribute", column="group", values=[value]))
    out = step.apply(state, np.random.default_rng(0))
    assert out.annotations["worker"].nunique() == raters
    assert step.metrics_["treatment/pool_items"] == len(out.items) <= len(state.items)
