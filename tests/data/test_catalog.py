"""Every built-in dataset loads from the mirror with its documented counts and fields."""

from __future__ import annotations

import pandas as pd
import pytest

from smo_impact.config import DatasetSpec
from smo_impact.data.catalog import DATASETS, get_info, load_dataset
from smo_impact.data.loader import load_data
from smo_impact.data.schema import AnnotationSet
from smo_impact.errors import DataError
from tests import raw_mirror

pytestmark = pytest.mark.integration

BUILTINS = ["armis", "convabuse", "convabuse-lewidi", "hatecheck", "hs-brexit", "md-agreement"]


def test_registry_lists_every_builtin():
    assert DATASETS.names() == BUILTINS
    for name in BUILTINS:
        info = get_info(name)
        assert info.files and info.license and info.citation and info.splits and info.raters
        assert info.upstream and all(f.url.startswith("https://raw.githubusercontent.com/") for f in info.files)
        assert all(len(f.sha256) == 64 for f in info.files)
        assert list(info.label_schema) == list(info.labels)


@pytest.mark.parametrize("name", BUILTINS)
def test_documented_counts(mirror, name):
    info = get_info(name)
    data = load_dataset(name)
    summary = data.summary()
    assert summary["items_per_split"] == info.splits
    assert summary["raters"] == info.raters
    # The card's figures are the release's, counted on the raw files without smo_impact's loaders.
    assert info.splits == raw_mirror.split_sizes(mirror, name)
    assert info.raters == raw_mirror.judgements(mirror, name)["worker"].nunique()
    assert set(info.annotation_fields) <= set(data.annotations.columns)
    assert set(info.item_fields) <= set(data.items.columns)
    assert set(info.slice_columns) <= set(data.items.columns)
    assert set(info.rater_attributes) <= set(() if data.workers is None else data.workers.columns)
    assert set(data.annotations["label"]) <= set(info.labels)


def test_hs_brexit_groups_and_extra_answers(mirror):
    data = load_dataset("hs-brexit")
    assert data.workers.set_index("worker")["group"].to_dict() == {
        "Ann1": "target", "Ann2": "target", "Ann3": "target",
        "Ann4": "control", "Ann5": "control", "Ann6": "control",
    }  # fmt: skip
    assert len(data.annotations) == 6 * 1120
    first = data.annotations.loc[data.annotations["task"] == "train-1"]
    # train item 1: annotations 0,0,0,0,0,0; offensiveness 1,1,1,0,0,1 (read off the JSON by hand)
    assert first["label"].tolist() == [0] * 6
    assert first["offensive"].tolist() == [1, 1, 1, 0, 0, 1]
    assert first["aggressive"].tolist() == [0] * 6
    assert "group1" not in data.items.columns  # rater facts live in the workers table


def test_armis_rater_attributes(mirror):
    workers = load_dataset("armis").workers.set_index("worker")
    assert workers["group"].to_dict() == {"Ann1": "Moderate_Female", "Ann2": "Liberal_Female", "Ann3": "Conservative_Male"}
    assert workers["gender"].to_dict() == {"Ann1": "female", "Ann2": "female", "Ann3": "male"}


def _raw_not_abusive_with_a_target(mirror) -> int:
    """Judgements 'not abusive' (is_abuse.1) that still tick a target, counted on the split files
    with pandas (a cell like "1, 0" holds repeated responses: the first counts)."""
    n = 0
    for split in ("train", "valid", "test"):
        frame = pd.read_csv(mirror / "convabuse" / "2_splits" / f"ConvAbuseEMNLP{split}.csv", dtype=str)
        first = frame.fillna("").apply(lambda column: column.str.split(",").str[0].str.strip())
        for rater in sorted({c.split("_", 1)[0] for c in frame.columns if c.startswith("Annotator")}):
            targets = first[[f"{rater}_target.{t}" for t in ("generalised", "individual", "system")]] == "1"
            n += int(((first[f"{rater}_is_abuse.1"] == "1") & targets.any(axis=1)).sum())
    return n


def test_convabuse_keeps_the_full_answer_and_binary_default(mirror):
    data = load_dataset("convabuse")
    assert data.labels == (1, 0, -1, -2, -3)
    assert data.binary_positive == (-1, -2, -3)
    a = data.annotations
    assert (a["severity"] == a["label"]).all()
    # answers beyond severity were asked for abusive judgements (a few raters also ticked one otherwise)
    abusive = a["label"] < 0
    assert a.loc[abusive, "target"].notna().mean() > 0.9
    assert a.loc[a["label"] == 1, "target"].notna().sum() == _raw_not_abusive_with_a_target(mirror) == 5
    assert set(a["target"].dropna()) <= {"generalised", "individual", "system", "generalised+individual", "generalised+system", "individual+system", "generalised+individual+system"}
    assert a.loc[a["worker"] == "Annotator7", "type_transphobic"].isna().all()  # no such column upstream
    assert (a["responses"] >= 1).all() and (a["responses"] > 1).sum() > 0
    assert set(data.items["bot"]) == {"E.L.I.Z.A.", "CarbonBot"}
    binary = data.binarized()
    assert binary.labels == (0, 1) and binary.positive_label == 1
    assert int(binary.annotations["label"].sum()) == int(abusive.sum())
    assert (binary.annotations["label_raw"] == a["label"]).all()


