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


def test_validate_imports_no_heavy_module(tmp_path):
    """`smo-impact validate` reads configs only: scikit-learn, MLflow, torch and matplotlib cost
    seconds to import (issue 16: validate < 1.5 s), and are imported where they are used."""
    heavy = ("sklearn", "scipy.stats", "mlflow", "torch", "transformers", "matplotlib")
    code = (
        "import sys\nfrom smo_impact.cli import app\n"
        f"try:\n    app(['validate', {str(_write(tmp_path, GOOD))!r}])\nexcept SystemExit as exc:\n    assert not exc.code\n"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_validate_reports_every_problem_and_exits_2(tmp_path):
    bad = {**GOOD, "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noize": {"rate": 2}}, {"noise": {"rate": 2}}]}}
    result = cli("validate", str(_write(tmp_path, bad)), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'exp.yaml'}: 2 problem(s)",
        "  - arms.noisy[1]: Unknown treatment 'noize'. Did you mean 'noise'? Available: "
        + ", ".join(sorted(__import__("smo_impact.treatments", fromlist=["TREATMENTS"]).TREATMENTS.names())) + ".",
        "  - arms.noisy[2].noise.rate: Input should be less than or equal to 1 (got 2)",
    ]


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
    assert lines == [
        f"error: Dataset 'md-agreement': file {(empty / 'lewidi-2023' / 'MD-Agreement_train.json').resolve()} not found "
        f"(SMO_IMPACT_DATA_DIR={empty} has no such file)."
    ]
    assert "Traceback" not in result.stderr
    if (tmp_path / "m.db").exists():
        client = MlflowClient(store)
        assert all(r.info.status != "RUNNING" for e in client.search_experiments() for r in client.search_runs([e.experiment_id]))


def test_list_shows_components(tmp_path):
    result = cli("list", cwd=tmp_path)
    from smo_impact.data.catalog import DATASETS
    from smo_impact.models import MODELS
    from smo_impact.treatments import TREATMENTS

    assert result.returncode == 0
    listed = set(result.stdout.split())
    assert set(TREATMENTS.names()) | set(MODELS.names()) | set(DATASETS.names()) <= listed


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
    assert "gate failed (see the gate lines above)" in result.stderr
    # Issue 19: the direct link to the runs table (MLflow 3 opens an experiment on its GenAI overview).
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("gated").experiment_id
    parent = client.search_runs([experiment], "tags.`smo.kind` = 'experiment'")[0].info.run_id
    assert f"  runs table: http://127.0.0.1:5000/#/experiments/{experiment}/runs\n" in result.stdout
    assert f"  this sweep: http://127.0.0.1:5000/#/experiments/{experiment}/runs/{parent}\n" in result.stdout
    assert "Takeaway: Noisy changes macro-F1 by " in result.stdout


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
    # Reference: the release's train split file and all judgements, read without smo_impact.
    from tests import raw_mirror

    raw = raw_mirror.lewidi(mirror, "HS-Brexit")
    train = raw[raw["task"].str.startswith("train/")]
    rows = {cells[0]: cells[1:] for line in out.splitlines()
            if len(cells := [c.strip() for c in line.strip().strip("│").split("│")]) > 1}
    assert rows["train"] == [str(train["task"].nunique()), str(len(train)), str(train["worker"].nunique())]
    hateful = int((raw["label"] == 1).sum())
    assert rows["1"] == [str(hateful), f"{100 * hateful / len(raw):.1f}%"]  # hate speech judgements
    unknown = cli("datasets", "show", "hs-brexti", cwd=tmp_path, env={"SMO_IMPACT_DATA_DIR": str(mirror)})
    assert unknown.returncode == 2
    assert "Did you mean 'hs-brexit'?" in unknown.stderr


