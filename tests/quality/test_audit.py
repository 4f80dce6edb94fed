import warnings

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from smo_impact.data.schema import AnnotationSet
from smo_impact.errors import ConfigError, DataError
from smo_impact.quality.audit import QualityAudit
from tests.conftest import make_text_dataset
from tests import raw_mirror


def dense(annotations: pd.DataFrame) -> np.ndarray:
    return annotations.pivot(index="worker", columns="task", values="label").to_numpy(float)


@pytest.fixture(scope="module")
def toy_audit():
    data = make_text_dataset(n_items=150, workers_per_item=3, seed=1)
    workers = pd.DataFrame({"worker": [f"w{i}" for i in range(20)], "team": ["red"] * 10 + ["blue"] * 10})
    data = AnnotationSet(data.name, data.items, data.annotations, workers=workers, slice_columns=("domain",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return data, QualityAudit(min_shared=2, n_boot=200, ds_iter=10, random_state=0).fit(data)


def test_audit_figures_equal_the_reference_packages(toy_audit):
    data, audit = toy_audit
    s = audit.summary_
    assert (s["items"], s["judgements"], s["raters"], s["duplicate_judgements"]) == (150, 450, 20, 0)
    assert s["krippendorff_alpha"] == pytest.approx(krippendorff.alpha(dense(data.annotations), level_of_measurement="nominal"))
    counts = data.vote_counts().to_numpy()
    assert s["fleiss_kappa"] == pytest.approx(sm_fleiss_kappa(counts)) and s["fleiss_balanced"] is True
    assert s["krippendorff_alpha_low"] < s["krippendorff_alpha"] < s["krippendorff_alpha_high"]
    pair = audit.pairs_.iloc[0]
    table = data.annotations.pivot(index="task", columns="worker", values="label")
    both = table[[pair["worker_a"], pair["worker_b"]]].dropna()
    assert pair["shared_items"] == len(both)
    assert pair["kappa"] == pytest.approx(cohen_kappa_score(both.iloc[:, 0], both.iloc[:, 1]))
    assert s["cohen_kappa_median"] == pytest.approx(audit.pairs_["kappa"].median())


def test_audit_tables(toy_audit):
    data, audit = toy_audit
    assert len(audit.raters_) == 20 and audit.raters_["judgements"].sum() == 450
    assert audit.raters_["ds_skill"].between(0, 1).all()
    assert audit.levels_["level"].tolist() == ["3/3", "2/3"]
    assert audit.levels_["share"].sum() == pytest.approx(1.0)
    assert s_unanimous(audit) == pytest.approx(audit.levels_.loc[0, "share"])
    slices = audit.slices_.set_index(["kind", "slice", "value"])
    assert slices.loc[("item", "domain", "a"), "items"] == 75
    assert slices.loc[("rater", "team", "red"), "judgements"] == int(data.annotations["worker"].isin([f"w{i}" for i in range(10)]).sum())
    assert set(audit.rater_slices_["slice"]) == {"domain"}


def s_unanimous(audit) -> float:
    return audit.summary_["unanimous_share"]


def test_split_gold_and_bad_arguments():
    data = make_text_dataset(n_items=100, workers_per_item=3, seed=2)
    items = data.items.assign(gold_label=data.items["truth"])
    data = AnnotationSet(data.name, items, data.annotations, slice_columns=("domain",))
    audit = QualityAudit(split="train", n_boot=0, dawid_skene=False).fit(data)
    assert audit.summary_["items"] == 60
    assert audit.gold_column_ == "gold_label"
    # Raters agree with the truth 85% of the time (make_text_dataset); 180 judgements.
    assert 0.78 < audit.summary_["gold_accuracy"] < 0.92
    assert np.isnan(audit.summary_["krippendorff_alpha_low"])  # n_boot=0: no interval
    with pytest.raises(ConfigError, match="audit split must be one of train, dev, test or all; got 'validation'"):
        QualityAudit(split="validation")
    no_train = AnnotationSet(data.name, items.assign(split="test"), data.annotations)
    with pytest.raises(DataError, match="nothing to audit: split 'train' of dataset 'toy' has no judgements \\(splits with items: test\\)"):
        QualityAudit(split="train").fit(no_train)
    with pytest.raises(DataError, match=r"gold column 'domain' holds 'a', which is not a declared label \[0, 1\]"):
        QualityAudit(n_boot=0, dawid_skene=False, gold_column="domain").fit(data)


def test_rating_scale_flags_count_every_harmful_grade():
    # Scale 1 (benign) .. -1 (harmful); harmful = {0, -1}. Two raters, three items.
    annotations = pd.DataFrame(
        {"task": ["a", "a", "b", "b", "c", "c"], "worker": ["x", "y"] * 3, "label": [1, 1, 0, -1, -1, -1]}
    )
    items = pd.DataFrame({"task": ["a", "b", "c"], "text": "t", "split": "train"})
    data = AnnotationSet("scale", items, annotations, labels=(1, 0, -1), positive_label=-1, binary_positive=(0, -1))
    audit = QualityAudit(n_boot=0, dawid_skene=False).fit(data)
    assert audit.summary_["positive_rate"] == pytest.approx(4 / 6)
    assert audit.raters_.loc["x", "flag_rate"] == pytest.approx(2 / 3)
    # b is 0 vs -1: adjacent grades. Ordinal alpha is higher than nominal.
    assert audit.summary_["krippendorff_alpha_ordinal"] > audit.summary_["krippendorff_alpha"]
    reliability = np.array([[1, 0, -1], [1, -1, -1]], dtype=float)
    expected = krippendorff.alpha(reliability, level_of_measurement="ordinal", value_domain=[1, 0, -1])
    assert audit.summary_["krippendorff_alpha_ordinal"] == pytest.approx(expected)
    expected = krippendorff.alpha(reliability, level_of_measurement="interval", value_domain=[1, 0, -1])
    assert audit.summary_["krippendorff_alpha_interval"] == pytest.approx(expected)


def test_interval_alpha_only_on_numeric_scales_of_three_or_more_labels():
    annotations = pd.DataFrame({"task": ["a", "a", "b", "b"], "worker": ["x", "y"] * 2, "label": ["lo", "mid", "hi", "hi"]})
    items = pd.DataFrame({"task": ["a", "b"], "text": "t", "split": "train"})
    words = AnnotationSet("words", items, annotations, labels=("lo", "mid", "hi"), positive_label="hi")
    summary = QualityAudit(n_boot=0, dawid_skene=False).fit(words).summary_
    assert "krippendorff_alpha_ordinal" in summary and "krippendorff_alpha_interval" not in summary
    binary = QualityAudit(n_boot=0, dawid_skene=False).fit(make_text_dataset(n_items=20, seed=3)).summary_
    assert "krippendorff_alpha_ordinal" not in binary and "krippendorff_alpha_interval" not in binary


def test_by_names_the_rater_groups_and_item_slices_to_compare(toy_audit):
    data, _ = toy_audit
    workers = data.workers.assign(seniority="senior")  # one value: no comparison, not chosen by default
    data = AnnotationSet(data.name, data.items, data.annotations, workers=workers, slice_columns=("domain",))
    default = QualityAudit(n_boot=0, dawid_skene=False).fit(data).slices_
    assert set(default["slice"]) == {"domain", "team"}
    chosen = QualityAudit(n_boot=0, dawid_skene=False, by=["seniority"]).fit(data).slices_
    assert set(chosen["slice"]) == {"seniority"} and len(chosen) == 1
    assert (chosen["kind"] == "rater").all()
    both = QualityAudit(n_boot=0, dawid_skene=False, by=["team", "domain"]).fit(data).slices_
    assert set(zip(both["kind"], both["slice"])) == {("rater", "team"), ("item", "domain")}
    with pytest.raises(DataError, match=r"audit --by names 'gender', which is neither a rater attribute nor an item column "
                                        r"of dataset 'toy'; rater attributes: seniority, team; item columns: domain, truth"):
        QualityAudit(n_boot=0, dawid_skene=False, by=["gender"]).fit(data)


def test_duplicate_judgements_are_counted_and_dropped(toy_annotations):
    doubled = pd.concat([toy_annotations, toy_annotations.iloc[[0]]], ignore_index=True)
    items = pd.DataFrame({"task": [f"t{i}" for i in range(1, 6)], "text": "x", "split": "train"})
    audit = QualityAudit(n_boot=0, dawid_skene=False).fit(AnnotationSet("dup", items, doubled))
    assert audit.summary_["duplicate_judgements"] == 1 and audit.summary_["judgements"] == 25
    assert audit.summary_["krippendorff_alpha"] == pytest.approx(krippendorff.alpha(dense(toy_annotations), level_of_measurement="nominal"))


# -- the built-in datasets (data mirror) -------------------------------------------------------
# Each figure is recomputed from the mirror's raw files by tests/raw_mirror.py, which reads
# them with json/pandas and computes with krippendorff, statsmodels, scikit-learn or the plain
# definition: no smo_impact code. A loader or metric bug shows as a difference.
SCALES = {  # dataset -> its label scale, benign to harmful
    "md-agreement": [0, 1], "hs-brexit": [0, 1], "armis": [0, 1], "hatecheck": [0, 1],
    "convabuse-lewidi": [1, 0, -1, -2, -3], "convabuse": [1, 0, -1, -2, -3],
}
# Sizes stated by the data's own documentation (../shared/data/README.md: MD-Agreement train 6592 /
# dev 1104 / test 3057, 5 raters per item; HS-Brexit 1,120 tweets by 6 raters; ArMIS 943 tweets by
# 3 raters; ConvAbuse LeWiDi 8 raters in all; HateCheck 3,728 cases, hatecheck/README.md 5 of 10
# annotators per case). MD-Agreement has one repeated (task, worker) pair (test-2038, Ann448).
DOCUMENTED = {
    "md-agreement": {"items": 6592 + 1104 + 3057, "judgements": 5 * (6592 + 1104 + 3057) - 1},
    "hs-brexit": {"items": 1120, "judgements": 6 * 1120, "raters": 6},
    "armis": {"items": 943, "judgements": 3 * 943, "raters": 3},
    "convabuse-lewidi": {"raters": 8},
    "hatecheck": {"items": 3728, "judgements": 5 * 3728, "raters": 10},
}


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(SCALES))
def test_audit_of_each_builtin_dataset_equals_the_reference_packages(mirror, name):
    from smo_impact.data.catalog import load_dataset

    labels = SCALES[name]
    raw = raw_mirror.judgements(mirror, name)
    expected = raw_mirror.figures(raw, labels)
    if len(labels) > 2:
        expected["krippendorff_alpha_ordinal"] = raw_mirror.alpha(raw, "ordinal", labels)
        expected["krippendorff_alpha_interval"] = raw_mirror.alpha(raw, "interval", labels)

    data = load_dataset(name)
    first = QualityAudit(n_boot=100, dawid_skene=False).fit(data)
    got = {key: first.summary_[key] for key in expected}
    assert got == pytest.approx(expected, abs=1e-9)
    assert {key: first.summary_[key] for key in DOCUMENTED.get(name, {})} == DOCUMENTED.get(name, {})
    again = QualityAudit(n_boot=100, dawid_skene=False).fit(data)
    assert again.summary_ == first.summary_  # bootstrap seeded: identical, CI included


@pytest.mark.integration
def test_hs_brexit_target_group_raters_agree_differently_from_control(mirror):
    from smo_impact.data.catalog import load_dataset

    audit = QualityAudit(n_boot=0, dawid_skene=False).fit(load_dataset("hs-brexit"))
    groups = audit.slices_[(audit.slices_["kind"] == "rater") & (audit.slices_["slice"] == "group")].set_index("value")
    # Reference: alpha over the judgements of each group's raters, groups as the release lists
    # them (other_info "annotators group"; group1 = the target group, group2 = control).
    raw = raw_mirror.lewidi(mirror, "HS-Brexit")
    group_of = {r: {"group1": "target", "group2": "control"}[g] for r, g in raw_mirror.lewidi_rater_groups(mirror, "HS-Brexit").items()}
    assert sorted(group_of.values()) == ["control"] * 3 + ["target"] * 3
    for group in ("target", "control"):
        members = raw[raw["worker"].map(group_of) == group]
        assert groups.loc[group, "krippendorff_alpha"] == pytest.approx(raw_mirror.alpha(members), abs=1e-9), group
    assert groups.loc["target", "krippendorff_alpha"] < groups.loc["control", "krippendorff_alpha"]
    assert groups.loc["target", "positive_rate"] < groups.loc["control", "positive_rate"]


@pytest.mark.integration
def test_interval_alpha_of_convabuse_severity_is_the_published_figure(mirror):
    """ConvAbuse severity (1 .. -3) on the original release: interval alpha 0.734, from the raw
    split files through the krippendorff package, and the audit's figure equals it."""
    from smo_impact.data.catalog import load_dataset

    expected = raw_mirror.alpha(raw_mirror.convabuse(mirror), "interval", [1, 0, -1, -2, -3])
    assert expected == pytest.approx(0.734, abs=5e-4)
    audit = QualityAudit(n_boot=0, dawid_skene=False).fit(load_dataset("convabuse"))
    assert audit.summary_["krippendorff_alpha_interval"] == pytest.approx(expected, abs=1e-9)
