"""evaluation.split: null: train on every item and score only on the benchmarks (a functional
suite), without a dummy test split."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from smo_impact.config import validate
from smo_impact.errors import ConfigError
from tests.conftest import make_text_dataset


def _raw(**evaluation) -> dict:
    return {
        "name": "suite-only",
        "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.3}}]},
        "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
        "evaluation": {"bootstrap": 0, **evaluation},
    }


def test_no_primary_split_needs_a_benchmark():
    with pytest.raises(ConfigError, match=r"evaluation.split: null scores the benchmarks only, and there are none; add one to "
                                          r"evaluation.benchmarks \(e.g. \{name: hatecheck, suite: hatecheck\}\) or set split: test"):
        validate(_raw(split=None))
    config = validate(_raw(split=None, benchmarks=[{"name": "hatecheck", "suite": "hatecheck"}]))
    assert config.evaluation.namespaces == ["hatecheck"] and config.evaluation.primary == "hatecheck"
    assert validate(_raw()).evaluation.primary == "test"


@pytest.mark.integration
def test_training_on_every_item_scores_only_the_suite(mirror, tmp_path):
    from smo_impact.data.schema import AnnotationSet
    from smo_impact.runner.experiment import run_experiment
    from smo_impact.tracking.mlflow_tracker import MlflowTracker

    toy = make_text_dataset(300)
    every_item_in_train = AnnotationSet("toy", toy.items.assign(split="train"), toy.annotations, slice_columns=("domain",))
    config = validate(_raw(split=None, benchmarks=[{"name": "hatecheck", "suite": "hatecheck"}]))
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_experiment(config, lambda: MlflowTracker(store, "suite-only"), dataset=every_item_in_train)
    client = MlflowClient(store)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'")
    assert {r.info.status for r in children} == {"FINISHED"} and len(children) == 2
    for run in children:
        metrics = run.data.metrics
        assert metrics["treatment/items_kept"] == 300  # every item trained on
        assert "hatecheck/macro_f1" in metrics
        assert not any(name.startswith(("test/", "dev/")) for name in metrics)
    noisy = next(r for r in children if r.data.tags["smo.arm"] == "noisy")
    assert "delta/hatecheck/macro_f1" in noisy.data.metrics
