"""The audit report (smo_impact/report/audit.py): files, embedded plots, targets and failures."""

import re

import numpy as np
import pandas as pd
import pytest

from smo_impact.data.schema import AnnotationSet
from smo_impact.quality.audit import QualityAudit
from smo_impact.quality.targets import Target, evaluate_targets
from smo_impact.report.audit import audit_figures, write_audit_report
from tests.conftest import make_text_dataset


def small_audit():
    data = make_text_dataset(n_items=120, workers_per_item=3, seed=4)
    return QualityAudit(min_shared=2, n_boot=50, dawid_skene=False).fit(data)


def test_report_files_plots_and_failing_raters(tmp_path):
    audit = small_audit()
    results = evaluate_targets(
        [Target(metric="krippendorff_alpha", min=0.0), Target(metric="rater_agreement", per="rater", min=0.99, min_judgements=5)],
        audit,
    )
    written = write_audit_report(audit, results, tmp_path / "out")
    assert {"agreement_by_slice", "rater_agreement", "rater_bias", "pair_kappa", "agreement_levels"} <= set(written)
    html = written["html"].read_text()
    # Self-contained: the five plots are embedded, nothing is loaded from elsewhere.
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 5
    assert not re.search(r'src="(?!data:)', html)
    assert "Verdict: FAIL. 1 of 2 quality targets pass." in html and '<li class="FAIL">FAIL: rater_agreement' in html
    markdown = written["markdown"].read_text()
    assert "**Verdict: FAIL. 1 of 2 quality targets pass." in markdown
    assert "## Failing: rater_agreement >= 0.99 for every rater with >= 5 judgements" in markdown
    worst = results[1].failing.iloc[0]
    assert f"| {worst['who']} | {worst['value']:.3f} | {worst['n']} |" in markdown
    assert all(f"| {who} |" in markdown for who in results[1].failing["who"])  # listed in full
    assert "![rater_bias](rater_bias.png)" in markdown and (tmp_path / "out" / "rater_bias.png").stat().st_size > 5000
    raters = pd.read_csv(written["raters.csv"])
    assert len(raters) == 20 and raters["judgements"].sum() == 360


def test_figures_skip_what_there_is_nothing_to_plot_for():
    data = make_text_dataset(n_items=60, workers_per_item=3, seed=5)
    data = AnnotationSet(data.name, data.items, data.annotations)  # no slice columns
    audit = QualityAudit(n_boot=0, dawid_skene=False).fit(data)
    assert set(audit_figures(audit, min_judgements=1)) == {"rater_agreement", "rater_bias", "agreement_levels"}


def test_log_audit_to_mlflow_as_its_own_run(tmp_path):
    from mlflow import MlflowClient

    from smo_impact.report.audit import log_audit
    from smo_impact.tracking.mlflow_tracker import MlflowTracker

    audit = small_audit()
    results = evaluate_targets([Target(metric="krippendorff_alpha", min=0.99)], audit)
    written = write_audit_report(audit, results, tmp_path / "out")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = log_audit(MlflowTracker(uri, "audit"), audit, results, written, {"dataset": "toy"})
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "audit:toy"
    assert run.data.tags["smo.audit.verdict"] == "FAIL" and run.data.params["dataset"] == "toy"
    assert run.data.metrics["quality/krippendorff_alpha"] == audit.summary_["krippendorff_alpha"]
    assert run.data.metrics["targets/failed"] == 1.0
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(run_id, "audit")}
    assert {"audit/report.html", "audit/report.md", "audit/raters.csv", "audit/targets.csv", "audit/rater_bias.png"} <= artifacts


# -- the reader's report: verdict in words, contested items, empty tables, duplicated slices ------

def reference_alpha(annotations: pd.DataFrame) -> float:
    """Nominal alpha from the krippendorff package (rows: raters, columns: items)."""
    import krippendorff
    import numpy as np

    matrix = annotations.pivot(index="worker", columns="task", values="label").astype(float).to_numpy()
    return float(krippendorff.alpha(reliability_data=np.where(np.isnan(matrix), np.nan, matrix), level_of_measurement="nominal"))


def band(alpha: float) -> str:
    """Krippendorff's (2004) thresholds, written out independently of the report's code."""
    if alpha < 0.667:
        return "below 0.667: not reliable enough even for tentative conclusions (Krippendorff 2004)"
    if alpha < 0.8:
        return "between 0.667 and 0.8: reliable enough for tentative conclusions only (Krippendorff 2004)"
    return "at or above 0.8: reliable (Krippendorff 2004)"


