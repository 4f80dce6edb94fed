"""Regression tests for figures that were silently wrong (issue "Correct numbers").

Each expected value is recomputed here from what the store or the data says, independently of
the code path under test (e.g. a delta is checked as the difference of the two stored metrics).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from smo_impact.config import validate
from smo_impact.data.schema import AnnotationSet
from smo_impact.data.validation import DataWarning
from smo_impact.errors import ConfigError, DataError
from smo_impact.runner.experiment import prepare, run_experiment
from smo_impact.runner.run import execute_run
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset


def _store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'm.db'}"


# -- defect 1: a sweep over a featurizer parameter trains each grid point on its own features ------
def test_sweeping_a_featurizer_param_builds_features_per_grid_point():
    config = validate({
        "name": "featsweep", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "ngrams": ["aggregate"]},
        "sweep": {"ngrams": {"model.ngram_max": [1, 3], "model.min_df": [1]}},
        "model": {"name": "tfidf_logreg", "params": {"min_df": 2}}, "evaluation": {"bootstrap": 0},
    })
    _, ctx, specs, _ = prepare(config, dataset=make_text_dataset(300))
    one, three = (next(s for s in specs if dict(s.grid).get("model.ngram_max") == n) for n in (1, 3))
    from sklearn.feature_extraction.text import TfidfVectorizer

    train_texts = ctx.dataset.split("train")["text"]
    for spec, n in ((one, 1), (three, 3)):
        # The vocabulary size a plain vectorizer with the grid point's params finds on the train split.
        expected = len(TfidfVectorizer(ngram_range=(1, n), min_df=1).fit(train_texts).vocabulary_)
        assert ctx.features_for(spec.model).matrix.shape[1] == expected
    scores = {n: execute_run(s, ctx).predictions["score"].to_numpy() for n, s in ((1, one), (3, three))}
    assert not np.allclose(scores[1], scores[3])


# -- defect 2: comparisons are keyed on both runs ---------------------------------------------------
def _metric(client: MlflowClient, run_id: str, name: str) -> float:
    return client.get_run(run_id).data.metrics[name]


def test_changing_only_the_control_recomputes_every_comparison_and_nothing_else(tmp_path):
    data = make_text_dataset(300)
    store = _store(tmp_path)
    base = {
        "name": "ctrl", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.3}}]},
        "seeds": [0, 1], "evaluation": {"bootstrap": 50},
    }
    first = run_experiment(validate(base), lambda: MlflowTracker(store, "c"), dataset=data)
    assert (first.computed, first.compared) == (4, 2)
    # Only the control arm changes: its runs are recomputed, the treatment runs reused and re-compared.
    changed = {**base, "arms": {**base["arms"], "control": ["aggregate", {"noise": {"rate": 0.45}}]}}
    second = run_experiment(validate(changed), lambda: MlflowTracker(store, "c"), dataset=data)
    assert (second.computed, second.reused, second.compared) == (2, 2, 2)
    client = MlflowClient(store)
    runs = second.runs.set_index("run_name")
    for seed in (0, 1):
        treated = runs[(runs["arm"] == "noisy") & (runs["seed"] == seed)].iloc[0]
        control = runs[(runs["arm"] == "control") & (runs["seed"] == seed)].iloc[0]
        stored_delta = _metric(client, treated["run_id"], "delta/test/macro_f1")
        truth = _metric(client, treated["run_id"], "test/macro_f1") - _metric(client, control["run_id"], "test/macro_f1")
        assert stored_delta == pytest.approx(truth, abs=1e-12)
        assert treated["delta/test/macro_f1"] == pytest.approx(truth, abs=1e-12)  # the summary's row too
        assert client.get_run(treated["run_id"]).data.tags["smo.compared_with"] == control.name
    # A third run with nothing changed recomputes nothing, comparisons included.
    third = run_experiment(validate(changed), lambda: MlflowTracker(store, "c"), dataset=data)
    assert (third.computed, third.compared) == (0, 0)


def test_changing_a_gate_rejudges_stored_runs_without_retraining(tmp_path):
    data = make_text_dataset(300)
    store = _store(tmp_path)
    base = {
        "name": "gate", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.4}}]},
        "evaluation": {"bootstrap": 50, "gates": {"max_drop": {"test/macro_f1": 0.5}}},
    }
    first = run_experiment(validate(base), lambda: MlflowTracker(store, "g"), dataset=data)
    strict = {**base, "evaluation": {"bootstrap": 50, "gates": {"max_drop": {"test/macro_f1": 0.0}}}}
    second = run_experiment(validate(strict), lambda: MlflowTracker(store, "g"), dataset=data)
    assert (second.computed, second.compared) == (0, 1)
    row = second.runs[second.runs["arm"] == "noisy"].iloc[0]
    tags = MlflowClient(store).get_run(row["run_id"]).data.tags
    drop = -row["delta/test/macro_f1"]
    assert tags["smo.gate"] == ("failed" if drop > 0 else "passed")
    assert first.gates.iloc[0]["gate"] == "passed"


def test_a_reused_run_of_another_code_version_is_listed(tmp_path, monkeypatch):
    data = make_text_dataset(200)
    store = _store(tmp_path)
    config = validate({"name": "cv", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]},
                       "evaluation": {"bootstrap": 0}})
    import smo_impact.runner.experiment as experiment

    monkeypatch.setattr(experiment, "code_version", lambda: "0.0.1+gold")
    run_experiment(config, lambda: MlflowTracker(store, "v"), dataset=data)
    monkeypatch.setattr(experiment, "code_version", lambda: "0.0.2+gnew")
    again = run_experiment(config, lambda: MlflowTracker(store, "v"), dataset=data)
    assert again.computed == 0
    assert again.stale_code == [("control s0", "0.0.1+gold")]


# -- defect 6: early stopping never sees the evaluation split; its labels are the arm's own ----------
def test_validate_refuses_early_stopping_on_the_evaluation_split():
    with pytest.raises(ConfigError, match=r"evaluation.split: model 'embedding_mlp' early-stops on the dev split, "
                                          r"so dev cannot also be the evaluation split"):
        validate({"name": "x", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]},
                  "model": {"name": "embedding_mlp"}, "evaluation": {"split": "dev"}})


def test_early_stopping_labels_are_the_arms_treated_dev_labels_by_default():
    from smo_impact.runner.run import dev_set

    config = validate({
        "name": "dev", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.3}}]},
        "model": {"name": "tfidf_logreg"}, "evaluation": {"bootstrap": 0},
    })
    data = make_text_dataset(2000)
    _, ctx, specs, _ = prepare(config, dataset=data)
    noisy = next(s for s in specs if s.arm == "noisy")
    control = next(s for s in specs if s.is_control)
    # Reference: the dev majority recomputed here from the raw judgements (ties go positive).
    dev = data.annotations[data.annotations["task"].isin(ctx.dev_items["task"])]
    share = dev.groupby("task")["label"].mean().reindex(ctx.dev_items["task"])
    majority = (share >= 0.5).astype(int).to_numpy()
    assert np.array_equal(dev_set(control, ctx, "treated").y, majority)
    assert np.array_equal(dev_set(noisy, ctx, "reference").y, majority)
    flipped = np.mean(dev_set(noisy, ctx, "treated").y != majority)
    n = len(majority)
    assert abs(flipped - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)  # binomial tolerance around the noise rate


# -- defect 9: more than two labels do not silently become binary ------------------------------------
def test_three_declared_labels_train_three_classes():
    """A warning said 'hate' trained against the rest; now the model learns the three classes
    (tests/runner/test_multiclass.py checks the K-class figures)."""
    data = make_text_dataset(200)
    three = AnnotationSet(
        name="three", items=data.items, annotations=data.annotations.assign(
            label=data.annotations["label"].map({0: "neither", 1: "hate"}).where(
                data.annotations["worker"] != "w3", "offensive")),
        labels=("neither", "offensive", "hate"), positive_label="hate", slice_columns=("domain",),
    )
    config = validate({"name": "k", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]},
                       "evaluation": {"bootstrap": 0}})
    import warnings

    from smo_impact.runner.run import class_probabilities, train, treat

    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        _, ctx, specs, _ = prepare(config, dataset=three)
    model = train(specs[0], ctx, treat(specs[0], ctx).state)
    assert model.label_space_.classes == ("neither", "offensive", "hate")
    # 'offensive' (one rater of three) never wins a majority: the model never saw it, and gives it 0.
    assert list(model.classes_) == [0, 2]
    proba = class_probabilities(model, ctx.features.rows(ctx.eval_items["task"]), 3)
    assert proba.shape == (len(ctx.eval_items), 3) and (proba[:, 1] == 0).all()


# -- a user error at one grid point fails that run, not the sweep --------------------------------------
def test_a_grid_point_that_fails_on_the_data_is_marked_failed_and_the_sweep_finishes(tmp_path):
    data = make_text_dataset(200)
    store = _store(tmp_path)
    config = validate({
        "name": "gridfail", "dataset": {"name": "md-agreement"},
        # Uncertainty-dependent noise fits a model, so it is not tried before the runs: its
        # problem surfaces mid-sweep (cheap steps would have been refused up front, see below).
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.2, "instance": "uncertainty"}}]},
        "sweep": {"noisy": {"noise.slice": [{"domain": ["a"]}, {"no_such_column": ["x"]}]}},
        "seeds": [0, 1], "evaluation": {"bootstrap": 0},
    })
    result = run_experiment(config, lambda: MlflowTracker(store, "f"), dataset=data)
    assert len(result.runs) == 4  # 2 controls + 2 runs of the feasible grid point
    assert sorted(n for n, _ in result.failures) == [
        "noisy slice={'no_such_column': ['x']} s0",
        "noisy slice={'no_such_column': ['x']} s1",
    ]
    assert all("noise.slice: column 'no_such_column' is not an item column" in e for _, e in result.failures)
    statuses = [r.info.status for r in MlflowClient(store).search_runs([MlflowClient(store).get_experiment_by_name("f").experiment_id])]
    assert "RUNNING" not in statuses and statuses.count("FAILED") == 3  # two runs and the parent


def test_a_pool_that_selects_no_one_at_one_grid_point_fails_before_any_run(tmp_path):
    data = make_text_dataset(200)
    config = validate({
        "name": "pool", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "pool": [{"rater_pool": {"by": "random", "n_raters": 2}}, "aggregate"]},
        "sweep": {"pool": {"rater_pool.n_raters": [3, 500]}},
        "evaluation": {"bootstrap": 0},
    })
    store = _store(tmp_path)
    with pytest.raises(DataError, match=r"arm 'pool', step 'rater_pool': rater_pool n_raters=500 but only 20 raters "
                                        r"have judgements at rater_pool.n_raters=500"):
        run_experiment(config, lambda: MlflowTracker(store, "p"), dataset=data)
    experiment = MlflowClient(store).get_experiment_by_name("p")
    assert experiment is None or not MlflowClient(store).search_runs([experiment.experiment_id])


def test_cheap_steps_are_tried_on_the_data_before_any_run(tmp_path):
    data = make_text_dataset(200)
    store = _store(tmp_path)
    config = validate({
        "name": "cheap", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.2}}],
                 # every label flipped from a unanimous-ish majority: one class is left
                 "allneg": ["aggregate", {"noise": {"transitions": {1: {0: 1.0}}}}]},
        "sweep": {"noisy": {"noise.slice": [{"domain": ["a"]}, {"no_such_column": ["x"]}]}},
        "evaluation": {"bootstrap": 0},
    })
    with pytest.raises(DataError, match=r"2 problems: arm 'noisy', step 'noise': noise.slice: column 'no_such_column' "
                                        r"is not an item column.*at noise.slice=.*; arm 'allneg': the training labels "
                                        r"of seed 0 contain a single class \(no positive of 120 items\)"):
        run_experiment(config, lambda: MlflowTracker(store, "c"), dataset=data)
    experiment = MlflowClient(store).get_experiment_by_name("c")
    assert experiment is None or not MlflowClient(store).search_runs([experiment.experiment_id])
