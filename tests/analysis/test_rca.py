"""Root-cause attribution on generated data: planted harmful changes rank first, reverting all recovers all."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
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
    for wrong in ("toy:arm=noisy,seed=0", "noisy s9"):  # a mistyped long or short name: the short one it meant
        with pytest.raises(ConfigError, match=rf"no treatment run '{wrong}' in experiment 'rca'\. "
                           r"Did you mean 'noisy s0'\? Treatment runs: noisy s0"):
            attribute_run(config, wrong, dataset=make_text_dataset(200))
    for name in ("noisy s0", "md-agreement:arm=noisy,seed=0"):  # the short name, and the long form of earlier versions
        rca, logged = attribute_run(config, name, dataset=make_text_dataset(200), by=("step",))
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
    result, run_id = attribute_run(config, "noisy s0", dataset=make_text_dataset(160), by=("step",))
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
    rca = _rca_reproduces_logged_run({
        "name": "s", "dataset": {"name": "md-agreement"},
        "arms": {"control": [{"aggregate": {"soft": True}}], "noisy": [{"aggregate": {"soft": True}}, {"noise": {"rate": 0.3}}]},
        "model": {"name": "embedding_logreg", "params": {"encoder": "tiny", "max_length": 16, "C": 10.0}},
        "evaluation": {"bootstrap": 0},
    }, make_text_dataset(200))
    # Reverting the noise gives the flipped items back their vote share (not a one-hot label): the
    # control's training data exactly, hence its score.
    assert rca.ranking_.set_index("group").loc["noise", "score_reverted"] == pytest.approx(rca.control_score_)
    replay = rca._replay  # the states themselves: the tiny encoder's score barely moves with the labels
    reverted, _ = replay.revert(replay.changes(("step",)))
    control_soft = replay.control_states[-1].soft_labels
    pd.testing.assert_frame_equal(reverted.soft_labels.sort_index(), control_soft.sort_index(), check_dtype=False)


# -- judgement-level changes, removals and guideline rules (issue 15) -------------------------------
def _fit(arms: dict, dataset, by, top_k=3, **options):
    """Plan ``arms`` (control first) on ``dataset`` and attribute the first treatment run."""
    config = validate({
        "name": "rca", "dataset": {"name": "md-agreement"}, "arms": arms, "seeds": [0],
        "model": {"name": "tfidf_logreg", "params": {"min_df": 1}}, "evaluation": {"bootstrap": 0},
    })
    _, ctx, specs, _ = prepare(config, dataset=dataset)
    control = next(s for s in specs if s.is_control)
    treated = next(s for s in specs if not s.is_control)
    return RootCauseAttribution(by=by, top_k=top_k, **options).fit(treated, control, ctx)


def test_reverting_judgement_noise_re_aggregates_instead_of_writing_a_judgement_label():
    # Before: a judgement's label_before was written into the aggregated label of its task, so
    # reverting every judgement flip did not give back the control's labels.
    rca = _fit({"control": ["aggregate"], "noisy": [{"noise": {"rate": 0.4, "level": "judgement"}}, "aggregate"]},
               make_text_dataset(300, workers_per_item=5), by=("step",))
    assert rca.regression_ > 0
    noise = rca.ranking_.set_index("group").loc["noise"]
    assert noise["score_reverted"] == pytest.approx(rca.control_score_)
    assert noise["fraction"] == pytest.approx(1.0)


def test_worker_groups_judgement_changes_after_aggregation():
    # Before: the change record had no worker, so every change fell in one '(not recorded)' group.
    data = make_text_dataset(300, workers_per_item=5)
    rca = _fit({"control": ["aggregate"], "noisy": [{"noise": {"rate": 0.4, "level": "judgement"}}, "aggregate"]},
               data, by=("worker",), top_k=20, max_groups=20)
    assert "(not recorded)" not in set(rca.ranking_["group"])
    assert set(rca.ranking_["group"]) <= set(data.annotations["worker"])
    assert len(rca.ranking_) > 10
    assert rca.explained_ == pytest.approx(1.0)  # every rater's flips reverted together: the control


def test_removed_judgements_come_back():
    # Before: rater pools recorded no change, so nothing could be reverted.
    rca = _fit({"control": ["aggregate"], "pool": [{"rater_pool": {"by": "random", "n_raters": 6}}, "aggregate"]},
               make_text_dataset(300, workers_per_item=3), by=("step",))
    pool = rca.ranking_.set_index("group").loc["rater_pool"]
    assert pool["score_reverted"] == pytest.approx(rca.control_score_)


def test_removed_items_come_back_with_their_labels():
    rca = _fit({"control": ["aggregate"], "cleaned": ["aggregate", {"clean": {"method": "agreement", "min_agreement": 0.9}}]},
               make_text_dataset(300), by=("step",))
    clean = rca.ranking_.set_index("group").loc["clean"]
    assert clean["changes"] > 0 and clean["score_reverted"] == pytest.approx(rca.control_score_)


def test_judgements_come_back_without_shifting_later_random_draws():
    # The pool drops judgements before noise draws one uniform per judgement in order: brought back
    # at once, they would move the noise onto other judgements, and undoing both steps would not
    # give back the control's labels. (The aggregate's rows, labels that differ from the majority
    # before the noise, are consequences of the two and stay.)
    rca = _fit({"control": ["aggregate"], "both": [{"rater_pool": {"by": "per_item", "k": 2}},
                                                   {"noise": {"rate": 0.3, "level": "judgement"}}, "aggregate"]},
               make_text_dataset(300), by=("step",), top_k=2)
    assert set(rca.ranking_["group"]) == {"rater_pool", "noise", "aggregate"}
    replay = rca._replay
    changes = replay.changes(("step",))
    everything, _ = replay.revert(changes[changes["step"] != "aggregate"])
    control = replay.control_states[-1].labels
    pd.testing.assert_series_equal(everything.labels.sort_index(), control.sort_index(), check_dtype=False)


def _severity_dataset(n_items: int = 300, seed: int = 0):
    """make_text_dataset with a ConvAbuse-like answer scale: harmful -> -1..-3, benign -> 1 or 0."""
    from smo_impact.data.schema import AnnotationSet

    data = make_text_dataset(n_items, workers_per_item=3, seed=seed)
    rng = np.random.default_rng(seed)
    ann = data.annotations.copy()
    harmful = ann["label"].to_numpy() == 1
    ann["label"] = np.where(harmful, rng.choice([-1, -2, -3], len(ann)), rng.choice([1, 1, 0], len(ann)))
    ann["severity"] = ann["label"]
    return AnnotationSet(name="sev", items=data.items, annotations=ann, labels=(1, 0, -1, -2, -3), positive_label=-3,
                         slice_columns=("domain",))


GUIDELINE = [{"name": "abusive", "when": {"severity": {"le": -1}}, "label": 1},
             {"name": "ambiguous", "when": {"severity": 0}, "label": 0},
             {"name": "not abusive", "when": {"severity": 1}, "label": 0}]


def _guideline(version: str, rules: list) -> dict:
    return {"guideline": {"version": version, "labels": [0, 1], "positive_label": 1, "rules": rules}}


def _fit_view(arms: dict, dataset, by, **options):
    """As _fit, scored on the correct guideline's view of the test split (the raw labels are a scale)."""
    config = validate({
        "name": "rca", "dataset": {"name": "md-agreement"}, "arms": arms, "seeds": [0],
        "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
        "evaluation": {"bootstrap": 0, "benchmarks": [
            {"name": "view", "split": "test", "reference": [_guideline("v", GUIDELINE), "aggregate"]}]},
    })
    _, ctx, specs, _ = prepare(config, dataset=dataset)
    control = next(s for s in specs if s.is_control)
    treated = next(s for s in specs if not s.is_control)
    return RootCauseAttribution(by=by, **{"benchmark": "view", **options}).fit(treated, control, ctx)


