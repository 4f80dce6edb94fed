"""Benchmarks built from the real data mirror: HateCheck cases and MD-Agreement's reference."""

from __future__ import annotations

import numpy as np
import pytest

from smo_impact.config import EvaluationSpec
from smo_impact.data.catalog import load_dataset
from smo_impact.evaluation.benchmarks import build_benchmarks, score_benchmark, suite_benchmark
from smo_impact.treatments.aggregate import majority_vote
from tests.conftest import REPO


@pytest.mark.integration
def test_hatecheck_suite_from_the_catalog(mirror):
    bench = suite_benchmark("hatecheck", load_dataset("hatecheck"))
    # HateCheck's published counts (Röttger et al. 2021, arXiv:2012.15606): 3,728 cases in 29
    # functionalities, 2,563 hateful and 1,165 non-hateful; 173 counter_quote_nh rows in the
    # released test_suite_cases.csv.
    assert len(bench.items) == 3728
    assert bench.items["functionality"].nunique() == 29
    assert int(bench.reference.sum()) == 2563
    assert bench.items.loc[bench.items["functionality"] == "counter_quote_nh", "task"].size == 173
    # A model that flags every case passes exactly the hateful ones.
    result = score_benchmark(bench, np.ones(3728), 0.5, np.random.default_rng(0), 0)
    assert result.metrics["hatecheck/accuracy"] == pytest.approx(2563 / 3728)
    assert result.metrics["hatecheck/accuracy_non_hateful"] == 0.0
    assert result.metrics["hatecheck/functionality/derog_neg_emote_h/accuracy"] == 1.0
    assert len(result.artifacts["functional/hatecheck_failed_cases.parquet"]) == 1165


@pytest.mark.integration
def test_md_agreement_primary_reference_is_the_majority_of_all_raters(mirror):
    data = load_dataset("md-agreement")
    bench = build_benchmarks(data, EvaluationSpec())[0]
    test_annotations = data.split_annotations("test")
    majority = majority_vote(test_annotations, data.labels, data.positive_label, "positive")
    assert len(bench.items) == 3057
    assert bench.reference.tolist() == (majority.reindex(bench.items["task"]).to_numpy() == 1).astype(int).tolist()
    assert bench.slice_columns == ("domain",)
    assert set(np.round(bench.soft_target * 5, 6)) <= {0, 1, 2, 3, 4, 5}  # five raters per tweet


@pytest.mark.integration
def test_hs_brexit_target_group_view_is_that_groups_majority(mirror):
    data = load_dataset("hs-brexit")
    spec = EvaluationSpec(
        benchmarks=[{
            "name": "view_target_group",
            "split": "test",
            "reference": [{"rater_pool": {"by": "attribute", "column": "group", "values": ["target"]}}, "aggregate"],
        }],
        bootstrap=0,
    )
    view = build_benchmarks(data, spec)[1]
    target = data.workers.loc[data.workers["group"] == "target", "worker"]
    annotations = data.split_annotations("test")
    by_hand = majority_vote(annotations[annotations["worker"].isin(target)], data.labels, 1, "positive")
    assert len(target) == 3 and len(view.items) == 168
    assert view.reference.tolist() == by_hand.reindex(view.items["task"]).astype(int).tolist()
    all_raters = build_benchmarks(data, spec)[0]
    assert view.reference.sum() != all_raters.reference.sum()  # the group sees more (or less) hate


@pytest.mark.integration
def test_hs_brexit_reference_under_another_guideline(mirror):
    """A reference guideline is a pipeline step too: 'hate or offensive' flags more test tweets."""
    from smo_impact.config import read_yaml

    guideline = read_yaml(REPO / "configs" / "treatments" / "guidelines" / "hs_brexit_hate_or_offensive.yaml")
    data = load_dataset("hs-brexit")
    spec = EvaluationSpec(benchmarks=[{"name": "hate_or_offensive", "split": "test", "reference": [guideline, "aggregate"]}])
    plain, broad = build_benchmarks(data, spec)
    test = data.split_annotations("test")
    by_hand = majority_vote(
        test.assign(label=((test["label"] == 1) | (test["offensive"] == 1)).astype(int)), (0, 1), 1, "positive"
    )
    assert broad.reference.tolist() == by_hand.reindex(broad.items["task"]).astype(int).tolist()
    assert broad.reference.sum() > plain.reference.sum()