def test_run_yes_allows_more_runs_than_execution_max_runs(tmp_path):
    config = _write(tmp_path, {**GOOD, "dataset": {"name": "mine", "path": "nope.csv", "labels": [0, 1]}})
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    refused = cli("run", str(config), "--set", "execution.max_runs=1", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "execution.max_runs: the config plans 2 runs" in refused.stderr
    allowed = cli("run", str(config), "--set", "execution.max_runs=1", "--yes", cwd=tmp_path, env=env)
    assert allowed.returncode == 2  # past the limit, on to the data, which is missing
    assert "nope.csv: file not found" in allowed.stderr and "max_runs" not in allowed.stderr


def test_warnings_and_validate_print_user_values_verbatim(tmp_path, capsys, monkeypatch):
    """Rich markup ('[/bold]') and emoji codes (':x:') in a user's value print as written."""
    from smo_impact import cli as cli_module
    from smo_impact.data.validation import DataWarning

    cli_module._show_data_warning("worker '[/bold]' with 1 judgement, label ':x:' [red]", DataWarning, "f.py", 1)
    assert capsys.readouterr().err.strip() == "warning: worker '[/bold]' with 1 judgement, label ':x:' [red]"
    bad = _write(tmp_path, {**GOOD, "arms": {"control": ["aggregate"], "n": ["aggregate", {"noise": {"rate": "[/bold] :x:"}}],
                                             "m": ["aggregate", {"noise": {"rate": "[b]"}}]}})
    monkeypatch.setattr(sys, "argv", ["smo-impact", "validate", str(bad)])
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  - arms.m[1].noise.rate: Input should be a valid number, unable to parse string as a number (got '[b]')",
        "  - arms.n[1].noise.rate: Input should be a valid number, unable to parse string as a number (got '[/bold] :x:')",
    ]


def test_validate_data_loads_and_checks_the_data_without_training(tmp_path):
    import shutil

    shutil.copy(REPO / "tests" / "bad_inputs" / "data" / "good.csv", tmp_path / "good.csv")
    config = _write(tmp_path, {
        "name": "own",
        "dataset": {"name": "mine", "path": "good.csv", "labels": [0, 1],
                    "column_map": {"task": "item", "worker": "rater", "label": "answer"}},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.2}}]},
        "sweep": {"noisy": {"noise.rate": [0.1, 0.2]}},
        "seeds": [0, 1],
    })
    result = cli("validate", str(config), "--data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "data: mine loads and passes its checks (12 items, 36 judgements); every arm's steps ran on it at each "
        "grid point (3, seed 0) and left training labels of at least two classes; nothing was featurized or trained"
    )
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_validate_data_reports_every_infeasible_grid_point(tmp_path):
    import shutil

    shutil.copy(REPO / "tests" / "bad_inputs" / "data" / "good.csv", tmp_path / "good.csv")
    pool = {"rater_pool": {"by": "attribute", "column": "worker", "values": ["r0"]}}
    config = _write(tmp_path, {
        "name": "own",
        "dataset": {"name": "mine", "path": "good.csv", "labels": [0, 1],
                    "column_map": {"task": "item", "worker": "rater", "label": "answer"}},
        "arms": {"control": ["aggregate"], "pool": [pool, "aggregate"], "other": [pool, "aggregate"]},
        "sweep": {"pool": {"rater_pool.values": [["r0"], ["nobody"]]}, "other": {"rater_pool.values": [["ghost"]]}},
    })
    assert cli("validate", str(config), cwd=tmp_path).returncode == 0  # the config alone is fine
    result = cli("validate", str(config), "--data", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {config}: 2 problem(s)",
        "  - arm 'other', step 'rater_pool': rater_pool: no rater has worker in ['ghost']; values present: r0, r1, r2; "
        "pick rater_pool.values from those at rater_pool.values=['ghost']",  # arms in file order (safe_dump sorts)
        "  - arm 'pool', step 'rater_pool': rater_pool: no rater has worker in ['nobody']; values present: r0, r1, r2; "
        "pick rater_pool.values from those at rater_pool.values=['nobody']",
    ]


def test_run_register_registers_the_best_arms_model(tmp_path):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    config = _own_csv_experiment(tmp_path, {})
    result = cli("run", str(config), "--register", "toxicity-clf", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    version = client.get_model_version("toxicity-clf", "1")
    best = client.get_run(version.run_id)
    others = client.search_runs([best.info.experiment_id], "tags.`smo.kind` = 'run'")
    assert best.data.metrics["test/macro_f1"] == max(r.data.metrics["test/macro_f1"] for r in others)
    arm = best.data.tags["smo.arm"]
    assert f"registered model 'toxicity-clf' version 1: the best arm, {arm} (run {best.info.run_id}, models:/" in result.stdout
    assert "Successfully registered" not in result.stderr
