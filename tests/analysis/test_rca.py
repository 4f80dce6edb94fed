"""Root-cause attribution on generated data: planted harmful changes rank first, reverting all recovers all."""

from __future__ import annotations

import pytest

from smo_impact.analysis.rca import RootCauseAttribution
from smo_impact.config import validate
from smo_impact.errors import ConfigError
from smo_impact.runner.experiment import prepare
from smo_impact.runner.run import treat
from tests.conftest import make_text_dataset


@pytest.fixture(scope="module")
def planned():
    """Control: majority; treatment: 45% of the labels flipped, on domain 'a' only."""
    config = validate({
        "name": "rca", "dataset": {"name": "md-agreement"},
        "arms": {
            "control": ["aggregate"],
            "noisy": ["aggregate", {"noise": {"rate": 0.45, "slice": {"domain": ["a"]}}}],
            "uniform": ["aggregate", {"noise": {"rate": 0.4}}],
        },
        "seeds": [0], "model": {"name": "tfidf_logreg", "params": {"min_df": 1}}, "evaluation": {"bootstrap": 0},
    })
    _, ctx, specs, _ = prepare(config, dataset=make_text_dataset(400))
    control = next(s for s in specs if s.is_control)
    treated = next(s for s in specs if s.arm == "noisy")
    uniform = next(s for s in specs if s.arm == "uniform")
    return ctx, control, treated, uniform


def test_treat_reproduces_the_run_labels(planned):
    ctx, control, treated, uniform = planned
    labels, changes = treat(treated, ctx).labels, treat(treated, ctx).state.changes
    control_labels = treat(control, ctx).labels
    assert labels.index.equals(control_labels.index)
    flipped = labels.ne(control_labels)
    # the flipped labels are exactly the change record's tasks, all in domain 'a'
    assert set(labels.index[flipped]) == set(changes["task"])
    domains = ctx.dataset.items.set_index("task").loc[changes["task"], "domain"]
    assert set(domains) == {"a"}


def test_reverting_every_change_recovers_the_whole_regression(planned):
    ctx, control, treated, uniform = planned
    rca = RootCauseAttribution(by=("domain", "cause"), metric="macro_f1", top_k=1).fit(treated, control, ctx)
    assert rca.regression_ > 0.02  # 45% flips on half the items hurt
    # Every change is on domain 'a' with one cause: reverting either group gives back the control's
    # labels, hence exactly the control's score and a fraction of 1.
    assert set(zip(rca.ranking_["dimension"], rca.ranking_["group"])) == {("domain", "a"), ("cause", "symmetric rate=0.45 noise")}
    assert rca.ranking_["score_reverted"].tolist() == pytest.approx([rca.control_score_] * 2)
    assert rca.ranking_["fraction"].tolist() == pytest.approx([1.0, 1.0])
    assert rca.explained_ == pytest.approx(1.0)
    assert {"task", "text", "neighbour", "neighbour_text", "similarity"} <= set(rca.neighbours_.columns)
    assert len(rca.neighbours_) == 3 * rca.neighbours_["task"].nunique() > 0
    assert rca.neighbours_["similarity"].between(0, 1.0 + 1e-9).all()


def test_uniform_noise_splits_between_slices(planned):
    ctx, control, treated, uniform = planned
    rca = RootCauseAttribution(by=("domain",), metric="macro_f1", top_k=2).fit(uniform, control, ctx)
    by_domain = rca.ranking_.set_index("group")
    assert set(by_domain.index) == {"a", "b"}
    # each half of the flips recovers part of the regression; both together recover all of it
    assert (by_domain["recovered"] > 0).all()
    assert rca.explained_ == pytest.approx(1.0)
    assert by_domain["changes"].sum() == int(treat(uniform, ctx).state.changes["task"].nunique())


def test_bad_dimension_and_metric_are_one_line_errors(planned):
    ctx, control, treated, uniform = planned
    with pytest.raises(ConfigError, match=r"rca metric must be one of macro_f1, recall, f1, accuracy; got 'auc'"):
        RootCauseAttribution(metric="auc")
    with pytest.raises(ConfigError, match=r"rca cannot group changes by \['rater'\]; use step, cause, worker or an item column \(domain"):
        RootCauseAttribution(by=("rater",)).fit(treated, control, ctx)


