"""The audit report (smo_impact/report/audit.py): files, embedded plots, targets and failures."""

import re

import pandas as pd

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
    assert "1 of 2 targets pass." in html and '<td class="FAIL">FAIL</td>' in html
    markdown = written["markdown"].read_text()
    assert "**1 of 2 targets pass.**" in markdown
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