def test_convabuse_lewidi_text_is_the_user_turn(mirror):
    data = load_dataset("convabuse-lewidi")
    item = data.items.set_index("task").loc["train-1"]
    assert (item["text"], item["prev_user"], item["agent"], item["bot"]) == ("yes", "well, i have a eatproblem", "Can you elaborate on that?", "E.L.I.Z.A.")
    assert data.annotations.loc[data.annotations["task"] == "train-1", "worker"].tolist() == ["Ann2", "Ann3", "Ann7"]


def test_hatecheck_cases_and_validation_labels(mirror):
    data = load_dataset("hatecheck")
    items = data.items.set_index("task")
    assert items.loc["1", ["text", "functionality", "target_identity", "gold", "template_id"]].tolist() == [
        "I hate women. ", "derog_neg_emote_h", "women", 1, 1,
    ]  # fmt: skip
    assert items["functionality"].nunique() == 29
    cases = pd.read_csv(mirror / "hatecheck" / "test_suite_cases.csv")  # the release, read directly
    assert int(items["gold"].sum()) == int((cases["label_gold"] == "hateful").sum()) == 2563
    per_case = data.annotations.groupby("task").size()
    assert (per_case == 5).all()
    assert data.annotations.loc[data.annotations["task"] == "1", "worker"].tolist() == [
        "annotator_1", "annotator_10", "annotator_4", "annotator_7", "annotator_8",
    ]  # fmt: skip


def test_builtin_leakage_policy_and_override(mirror):
    # The original ConvAbuse splits share short user turns ("yes", "hi"): warned by default...
    with pytest.warns(UserWarning, match=r"dataset 'convabuse': \d+ item\(s\) share their text"):
        data = load_data(DatasetSpec(name="convabuse", binarize=False))
    # ...an error when asked for, and dedupe drops the train/dev copies, never test items.
    with pytest.raises(DataError, match=r"share their text with an item of a more held-out split"):
        load_data(DatasetSpec(name="convabuse", leakage="error"))
    deduped = load_data(DatasetSpec(name="convabuse", leakage="dedupe"))
    assert deduped.summary()["items_per_split"]["test"] == 853
    assert deduped.summary()["items_per_split"]["train"] < 2501
    assert deduped.labels == (0, 1)  # binarize defaults to true
    assert data.labels == (1, 0, -1, -2, -3)


def test_builtin_digests_are_stable(mirror):
    a = load_dataset("hs-brexit")
    shuffled = AnnotationSet(
        name=a.name,
        items=a.items.sample(frac=1.0, random_state=0),
        annotations=a.annotations.sample(frac=1.0, random_state=1),
        workers=a.workers.sample(frac=1.0, random_state=2),
        slice_columns=a.slice_columns,
    )
    assert a.digest() == load_dataset("hs-brexit").digest() == shuffled.digest()


def test_convabuse_binary_default_reaches_the_runner(mirror):
    """`aggregate` alone works on a 5-point severity scale: the loader applies the documented rule."""
    from smo_impact.config import validate
    from smo_impact.runner.experiment import prepare

    config = validate({"name": "t", "dataset": {"name": "convabuse-lewidi"}, "arms": {"control": ["aggregate"]}})
    dataset, context, specs, _ = prepare(config)
    assert dataset.labels == (0, 1) and dataset.positive_label == 1
    raw = load_dataset("convabuse-lewidi").annotations
    assert int(dataset.annotations["label"].sum()) == int(raw["label"].isin([-1, -2, -3]).sum())
    assert len(specs) == 1


def test_builtin_where_filter_on_an_item_column(mirror):
    data = load_data(DatasetSpec(name="md-agreement", where={"domain": ["BLM"]}))
    assert set(data.items["domain"]) == {"BLM"}
    assert set(data.annotations["task"]) == set(data.items["task"])
    raw = load_dataset("md-agreement").annotations
    blm = raw.loc[raw["task"].isin(set(data.items["task"]))]
    # 5 per item, less the release's one repeated (task, worker) pair, which is BLM (test-2038)
    assert len(data.annotations) == len(blm) - 1 == 5 * len(data.items) - 1
    with pytest.raises(DataError, match=r"dataset 'md-agreement': dataset.where names column 'topic', which does not exist"):
        load_data(DatasetSpec(name="md-agreement", where={"topic": ["x"]}))


def test_md_agreement_repeated_judgement_is_resolved_by_its_documented_policy(mirror):
    assert get_info("md-agreement").duplicates == "first"
    # 5 raters on each of 6592 + 1104 + 3057 items (../shared/data/README.md), less the repeat.
    assert len(load_data(DatasetSpec(name="md-agreement")).annotations) == 5 * (6592 + 1104 + 3057) - 1
    with pytest.raises(DataError, match=r"dataset 'md-agreement': 1 duplicate \(task, worker\) judgement\(s\), e.g. task 'test-2038' worker 'Ann448'"):
        load_data(DatasetSpec(name="md-agreement", duplicates="error"))