def test_attribute_run_names_the_planned_runs_when_the_name_is_wrong():
    from smo_impact.analysis.rca import attribute_run

    config = validate({
        "name": "rca", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.3}}]},
        "seeds": [0], "model": {"name": "tfidf_logreg", "params": {"min_df": 1}}, "evaluation": {"bootstrap": 0},
    })
    with pytest.raises(ConfigError, match=r"no treatment run 'toy:arm=noisy,seed=0' in experiment 'rca'\. "
                       r"Did you mean 'md-agreement:arm=noisy,seed=0'\? Treatment runs: md-agreement:arm=noisy,seed=0"):
        attribute_run(config, "toy:arm=noisy,seed=0", dataset=make_text_dataset(200))
    rca, logged = attribute_run(config, "md-agreement:arm=noisy,seed=0", dataset=make_text_dataset(200), by=("step",))
    assert logged is None and rca.ranking_["fraction"].tolist() == pytest.approx([1.0])


def test_finetune_falls_back_to_the_cheap_model_on_the_same_encoder():
    from smo_impact.analysis.rca import attribute_run
    from smo_impact.config import validate
    from tests.conftest import make_text_dataset

    config = validate({
        "name": "ft", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.4}}]},
        "model": {"name": "finetune", "params": {"encoder": "tiny", "max_length": 16, "epochs": 1}},
    })
    result, run_id = attribute_run(config, "md-agreement:arm=noisy,seed=0", dataset=make_text_dataset(160), by=("step",))
    assert run_id is None
    assert result.model_used_ == "embedding_logreg"
    assert "too costly to retrain per group; attributed with embedding_logreg on the frozen 'tiny' encoder" in result.fallback_
    assert list(result.ranking_["dimension"]) == ["step"]


# -- RCA scores exactly as the runner did (one treat/train/score path) ------------------------------
def _rca_reproduces_logged_run(config_dict, dataset):
    from smo_impact.runner.run import execute_run

    config = validate(config_dict)
    _, ctx, specs, _ = prepare(config, dataset=dataset)
    control = next(s for s in specs if s.is_control)
    treated = next(s for s in specs if not s.is_control)
    logged_treated = execute_run(treated, ctx).metrics["test/macro_f1"]
    logged_control = execute_run(control, ctx).metrics["test/macro_f1"]
    rca = RootCauseAttribution(by=("step",), metric="macro_f1", max_groups=1).fit(treated, control, ctx)
    assert rca.treated_score_ == logged_treated
    assert rca.control_score_ == logged_control
    return rca


def test_rca_reproduces_a_guideline_arm_that_redefines_the_positive_label():
    # The guideline renames the labels: the positive class is 'bad' afterwards, not the dataset's 1.
    guideline = {"guideline": {"version": "names", "labels": ["ok", "bad"], "positive_label": "bad", "rules": [
        {"name": "harm", "when": {"label": 1}, "label": "bad"}, {"name": "rest", "when": {}, "label": "ok"}]}}
    rca = _rca_reproduces_logged_run({
        "name": "g", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "renamed": [guideline, "aggregate", {"noise": {"rate": 0.3}}]},
        "model": {"name": "tfidf_logreg", "params": {"min_df": 1, "C": 0.5}}, "evaluation": {"bootstrap": 0},
    }, make_text_dataset(300))
    assert rca.regression_ > 0  # 30% noise on the renamed labels costs macro-F1


def test_rca_reproduces_a_soft_label_arm():
    pytest.importorskip("torch")
    _rca_reproduces_logged_run({
        "name": "s", "dataset": {"name": "md-agreement"},
        "arms": {"control": [{"aggregate": {"soft": True}}], "noisy": [{"aggregate": {"soft": True}}, {"noise": {"rate": 0.3}}]},
        "model": {"name": "embedding_logreg", "params": {"encoder": "tiny", "max_length": 16, "C": 10.0}},
        "evaluation": {"bootstrap": 0},
    }, make_text_dataset(200))
