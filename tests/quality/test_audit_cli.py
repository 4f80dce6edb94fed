"""`smo-impact audit` as a user meets it: exit codes, failing raters printed, MLflow run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).parent / "smo-impact")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "audit", *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=300)


def test_bad_targets_file_is_one_line_error_before_any_data_is_read(tmp_path):
    targets = tmp_path / "t.yaml"
    targets.write_text("targets:\n  - {metric: alpah, min: 0.6}\n")
    result = cli("no-such-dataset", "--targets", str(targets), cwd=tmp_path)
    assert result.returncode == 2
    assert "targets[0]: Unknown metric 'alpah' for per=dataset." in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_audit_gates_on_targets_and_lists_failing_raters(mirror, tmp_path):
    targets = tmp_path / "t.yaml"
    # HS-Brexit: alpha 0.347; the control-group raters flag more than the others on the same items.
    targets.write_text(
        "targets:\n"
        "  - {metric: krippendorff_alpha, min: 0.3}\n"
        "  - {metric: flag_bias, per: rater, max: 0.05, min_judgements: 50}\n"
    )
    result = cli("hs-brexit", "--targets", str(targets), "--out", "report", "--bootstrap", "50", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "failing flag_bias <= 0.05 for every rater with >= 50 judgements:" in result.stdout
    assert "  - Ann4: " in result.stdout
    assert (tmp_path / "report" / "report.html").is_file() and (tmp_path / "report" / "report.md").is_file()


@pytest.mark.slow
@pytest.mark.integration
def test_audit_logs_its_own_mlflow_run_and_passes_when_targets_hold(mirror, tmp_path):
    from mlflow import MlflowClient

    targets = tmp_path / "t.yaml"
    targets.write_text("targets:\n  - {metric: krippendorff_alpha, min: 0.3}\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = cli("hs-brexit", "--targets", str(targets), "--out", "report", "--bootstrap", "50",
                 "--mlflow", "--tracking-uri", uri, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("audit").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "audit:hs-brexit"
    assert run.data.tags["smo.audit.verdict"] == "PASS"
    # Reference: krippendorff's alpha on HS-Brexit's raw release files, read without smo_impact.
    from tests import raw_mirror

    expected = raw_mirror.alpha(raw_mirror.lewidi(mirror, "HS-Brexit"))
    assert run.data.metrics["quality/krippendorff_alpha"] == pytest.approx(expected, abs=1e-9)


def test_audit_of_your_own_files_through_a_dataset_block_or_an_experiment(tmp_path, monkeypatch):
    import pandas as pd
    import yaml
    from typer.testing import CliRunner

    from smo_impact.cli import app

    # 6 items x 3 raters; r3 disagrees on i2 and i5 only.
    rows = []
    for i in range(6):
        for rater in ("r1", "r2", "r3"):
            toxic = (i % 2 == 0) != (rater == "r3" and i in (2, 5))
            rows.append({"item_id": f"i{i}", "rater_id": rater, "answer": "toxic" if toxic else "not_toxic",
                         "comment_text": f"text {i}", "fold": "train" if i < 4 else "test", "language": "en" if i < 3 else "de"})
    pd.DataFrame(rows).to_csv(tmp_path / "annotations.csv", index=False)
    block = {
        "name": "mine", "path": "annotations.csv", "layout": "long",
        "column_map": {"task": "item_id", "worker": "rater_id", "label": "answer", "text": "comment_text", "split": "fold"},
        "labels": ["not_toxic", "toxic"], "positive_label": "toxic", "slice_columns": ["language"],
    }
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(block))
    experiment = {"name": "e", "dataset": {"from": "mine.yaml"}, "arms": {"control": ["aggregate"]}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    monkeypatch.chdir(tmp_path)

    for source in ("mine.yaml", "exp.yaml"):
        result = CliRunner().invoke(app, ["audit", source, "--out", f"out-{source}", "--bootstrap", "0"])
        assert result.exit_code == 0, result.output
        slices = pd.read_csv(tmp_path / f"out-{source}" / "slices.csv").set_index("value")
        # en: i0 i1 i2 with r3 off on i2 -> (1 + 1 + 1/3) / 3; de: i3 i4 i5 with r3 off on i5.
        assert slices.loc["en", "percent_agreement"] == slices.loc["de", "percent_agreement"] == (2 + 1 / 3) / 3
        raters = pd.read_csv(tmp_path / f"out-{source}" / "raters.csv").set_index("worker")
        # r1 on i2 and i5: the others split 1-1, a tie worth 1/2 -> (4 + 1/2 + 1/2) / 6
        assert raters.loc["r3", "rater_agreement"] == 4 / 6 and raters.loc["r1", "rater_agreement"] == 5 / 6
