from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from smo_impact.treatments.base import LabelState
from smo_impact.treatments.guideline import Guideline

GUIDELINES = Path(__file__).resolve().parents[2] / "configs" / "treatments" / "guidelines"


def _guideline(file: str) -> Guideline:
    block = yaml.safe_load((GUIDELINES / file).read_text())
    return Guideline(Guideline.Params.model_validate(block["guideline"]))


@pytest.fixture
def convabuse_table() -> LabelState:
    """Six ConvAbuse-like judgements: severity and target per rater."""
    ann = pd.DataFrame(
        {
            "task": ["a", "a", "b", "b", "c", "c"],
            "worker": ["r1", "r2", "r1", "r2", "r1", "r2"],
            "severity": [-1, 0, -3, -2, -1, 1],
            "target": [None, None, "individual", "system+individual", "system", None],
        }
    )
    ann["label"] = (ann["severity"] <= -1).astype(int)  # the dataset's default binary rule
    items = pd.DataFrame({"task": ["a", "b", "c"], "text": "x", "split": "train"})
    return LabelState(items=items, annotations=ann, labels_set=(0, 1), positive_label=1)


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        # v1: severity <= -1 -> 1, ambiguous 0 -> 0
        ("convabuse_v1.yaml", [1, 0, 1, 1, 1, 0]),
        # v2: only <= -2 is abuse: mild (-1) rows become 0
        ("convabuse_v2.yaml", [0, 0, 1, 1, 0, 0]),
        # v3: as v1, but target exactly 'system' is not abuse (row 5); 'system+individual' still is
        ("convabuse_v3.yaml", [1, 0, 1, 1, 0, 0]),
    ],
)
def test_convabuse_guidelines_hand_computed(convabuse_table, file, expected):
    step = _guideline(file)
    out = step.apply(convabuse_table, np.random.default_rng(0))
    assert out.annotations["label"].tolist() == expected
    assert out.annotations["raw_label"].tolist() == [1, 0, 1, 1, 1, 0]
    # change record: exactly the judgements whose label moved, naming rule and rater
    moved = [i for i, (a, b) in enumerate(zip([1, 0, 1, 1, 1, 0], expected)) if a != b]
    assert len(out.changes) == len(moved)
    assert step.metrics_["treatment/guideline_judgements_relabelled"] == len(moved)
    if file == "convabuse_v3.yaml":
        assert out.changes["cause"].tolist() == ["guideline v3 rule 0 (abuse aimed only at the system is allowed)"]
        assert out.changes["worker"].tolist() == ["r1"]


def test_hs_brexit_guidelines_use_the_extra_answers():
    ann = pd.DataFrame({"task": ["a", "a", "b"], "worker": ["Ann1", "Ann4", "Ann1"], "label": [0, 0, 1],
                        "offensive": [1, 0, 0], "aggressive": [0, 1, 0]})
    items = pd.DataFrame({"task": ["a", "b"], "text": "x", "split": "train"})
    state = LabelState(items=items, annotations=ann, labels_set=(0, 1), positive_label=1)
    results = {f: _guideline(f).apply(state, np.random.default_rng(0)).annotations["label"].tolist()
               for f in ("hs_brexit_hate.yaml", "hs_brexit_hate_or_offensive.yaml", "hs_brexit_hate_or_aggressive.yaml")}
    assert results == {
        "hs_brexit_hate.yaml": [0, 0, 1],
        "hs_brexit_hate_or_offensive.yaml": [1, 0, 1],
        "hs_brexit_hate_or_aggressive.yaml": [0, 1, 1],
    }


def test_scale_to_binary_sets_the_label_set():
    ann = pd.DataFrame({"task": ["a", "b", "c"], "worker": "w", "label": [5, 3, 1]})
    items = pd.DataFrame({"task": ["a", "b", "c"], "text": "x", "split": "train"})
    state = LabelState(items=items, annotations=ann, labels_set=(1, 2, 3, 4, 5), positive_label=5)
    params = {"version": "top2", "labels": ["ok", "harmful"], "positive_label": "harmful",
              "rules": [{"when": {"label": {"ge": 4}}, "label": "harmful"}, {"when": {}, "label": "ok"}]}
    out = Guideline(Guideline.Params.model_validate(params)).apply(state, np.random.default_rng(0))
    assert out.labels_set == ("ok", "harmful") and out.positive_label == "harmful"
    assert out.annotations["label"].tolist() == ["harmful", "ok", "ok"]