@pytest.mark.parametrize("alpha,words", [
    (0.5, "below 0.667: not reliable enough even for tentative conclusions"),
    (0.667, "between 0.667 and 0.8: reliable enough for tentative conclusions only"),
    (0.79, "between 0.667 and 0.8"),
    (0.8, "at or above 0.8: reliable"),
    (-0.1, "below 0: the raters disagree more often than chance"),
    (float("nan"), "cannot be computed"),
])
def test_alpha_is_placed_against_krippendorffs_thresholds(alpha, words):
    from smo_impact.report.audit import alpha_in_words

    assert alpha_in_words(alpha).startswith(words)


# Raters right this often give alpha 0.37 (fails alpha >= 0.5), 0.54, 0.70 (tentative), 0.91 and 1.
@pytest.mark.parametrize("accuracy", [0.8, None, 0.92, 0.97, 1.0])
def test_verdict_states_each_target_with_the_number_it_rests_on(tmp_path, accuracy):
    data = make_text_dataset(n_items=120, workers_per_item=3, seed=4)
    annotations = data.annotations
    if accuracy is not None:  # relabel: each judgement equals the item's truth with this probability
        rng = np.random.default_rng(1)
        truth = data.items.set_index("task")["truth"].reindex(data.annotations["task"]).to_numpy()
        wrong = rng.random(len(truth)) > accuracy
        annotations = data.annotations.assign(label=np.where(wrong, 1 - truth, truth))
        data = AnnotationSet(data.name, data.items, annotations, labels=(0, 1), positive_label=1, slice_columns=("domain",))
    audit = QualityAudit(min_shared=2, n_boot=50, dawid_skene=False).fit(data)
    alpha = reference_alpha(annotations)
    results = evaluate_targets(
        [Target(metric="krippendorff_alpha", min=0.5), Target(metric="rater_agreement", per="rater", min=0.9, min_judgements=5)],
        audit,
    )
    markdown = write_audit_report(audit, results, tmp_path / "out")["markdown"].read_text()
    opening = markdown.split("## What the figures say")[0]
    passed = (alpha >= 0.5) + results[1].passed
    overall = f"Verdict: PASS. All 2 quality targets pass." if passed == 2 else f"Verdict: FAIL. {passed} of 2 quality targets pass."
    assert f"**{overall} Krippendorff's alpha is {alpha:.3f}, {band(alpha)}.**" in opening
    assert f"- {'PASS' if alpha >= 0.5 else 'FAIL'}: krippendorff_alpha >= 0.5: the dataset's value is {alpha:.3f}." in opening
    # Per-rater target: counted by hand from the rater table.
    judged = audit.raters_[audit.raters_["judgements"] >= 5]["rater_agreement"]
    missing = int((judged < 0.9).sum())
    if missing:
        line = f"- FAIL: rater_agreement >= 0.9 for every rater with >= 5 judgements: {missing} of {len(judged)} raters judged miss it (worst {judged.min():.3f}; listed below)."
    else:
        line = f"- PASS: rater_agreement >= 0.9 for every rater with >= 5 judgements: all {len(judged)} raters judged meet it (worst {judged.min():.3f})."
    assert line in opening
    # Each headline figure is said in words next to its value.
    assert f"| Krippendorff's alpha (nominal) | {alpha:.3f} | {band(alpha)}; 95% bootstrap interval" in markdown
    assert f"| flag rate | {annotations['label'].mean():.3f} | {annotations['label'].mean():.0%} of judgements flag the text (label 1) |" in markdown


def test_no_targets_says_nothing_is_judged(tmp_path):
    audit = small_audit()
    markdown = write_audit_report(audit, [], tmp_path / "out")["markdown"].read_text()
    assert markdown.split("\n## ")[1].startswith("Verdict\n\n**No quality targets were given (smo-impact audit --targets FILE)")


def test_most_contested_items_with_text_and_votes_after_a_content_note(tmp_path):
    from smo_impact.report.audit import CONTENT_NOTE

    data = make_text_dataset(n_items=120, workers_per_item=3, seed=4)
    written = write_audit_report(QualityAudit(n_boot=0, dawid_skene=False).fit(data), [], tmp_path / "out")
    # Brute force: with 3 raters per item, the contested items are the 2-1 splits, all tied on
    # entropy and judgements, so the first 15 task ids in sorted order.
    split = sorted(task for task, count in data.annotations.groupby("task")["label"].nunique().items() if count == 2)
    html = written["html"].read_text()
    markdown = written["markdown"].read_text()
    section = html.split("<h2>Most contested items</h2>")[1]
    assert section.index(CONTENT_NOTE) < section.index("<table>")
    texts = data.items.set_index("task")["text"]
    for task in split[:15]:
        count = data.annotations[data.annotations["task"] == task]["label"].value_counts()
        top, low = count.idxmax(), count.idxmin()
        assert f"| {task} | {texts[task]} | {top}: 2, {low}: 1 | 3 | 0.333 | 0.918 |" in markdown
    assert f"<td class=\"txt\">{split[15]}</td>" not in section