def test_a_wrong_rule_of_a_guideline_to_binary_is_reverted_to_the_controls_label():
    # Before: a guideline's changes were left out when it mapped the answers to another label set.
    wrong = [GUIDELINE[0], {**GUIDELINE[1], "label": 1}, GUIDELINE[2]]  # 'ambiguous' now counts as abuse
    rca = _fit_view({"control": [_guideline("v", GUIDELINE), "aggregate"],
                     "wrong": [_guideline("v-bad", wrong), "aggregate"]}, _severity_dataset(), by=("cause",))
    assert rca.regression_ > 0
    wrong_rule = rca.ranking_.iloc[0]
    assert wrong_rule["group"] == "guideline v-bad rule 1 (ambiguous) | control: guideline v rule 1 (ambiguous)"
    assert wrong_rule["not_reverted"] == 0
    assert wrong_rule["score_reverted"] == pytest.approx(rca.control_score_)
    # the correct rules labelled their judgements as the control did: shared, not attributed
    assert len(rca.ranking_) == 1 and rca.shared_changes_ > 0


def test_changes_the_control_made_too_are_not_attributed():
    # Both arms keep 2 judgements per item with the same draws; only the treatment adds noise.
    pool = {"rater_pool": {"by": "per_item", "k": 2}}
    rca = _fit({"control": [pool, "aggregate"], "noisy": [pool, "aggregate", {"noise": {"rate": 0.3}}]},
               make_text_dataset(300), by=("step",))
    assert rca.ranking_["group"].tolist() == ["noise"]
    assert rca.shared_changes_ == 180 * 3 - 180 * 2  # one dropped judgement per training item, in both arms
    assert rca.ranking_["fraction"].iloc[0] == pytest.approx(1.0)


