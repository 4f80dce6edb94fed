"""Benchmarks: reference pipelines, soft targets, suites, and the evaluation config."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from pydantic import Field

from smo_impact.config import EvaluationSpec, validate
from smo_impact.data.schema import AnnotationSet
from smo_impact.errors import ConfigError, DataError
from smo_impact.evaluation.benchmarks import build_benchmarks, score_benchmark, split_benchmark, with_suite_items
from smo_impact.treatments import TREATMENTS
from smo_impact.treatments.base import TreatmentParams
from tests.conftest import make_text_dataset


class KeepWorkers:
    """Test-only rater filter (not registered by the package): keep judgements of some workers."""

    name: ClassVar[str] = "keep_workers"

    class Params(TreatmentParams):
        workers: list[str] = Field(default_factory=list)

    def __init__(self, params):
        self.params = params

    def apply(self, state, rng):
        annotations = state.annotations[state.annotations["worker"].isin(self.params.workers)]
        self.metrics_ = {}
        return state.evolve(items=state.items[state.items["task"].isin(annotations["task"])], annotations=annotations)


@pytest.fixture
def keep_workers(monkeypatch):
    monkeypatch.setitem(TREATMENTS._items, "keep_workers", KeepWorkers)


def test_default_reference_is_majority_of_all_raters_with_vote_share(toy_annotations):
    items = pd.DataFrame({"task": [f"t{i}" for i in range(1, 6)], "text": "x", "split": "test", "g": list("aabbb")})
    data = AnnotationSet("toy", items, toy_annotations, slice_columns=("g",))
    bench = split_benchmark("test", data, "test")
    # t1: 5x1, t2: 5x0, t3: 3-2 -> 1, t4: 2-3 -> 0, t5: 4-1 -> 1
    assert bench.reference.tolist() == [1, 0, 1, 0, 1]
    assert bench.soft_target.tolist() == [1.0, 0.0, 0.6, 0.4, 0.8]
    assert bench.slice_columns == ("g",) and list(bench.items.columns) == ["task", "text", "g"]


def test_rater_group_view_is_the_group_majority(toy_annotations, keep_workers):
    items = pd.DataFrame({"task": [f"t{i}" for i in range(1, 6)], "text": "x", "split": "test"})
    data = AnnotationSet("toy", items, toy_annotations)
    steps = [{"keep_workers": {"workers": ["w4", "w5"]}}, {"aggregate": {"tie": "drop"}}]
    bench = split_benchmark("view", data, "test", steps)
    # w4/w5 votes: t1 1,1 -> 1; t2 0,0 -> 0; t3 0,0 -> 0; t4 0,0 -> 0; t5 1,0 -> tie, dropped
    assert bench.items["task"].tolist() == ["t1", "t2", "t3", "t4"]
    assert bench.reference.tolist() == [1, 0, 0, 0]
    assert bench.soft_target.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_reference_pipeline_without_aggregate_is_an_error(toy_annotations, keep_workers):
    items = pd.DataFrame({"task": [f"t{i}" for i in range(1, 6)], "text": "x", "split": "test"})
    data = AnnotationSet("toy", items, toy_annotations)
    with pytest.raises(DataError, match=r"reference pipeline \[keep_workers\] on split 'test' produced no labels"):
        split_benchmark("view", data, "test", [{"keep_workers": {"workers": ["w1"]}}])


def _suite() -> AnnotationSet:
    items = pd.DataFrame(
        {
            "task": ["1", "2", "3", "4"],
            "text": ["I hate idiot women", "women are lovely", "not an idiot", "kind people"],
            "split": "test",
            "functionality": ["derog_h", "ident_pos_nh", "negate_nh", "ident_pos_nh"],
            "target_ident": ["women", "women", None, None],
            "label_gold": ["hateful", "non-hateful", "non-hateful", "non-hateful"],
        }
    )
    annotations = pd.DataFrame({"task": ["1", "2", "3", "4"], "worker": "a1", "label": [1, 0, 0, 0]})
    return AnnotationSet("hatecheck", items, annotations)


def test_suite_benchmark_scores_gold_labels_per_functionality():
    data = make_text_dataset(50)
    spec = EvaluationSpec(benchmarks=[{"name": "hatecheck", "suite": "hatecheck"}], bootstrap=0)
    benches = build_benchmarks(data, spec, {"hatecheck": _suite()})
    suite = benches[1]
    assert suite.reference.tolist() == [1, 0, 0, 0]
    assert suite.items["task"].tolist()[0] == "suite:hatecheck:1"
    result = score_benchmark(suite, np.array([0.9, 0.2, 0.7, 0.1]), 0.5, np.random.default_rng(0), 0)
    m = result.metrics
    assert m["hatecheck/accuracy"] == 0.75 and m["hatecheck/functionality/negate_nh/accuracy"] == 0.0
    assert m["hatecheck/functionality/ident_pos_nh/accuracy"] == 1.0
    assert m["hatecheck/target/women/accuracy"] == 1.0
    assert result.tags["smo.worst_functionality.hatecheck"] == "negate_nh"
    assert result.artifacts["functional/hatecheck_failed_cases.parquet"]["text"].tolist() == ["not an idiot"]
    extended = with_suite_items(data, {"hatecheck": _suite()})
    assert len(extended.items) == 54 and (extended.items["split"] == "suite:hatecheck").sum() == 4


def test_score_benchmark_namespaces_metrics_with_intervals():
    data = make_text_dataset(200)
    bench = build_benchmarks(data, EvaluationSpec())[0]
    score = np.where(bench.reference == 1, 0.7, 0.3)
    score[:5] = 0.6  # a few mistakes
    result = score_benchmark(bench, score, 0.5, np.random.default_rng(0), 200)
    m = result.metrics
    assert m["test/n"] == len(bench.reference)
    assert m["test/macro_f1_ci_low"] <= m["test/macro_f1"] <= m["test/macro_f1_ci_high"]
    assert "test/slice/domain/a/accuracy" in m and "test/soft_cross_entropy" in m
    assert result.predictions["predicted"].tolist() == (score >= 0.5).astype(int).tolist()


def _raw(evaluation):
    return {
        "name": "x",
        "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"]},
        "evaluation": evaluation,
    }


def test_evaluation_config_problems_are_all_reported():
    evaluation = {
        "benchmarks": [
            {"name": "test", "split": "dev"},
            {"name": "view", "split": "dev", "reference": [{"agregate": {}}]},
            {"name": "hc", "suite": "hatecheck"},
        ],
        "gates": {"max_drop": {"tset/recall": 0.02}},
    }
    with pytest.raises(ConfigError) as err:
        validate(_raw(evaluation))
    text = str(err.value)
    assert "evaluation.benchmarks[0].name: namespace 'test' is taken" in text
    assert "evaluation.benchmarks[1].reference[0]: Unknown treatment 'agregate'. Did you mean 'aggregate'?" in text
    assert "evaluation.gates.max_drop.tset/recall: name a benchmark metric '<namespace>/<metric>'" in text


def test_benchmark_needs_split_or_suite_and_gates_are_non_negative():
    with pytest.raises(ConfigError, match=r"benchmark 'b' needs exactly one of split \(test, dev\) or suite"):
        validate(_raw({"benchmarks": [{"name": "b"}]}))
    with pytest.raises(ConfigError, match=r"max_drop.test/recall must be >= 0 \(a tolerated drop\), got -0.1"):
        validate(_raw({"gates": {"max_drop": {"test/recall": -0.1}}}))
    with pytest.raises(ConfigError, match=r"evaluation.benchmarks\[0\]: benchmark .hc.: a suite is scored against its gold labels; remove reference"):
        validate(_raw({"benchmarks": [{"name": "hc", "suite": "hatecheck", "reference": ["aggregate"]}]}))
