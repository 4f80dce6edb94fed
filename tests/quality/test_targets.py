from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from smo_impact.errors import ConfigError
from smo_impact.quality.targets import Target, TargetsFile, evaluate_targets, load_targets


def fake_audit() -> SimpleNamespace:
    raters = pd.DataFrame(
        {
            "judgements": [120, 80, 60, 10],
            "rater_agreement": [0.9, 0.65, 0.72, 0.2],
            "flag_bias": [0.0, 0.3, -0.05, 0.9],
        },
        index=pd.Index(["a", "b", "c", "d"], name="worker"),
    )
    slices = pd.DataFrame(
        {
            "kind": ["item", "item", "rater"],
            "slice": ["domain", "domain", "group"],
            "value": ["BLM", "Covid", "target"],
            "items": [500, 40, 300],
            "pairable_items": [480, 40, 290],
            "positive_rate": [0.3, 0.2, 0.4],
            "krippendorff_alpha": [0.55, 0.1, 0.7],
        }
    )
    rater_slices = pd.DataFrame(
        {"worker": ["b", "c"], "slice": ["domain", "domain"], "value": ["BLM", "BLM"], "judgements": [40, 40], "flag_bias": [0.4, 0.0]}
    )
    return SimpleNamespace(
        summary_={"krippendorff_alpha": 0.62, "percent_agreement": 0.7}, raters_=raters, slices_=slices, rater_slices_=rater_slices
    )


def test_dataset_target_passes_and_fails():
    audit = fake_audit()
    ok, bad = evaluate_targets(
        [Target(metric="krippendorff_alpha", min=0.6), Target(metric="percent_agreement", min=0.8)], audit
    )
    assert ok.passed and ok.value == 0.62 and ok.failing.empty
    assert not bad.passed and bad.value == 0.7
    assert ok.target.label == "krippendorff_alpha >= 0.6"


def test_per_rater_target_lists_failing_raters_worst_first_and_respects_the_floor():
    (result,) = evaluate_targets([Target(metric="rater_agreement", per="rater", min=0.7, min_judgements=50)], fake_audit())
    assert not result.passed
    assert result.judged == 3  # d has 10 judgements: not judged
    assert result.failing["who"].tolist() == ["b"]
    assert result.failing.loc[0, "value"] == 0.65 and result.failing.loc[0, "n"] == 80
    assert result.value == 0.65
    assert result.target.label == "rater_agreement >= 0.7 for every rater with >= 50 judgements"
    (lenient,) = evaluate_targets([Target(metric="rater_agreement", per="rater", min=0.6, min_judgements=50)], fake_audit())
    assert lenient.passed and lenient.value == 0.65


def test_two_sided_bias_target_and_slices():
    bias, slices, cells = evaluate_targets(
        [
            Target(metric="flag_bias", per="rater", min=-0.2, max=0.2),
            Target(metric="krippendorff_alpha", per="slice", min=0.5, min_items=100),
            Target(metric="flag_bias", per="rater_slice", max=0.25),
        ],
        fake_audit(),
    )
    assert bias.failing["who"].tolist() == ["d", "b"]  # 0.9 is further out than 0.3
    assert slices.passed and slices.judged == 2  # Covid (40 items) is below the floor
    assert cells.failing["who"].tolist() == ["b @ domain=BLM"]


def test_unavailable_metric_fails_with_a_note():
    (result,) = evaluate_targets([Target(metric="gold_accuracy", min=0.9)], fake_audit())
    assert not result.passed and np.isnan(result.value) and result.judged == 0
    assert result.note == "'gold_accuracy' is not available for this dataset"