def test_rca_refuses_an_unknown_benchmark():
    with pytest.raises(ConfigError, match=r"rca benchmark 'viwe' is not scored by this experiment; benchmarks: test, view"):
        _fit_view({"control": [_guideline("v", GUIDELINE), "aggregate"], "same": [_guideline("v", GUIDELINE), "aggregate"]},
                  _severity_dataset(100), by=("cause",), benchmark="viwe")


def _panel(n_items: int = 400, n_raters: int = 6, seed: int = 0):
    """make_text_dataset's items, every item judged by every one of ``n_raters`` (as HS-Brexit)."""
    from smo_impact.data.schema import AnnotationSet

    data = make_text_dataset(n_items, seed=seed)
    rng = np.random.default_rng(seed)
    truth = data.items["truth"].to_numpy()
    rows = [(task, f"r{w}", int(t if rng.random() < 0.85 else 1 - t))
            for task, t in zip(data.items["task"], truth) for w in range(n_raters)]
    ann = pd.DataFrame(rows, columns=["task", "worker", "label"])
    return AnnotationSet(name="panel", items=data.items, annotations=ann, labels=(0, 1), positive_label=1,
                         slice_columns=("domain",))


def test_many_raters_are_screened_before_retraining_and_the_careless_one_is_kept():
    # One of 6 raters (r3) over-flags, then every item keeps 5 of its 6 judgements (every rater has
    # changes: judgements dropped); only 4 groups are retrained.
    rca = _fit({"control": ["aggregate"], "careless": [
        {"noise": {"transitions": {0: {1: 0.9}}, "level": "judgement", "workers": ["r3"]}},
        {"rater_pool": {"by": "per_item", "k": 5}}, "aggregate"]}, _panel(n_raters=6), by=("worker",), max_groups=4)
    screened = rca.screened_.set_index("group")
    assert len(screened) == 6 and screened["retrained"].sum() == 4 == len(rca.ranking_)
    assert screened.index[0] == "r3" and screened["toward_control"].iloc[0] > screened["toward_control"].iloc[1]
    assert rca.regression_ > 0 and rca.ranking_["group"].iloc[0] == "r3"


