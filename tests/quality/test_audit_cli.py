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
    assert run.data.metrics["quality/krippendorff_alpha"] == pytest.approx(0.347462, abs=1e-6)