def test_empty_tables_say_why_they_are_empty(tmp_path):
    # Every rater agrees on every item, items carry no slice, and no two raters share 50 items.
    data = make_text_dataset(n_items=40, workers_per_item=3, seed=2)
    truth = data.items.set_index("task")["truth"]
    annotations = data.annotations.assign(label=truth.reindex(data.annotations["task"]).to_numpy())
    data = AnnotationSet(data.name, data.items, annotations, labels=(0, 1), positive_label=1)
    audit = QualityAudit(min_shared=50, n_boot=0, dawid_skene=False).fit(data)
    assert audit.slices_.empty and audit.pairs_.empty and audit.contested_.empty and audit.rater_slices_.empty
    written = write_audit_report(audit, [], tmp_path / "out")
    markdown, html = written["markdown"].read_text(), written["html"].read_text()
    for sentence in (
        "This dataset declares no slice columns and its raters have no attribute with 2 to 20 values",
        "No two raters share 50 or more items, so no pairwise kappa is computed",
        "No rater has 10 or more judgements within one slice (this dataset declares no item slice columns)",
        "Every item with two or more judgements got one label from all its raters: no item is contested.",
    ):
        assert sentence in markdown and sentence in html
    assert "(none)" not in markdown and "<table></table>" not in html and "<tbody></tbody>" not in html
    assert "Content note" not in html  # no texts quoted, no note
    assert "at or above 0.8: reliable" in markdown  # unanimous raters: alpha 1


def test_a_slice_that_repeats_another_partition_is_reported_once(tmp_path):
    data = make_text_dataset(n_items=120, workers_per_item=3, seed=4)
    items = data.items.assign(domain_code=data.items["domain"].map({"a": "A1", "b": "B2"}),
                              half=["first" if i < 60 else "second" for i in range(120)])
    workers = pd.DataFrame({"worker": [f"w{w}" for w in range(20)]})
    workers["group"] = ["target" if w < 10 else "control" for w in range(20)]
    workers["group_id"] = workers["group"].map({"target": "group1", "control": "group2"})
    data = AnnotationSet(data.name, items, data.annotations, labels=(0, 1), positive_label=1,
                         workers=workers, slice_columns=("domain", "domain_code", "half"))
    audit = QualityAudit(n_boot=0, dawid_skene=False).fit(data)
    assert audit.duplicate_slices_ == {"domain_code": "domain", "group_id": "group"}
    assert sorted(set(audit.slices_["slice"])) == ["domain", "group", "half"]
    assert set(audit.rater_slices_["slice"]) <= {"domain", "half"}
    markdown = write_audit_report(audit, [], tmp_path / "out")["markdown"].read_text()
    section = markdown.split("## Agreement by slice")[1].split("\n## ")[0]
    assert "domain_code is left out: it splits the items exactly as domain does." in section
    assert "group_id is left out: it splits the raters exactly as group does." in section
    assert "| group_id |" not in markdown and "| domain_code |" not in markdown


@pytest.mark.integration
def test_md_agreement_report_reads_as_the_raw_release_says(mirror, tmp_path):
    import json
    import math
    from collections import Counter

    from smo_impact.data.catalog import load_dataset
    from tests import raw_mirror

    audit = QualityAudit(n_boot=0, dawid_skene=False).fit(load_dataset("md-agreement"))
    markdown = write_audit_report(audit, [], tmp_path / "out")["markdown"].read_text()
    raw = raw_mirror.lewidi(mirror, "MD-Agreement")
    alpha = raw_mirror.alpha(raw)
    assert f"Krippendorff's alpha is {alpha:.3f}, {band(alpha)}." in markdown
    # The contested items, recomputed from the release files: the highest entropies, and each
    # listed item's votes and text as the JSON has them.
    texts = {}
    for split in raw_mirror.SPLITS:
        for item_id, record in json.loads((mirror / "lewidi-2023" / f"MD-Agreement_{split}.json").read_text()).items():
            texts[f"{split}/{item_id}"] = record["text"]
    votes = {task: Counter(labels.tolist()) for task, labels in raw.groupby("task")["label"]}
    entropy = {task: -sum(v / sum(c.values()) * math.log2(v / sum(c.values())) for v in c.values()) for task, c in votes.items()}
    top = sorted(entropy.values(), reverse=True)[: len(audit.contested_)]
    assert len(audit.contested_) == 15 and list(audit.contested_["entropy"]) == pytest.approx(top)
    for row in audit.contested_.itertuples():
        task = row.task.replace("-", "/", 1)  # the loader's dev-107 is the release's dev file, item 107
        listed = Counter({int(k): int(v) for k, v in (part.split(": ") for part in row.votes.split(", "))})
        assert listed == votes[task] and row.text == texts[task]
    assert "> Content note:" in markdown