def test_a_moved_threshold_names_both_rules_it_moves_judgements_between():
    mild_ok = [{"name": "mild is ok", "when": {"severity": -1}, "label": 0}, *GUIDELINE]
    moved = [{"name": "mild is ok", "when": {"severity": -2}, "label": 0}, *GUIDELINE]  # threshold off by one
    rca = _fit_view({"control": [_guideline("v", mild_ok), "aggregate"], "moved": [_guideline("w", moved), "aggregate"]},
                    _severity_dataset(), by=("cause",))
    assert set(rca.ranking_["group"]) == {
        "guideline w rule 1 (abusive) | control: guideline v rule 0 (mild is ok)",  # -1: now abuse
        "guideline w rule 0 (mild is ok) | control: guideline v rule 1 (abusive)",  # -2: now allowed
    }


# -- small versions of benchmarks/bench_rca_planted.py: a fault planted next to a second change -----
# The treatment also keeps fewer judgements per item, so every rater, rule and slice has changes
# of its own; the diagnosis must put the planted one first.
POOL = {"rater_pool": {"by": "per_item", "k": 4}}


@pytest.mark.parametrize(("rules", "named"), [
    ([GUIDELINE[0], {**GUIDELINE[1], "label": 1}, GUIDELINE[2]], "rule 1 (ambiguous)"),  # output inverted
    ([GUIDELINE[0], GUIDELINE[1], {**GUIDELINE[2], "label": 1}], "rule 2 (not abusive)"),  # output inverted
    ([{**GUIDELINE[0], "when": {"severity": {"le": 0}}}, *GUIDELINE[1:]], "rule 0 (abusive)"),  # threshold moved
])
def test_planted_wrong_guideline_rule_is_named(rules, named):
    pool = {"rater_pool": {"by": "per_item", "k": 2}}  # 3 judgements per item here
    rca = _fit_view({"control": [_guideline("v", GUIDELINE), "aggregate"],
                     "planted": [_guideline("w", rules), pool, "aggregate"]}, _severity_dataset(), by=("cause",))
    assert rca.regression_ > 0
    assert rca.ranking_["group"].iloc[0].startswith(f"guideline w {named}")


@pytest.mark.parametrize(("domain", "level"), [("a", "judgement"), ("b", "aggregated")])
def test_planted_shifted_slice_is_named(domain, level):
    shift = {"noise": {"transitions": {0: {1: 0.5}}, "slice": {"domain": [domain]}, "level": level}}
    steps = [shift, POOL, "aggregate"] if level == "judgement" else [POOL, "aggregate", shift]
    rca = _fit({"control": ["aggregate"], "planted": steps}, _panel(300), by=("domain",))
    assert rca.regression_ > 0
    assert rca.ranking_["group"].iloc[0] == domain


@functools.cache
def _convabuse():
    from smo_impact.config import DatasetSpec
    from smo_impact.data.loader import load_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # known leakage warning of the released splits
        return load_data(DatasetSpec(name="convabuse"))


@pytest.mark.integration
@pytest.mark.parametrize(("rater", "fault"), [
    ("Annotator3", {"rate": 0.5}), ("Annotator1", {"rate": 0.85}), ("Annotator6", {"transitions": {0: {1: 0.7}}}),
])
def test_planted_careless_rater_is_named_on_convabuse(mirror, rater, fault):
    # 8 expert raters, 3-8 per item; the treatment also keeps 3 judgements per item. (Generated
    # data is too easy for this: a near-perfect model barely moves with one rater's labels.)
    config = validate({
        "name": "rater", "dataset": {"name": "convabuse"}, "seeds": [0], "evaluation": {"bootstrap": 0},
        "model": {"name": "tfidf_logreg", "params": {"class_weight": "balanced"}},
        "arms": {"control": ["aggregate"], "planted": [
            {"noise": {**fault, "level": "judgement", "workers": [rater]}},
            {"rater_pool": {"by": "per_item", "k": 3}}, "aggregate"]},
    })
    _, ctx, specs, _ = prepare(config, dataset=_convabuse())
    control, planted = (next(s for s in specs if s.is_control == flag) for flag in (True, False))
    rca = RootCauseAttribution(by=("worker",)).fit(planted, control, ctx)
    assert rca.regression_ > 0
    assert rca.ranking_["group"].iloc[0] == rater