def test_unmatched_and_missing_columns_are_clear_errors(convabuse_table):
    params = {"version": "v9", "rules": [{"when": {"severity": {"le": -2}}, "label": 1}]}
    with pytest.raises(ValueError, match=r"guideline v9: no rule matches 4 judgement\(s\), e.g. task 'a' worker 'r1'"):
        Guideline(Guideline.Params.model_validate(params)).apply(convabuse_table, np.random.default_rng(0))
    out = Guideline(Guideline.Params.model_validate({**params, "unmatched": "drop"})).apply(convabuse_table, np.random.default_rng(0))
    assert list(out.items["task"]) == ["b"]  # a and c lose all their judgements
    bad = {"version": "v9", "rules": [{"when": {"sevrity": 1}, "label": 1}]}
    with pytest.raises(ValueError, match="rule column\\(s\\) sevrity not in the annotations; found: task, worker, severity"):
        Guideline(Guideline.Params.model_validate(bad)).apply(convabuse_table, np.random.default_rng(0))
    with pytest.raises(ValidationError, match="unknown operator\\(s\\) \\['lte'\\]; operators: eq, ne, lt, le"):
        Guideline.Params.model_validate({"version": "x", "rules": [{"when": {"severity": {"lte": 1}}, "label": 1}]})
    with pytest.raises(ValidationError, match="rules\\[0\\].label 2 is not in labels \\[0, 1\\]"):
        Guideline.Params.model_validate({"version": "x", "rules": [{"when": {}, "label": 2}]})


def test_select_judgements_made_under_a_version(convabuse_table):
    state = convabuse_table.evolve(annotations=convabuse_table.annotations.assign(guideline=["v1", "v2"] * 3))
    params = {"version": "v2", "select": ["v2"], "rules": [{"when": {}, "label": 0}]}
    out = Guideline(Guideline.Params.model_validate(params)).apply(state, np.random.default_rng(0))
    assert out.annotations["worker"].unique().tolist() == ["r2"]
    with pytest.raises(ValueError, match="annotations have no 'round' column"):
        Guideline(Guideline.Params.model_validate({**params, "version_column": "round"})).apply(state, np.random.default_rng(0))


def test_a_guideline_to_another_label_set_records_every_judgement_by_rule():
    # severity 1 -> label 1 reads the same but means something else: still a change, with its rule
    ann = pd.DataFrame({"task": ["a", "a", "b", "b"], "worker": ["r1", "r2", "r1", "r2"], "label": [1, -2, 0, 9]})
    state = LabelState(items=pd.DataFrame({"task": ["a", "b"], "text": "x", "split": "train"}), annotations=ann,
                       labels_set=(1, 0, -1, -2, -3, 9), positive_label=-3)
    step = Guideline(Guideline.Params.model_validate({"version": "w", "unmatched": "drop", "rules": [
        {"name": "abuse", "when": {"label": {"le": -1}}, "label": 1},
        {"name": "rest", "when": {"label": {"in": [0, 1]}}, "label": 1}]}))
    out = step.apply(state, np.random.default_rng(0))
    assert step.metrics_["treatment/guideline_judgements_relabelled"] == 2  # 1 -> 1 reads the same
    record = out.changes.set_index("worker")
    assert record.loc[record["label_after"].notna(), "cause"].tolist() == [
        "guideline w rule 1 (rest)", "guideline w rule 0 (abuse)", "guideline w rule 1 (rest)"]
    dropped = record[record["label_after"].isna()]  # severity 9: no rule matches
    assert dropped.index.tolist() == ["r2"] and dropped["cause"].tolist() == ["guideline w: no rule matches"]