def test_targets_file_reports_every_problem_with_its_path(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "targets:\n"
        "  - {metric: krippendorf_alpha, min: 0.6}\n"
        "  - {metric: rater_agreement, per: rater}\n"
        "  - {metric: flag_bias, per: rater, min: 0.3, max: 0.1, colour: red}\n"
        "  - {metric: positive_rate, per: team, min: 0}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_targets(path)
    text = "\n".join(info.value.problems)
    assert "targets[0]: Unknown metric 'krippendorf_alpha' for per=dataset. Did you mean 'krippendorff_alpha'? Available: cohen_kappa_median, ds_skill_mean," in text
    assert "targets[1]: target 'rater_agreement' needs a bound: give min, max or both" in text
    assert "targets[2].colour: unknown key (not allowed here)" in text
    assert "targets[3].per: Input should be 'dataset', 'rater', 'slice' or 'rater_slice'" in text
    assert info.value.source == str(path)
    path.write_text("- {metric: x}\n")
    with pytest.raises(ConfigError, match="a targets file must be a mapping with a 'targets' list, got list"):
        load_targets(path)


def test_load_targets_round_trip(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("targets:\n  - {metric: krippendorff_alpha, min: 0.6, name: overall alpha}\n")
    spec = load_targets(path)
    assert isinstance(spec, TargetsFile) and spec.targets[0].label == "overall alpha"


@pytest.mark.parametrize(
    "sentence, mapping",
    [
        ("alpha >= 0.6", {"metric": "krippendorff_alpha", "min": 0.6}),
        ("rater_agreement >= 0.7 for every rater with >= 50 judgements",
         {"metric": "rater_agreement", "per": "rater", "min": 0.7, "min_judgements": 50}),
        ("flag_bias >= -0.2 and <= 0.2 for every rater in every slice with >= 30 judgements",
         {"metric": "flag_bias", "per": "rater_slice", "min": -0.2, "max": 0.2, "min_judgements": 30}),
        ("percent_agreement >= 0.9 for every slice with >= 100 items",
         {"metric": "percent_agreement", "per": "slice", "min": 0.9, "min_items": 100}),
        ("positive_rate <= 0.5", {"metric": "positive_rate", "max": 0.5}),
    ],
)
def test_one_line_targets_mean_the_same_as_mappings(sentence, mapping):
    target = Target.model_validate(sentence)
    assert target == Target.model_validate(mapping)
    assert Target.model_validate(target.label) == target  # the label reads back as the same target


def test_unreadable_one_line_target(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("targets:\n  - alpha >= 0.6\n  - alpha > 0.6\n")
    with pytest.raises(ConfigError, match=r"targets\[1\]: cannot read target 'alpha > 0.6'; write e.g. 'alpha >= 0.6'"):
        load_targets(path)


def test_a_slice_floor_on_items_counts_the_items_agreement_is_computed_on():
    """A rater group with 284 judgements but only 15 items judged twice by its raters is below a
    100-item floor for agreement (alpha rests on those 15), not above it."""
    import warnings

    from smo_impact.data.schema import AnnotationSet
    from smo_impact.quality.audit import QualityAudit

    rng = np.random.default_rng(1)
    rows = []
    for i in range(269):
        # "rare" raters: one judgement per item, two on the first 15 (and they disagree there)
        pair = rng.choice(["r1", "r2", "r3", "r4"], 2 if i < 15 else 1, replace=False)
        rows += [(f"t{i}", w, k % 2) for k, w in enumerate(pair)]
        rows += [(f"t{i}", w, i % 2) for w in ("c1", "c2", "c3")]
    annotations = pd.DataFrame(rows, columns=["task", "worker", "label"])
    items = pd.DataFrame({"task": [f"t{i}" for i in range(269)], "text": "x", "split": "train"})
    workers = pd.DataFrame({"worker": ["r1", "r2", "r3", "r4", "c1", "c2", "c3"], "pool": ["rare"] * 4 + ["core"] * 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = QualityAudit(n_boot=0, dawid_skene=False).fit(AnnotationSet("g", items, annotations, workers=workers))
    rare = audit.slices_.set_index("value").loc["rare"]
    assert (rare["judgements"], rare["items"], rare["pairable_items"]) == (284, 269, 15)
    alpha, share = evaluate_targets(
        [Target.model_validate("krippendorff_alpha >= 0.5 for every slice with >= 100 items"),
         Target.model_validate("positive_rate <= 0.9 for every slice with >= 100 items")],
        audit,
    )
    assert alpha.passed and alpha.judged == 1 and alpha.value == pytest.approx(1.0)  # only "core" is judged
    assert share.judged == 2  # a share of judgements needs no pairs: both groups have >= 100 items
