"""The command line as a user meets it: exit codes, one-line errors, nothing left RUNNING."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

REPO = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).parent / "smo-impact")


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([EXE, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)


def _write(tmp_path: Path, data: dict, name="exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


GOOD = {
    "name": "cli",
    "dataset": {"name": "md-agreement"},
    "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.2}}]},
    "seeds": [0],
}


def test_help_does_not_import_torch_or_mlflow():
    code = "import sys; from smo_impact import cli; print('torch' in sys.modules, 'mlflow' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False False"


def test_validate_reports_every_problem_and_exits_2(tmp_path):
    bad = {**GOOD, "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noize": {"rate": 2}}]}, "seeds": "x"}
    result = cli("validate", str(_write(tmp_path, bad)), cwd=tmp_path)
    assert result.returncode == 2
    assert "seeds: Input should be a valid list" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_ok(tmp_path):
    result = cli("validate", str(_write(tmp_path, GOOD)), "--set", "seeds=[0,1,2]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "6 runs" in result.stdout


def test_run_with_bad_config_is_one_line_exit_2_and_no_run(tmp_path):
    store = f"sqlite:///{tmp_path / 'm.db'}"
    result = cli("run", str(_write(tmp_path, {**GOOD, "modle": {}})), cwd=tmp_path, env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "modle: unknown key" in lines[0]
    assert not (tmp_path / "m.db").exists()  # validated before touching the store


def test_run_with_missing_dataset_exits_2_and_leaves_nothing_running(tmp_path):
    store = f"sqlite:///{tmp_path / 'm.db'}"
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    result = cli("run", str(_write(tmp_path, GOOD)), cwd=tmp_path,
                 env={"MLFLOW_TRACKING_URI": store, "SMO_IMPACT_DATA_DIR": str(empty)})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Dataset 'md-agreement': file" in lines[0] and "not found" in lines[0]
    assert "Traceback" not in result.stderr
    if (tmp_path / "m.db").exists():
        client = MlflowClient(store)
        assert all(r.info.status != "RUNNING" for e in client.search_experiments() for r in client.search_runs([e.experiment_id]))


def test_list_shows_components(tmp_path):
    result = cli("list", cwd=tmp_path)
    assert result.returncode == 0
    for name in ("aggregate", "noise", "tfidf_logreg", "md-agreement"):
        assert name in result.stdout


@pytest.mark.integration
def test_run_end_to_end_prints_summary(tmp_path, mirror):
    store = f"sqlite:///{tmp_path / 'm.db'}"
    result = cli("run", str(_write(tmp_path, GOOD)), "--set", "arms.noisy.1.noise.rate=0.3", cwd=tmp_path,
                 env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr
    assert "macro-F1" in result.stdout and "make ui" in result.stdout
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("cli").experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    noisy = next(r for r in runs if r.data.tags.get("smo.arm") == "noisy")
    assert noisy.data.params["treatment.noise.rate"] == "0.3"


def _own_csv_experiment(tmp_path: Path, gates: dict) -> Path:
    """A tiny own-data experiment (long CSV, no mirror needed) with regression gates."""
    from tests.conftest import make_text_dataset

    data = make_text_dataset(300)
    table = data.annotations.merge(data.items[["task", "text", "split", "domain"]], on="task")
    table.to_csv(tmp_path / "ann.csv", index=False)
    config = {
        "name": "gated",
        "dataset": {"name": "toy", "path": str(tmp_path / "ann.csv"), "layout": "long", "labels": [0, 1],
                    "positive_label": 1, "slice_columns": ["domain"]},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.4}}]},
        "seeds": [0],
        "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
        "evaluation": {"bootstrap": 100, "gates": gates},
    }
    return _write(tmp_path, config)


def test_run_gate_exits_3_when_a_gate_fails(tmp_path):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    failing = _own_csv_experiment(tmp_path, {"max_new_false_negatives": 0})
    result = cli("run", str(failing), "--gate", cwd=tmp_path, env=env)
    assert result.returncode == 3, result.stderr
    assert "gate noisy [-]: failed: test: mean new false negatives" in " ".join(result.stdout.split())
    assert "regression gate failed" in result.stderr


@pytest.mark.slow
def test_run_gate_exits_0_when_gates_pass_or_without_gate_flag(tmp_path):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    # Without --gate a failed verdict is shown but the exit code stays 0.
    result = cli("run", str(_own_csv_experiment(tmp_path, {"max_new_false_negatives": 0})), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "gate noisy [-]: failed" in result.stdout
    passing = _own_csv_experiment(tmp_path, {"max_new_false_negatives": 10_000})
    result = cli("run", str(passing), "--gate", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "gate noisy [-]: passed" in result.stdout


def test_run_gate_without_gates_is_a_config_error(tmp_path):
    result = cli("run", str(_write(tmp_path, GOOD)), "--gate", cwd=tmp_path)
    assert result.returncode == 2
    assert "--gate: evaluation.gates sets no gate" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.integration
def test_datasets_show_prints_the_full_summary(mirror, tmp_path):
    done = cli("datasets", "show", "hs-brexit", cwd=tmp_path, env={"SMO_IMPACT_DATA_DIR": str(mirror)})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in ("hs-brexit  (digest", "answer: offensive", "rater: group", "per split", "label distribution"):
        assert expected in out
    assert "│ train │   784 │       4704 │      6 │" in out  # items, judgements, raters of the train split
    assert "│ 1     │        869 │ 12.9% │" in out  # hate speech judgements
    unknown = cli("datasets", "show", "hs-brexti", cwd=tmp_path, env={"SMO_IMPACT_DATA_DIR": str(mirror)})
    assert unknown.returncode == 2
    assert "Did you mean 'hs-brexit'?" in unknown.stderr
