"""The daily commands of issue 19: results, compare, run --dry-run, init, shell completion."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from tests.test_cli import EXE, _own_csv_experiment, cli


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One finished own-data experiment ('gated', 2 arms x 1 seed) in a fresh store."""
    tmp = tmp_path_factory.mktemp("workflow")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'm.db'}"}
    config = _own_csv_experiment(tmp, {"max_new_false_negatives": 1000})
    result = cli("run", str(config), cwd=tmp, env=env)
    assert result.returncode == 0, result.stderr
    return tmp, env, config, result.stdout


def _count_runs(env) -> int:
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


def test_results_prints_the_stored_summary_without_rerunning(stored):
    tmp, env, _, run_out = stored
    before = _count_runs(env)
    result = cli("results", "gated", cwd=tmp, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "gated: test split" in out and "macro-F1" in out and "│ noisy" in out and "passed" in out
    # The same table and takeaway as the run printed, read back from the store.
    table = lambda text: [line for line in text.splitlines() if line.startswith("│")]  # noqa: E731
    assert table(out) == table(run_out)
    takeaway = next(line for line in run_out.splitlines() if line.startswith("Takeaway: "))
    assert takeaway in out
    assert "/#/experiments/" in out and _count_runs(env) == before


def test_compare_puts_two_experiments_arms_side_by_side(stored):
    tmp, env, config, _ = stored
    other = cli("run", str(config), "--set", "name=gated_c2", "--set", "model.params.C=0.5", cwd=tmp, env=env)
    assert other.returncode == 0, other.stderr
    result = cli("compare", "gated", "gated_c2", cwd=tmp, env=env)
    assert result.returncode == 0, result.stderr
    assert "A = gated (test), B = gated_c2 (test)" in result.stdout
    assert "macro_f1 A" in result.stdout and "macro_f1 B-A" in result.stdout
    # B-A is checked against the two stored summaries read with MLflow's own client.
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])

    def control_f1(name):
        experiment = client.get_experiment_by_name(name).experiment_id
        runs = client.search_runs([experiment], "tags.`smo.arm` = 'control'")
        return runs[0].data.metrics["test/macro_f1"]

    line = next(line for line in result.stdout.splitlines() if line.startswith("│ control"))
    cells = [c.strip() for c in line.strip("│").split("│")]
    assert float(cells[4]) == pytest.approx(control_f1("gated_c2") - control_f1("gated"), abs=0.0011)
    missing = cli("compare", "gated", "nope", cwd=tmp, env=env)
    assert missing.returncode == 2 and "no experiment or run 'nope'" in missing.stderr


def test_dry_run_lists_the_plan_what_is_reused_and_an_estimate(stored):
    tmp, env, config, _ = stored
    before = _count_runs(env)
    result = cli("run", str(config), "--dry-run", "--set", "seeds=[0,1]", cwd=tmp, env=env)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "gated: 4 planned run(s)" in out
    assert "dry run: 2 to compute, 2 to reuse from" in out
    assert "estimate: ~" in out and "median of 2 finished tfidf_logreg run(s) in the store" in out
    assert "noisy s1" in out and _count_runs(env) == before  # nothing logged
    fresh = cli("run", str(config), "--dry-run", cwd=tmp, env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'none.db'}"})
    assert fresh.returncode == 0, fresh.stderr
    assert "2 to compute, 0 to reuse" in fresh.stdout and "estimate: unknown" in fresh.stdout
    assert not (tmp / "none.db").exists()


def test_init_for_a_builtin_dataset_writes_a_valid_config(tmp_path):
    result = cli("init", "md-agreement", "--out", str(tmp_path / "e.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "e.yaml").read_text())
    assert config["dataset"] == {"name": "md-agreement"} and set(config["arms"]) == {"control", "label_noise"}
    assert "ok: valid" in result.stdout
    again = cli("init", "md-agreement", "--out", str(tmp_path / "e.yaml"), cwd=tmp_path)
    assert again.returncode == 2 and "exists; choose another --out or add --force" in again.stderr
    typo = cli("init", "md-agreemnt", cwd=tmp_path)
    assert typo.returncode == 2 and "Did you mean 'md-agreement'?" in typo.stderr


def test_init_detects_a_long_file_and_its_columns(tmp_path):
    from tests.conftest import make_text_dataset

    data = make_text_dataset(120)
    table = data.annotations.merge(data.items[["task", "text", "split"]], on="task")
    table = table.rename(columns={"task": "item_id", "worker": "annotator", "label": "answer", "text": "comment"})
    table["answer"] = table["answer"].map({0: "ok", 1: "toxic"})
    table.to_csv(tmp_path / "mine.csv", index=False)
    result = cli("init", "mine.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert config["dataset"]["layout"] == "long"
    assert config["dataset"]["column_map"] == {"task": "item_id", "worker": "annotator", "label": "answer", "text": "comment"}
    assert config["dataset"]["labels"] == ["ok", "toxic"]
    head = (tmp_path / "experiment.yaml").read_text().split("\nname:")[0]
    assert "# - layout: long (a row per judgement)" in head and "# - column split: 'split'" in head
    # The scaffold runs as written.
    check = cli("validate", "experiment.yaml", "--data", cwd=tmp_path)
    assert check.returncode == 0, check.stderr


def test_init_detects_a_wide_file(tmp_path):
    pd.DataFrame({
        "id": [f"t{i}" for i in range(6)], "text": [f"text {i}" for i in range(6)], "split": ["train"] * 4 + ["test"] * 2,
        "rater_1": [0, 1, 0, 1, 0, 1], "rater_2": [0, 1, 1, 1, 0, 0], "rater_3": [1, 1, 0, 1, 0, 1],
    }).to_csv(tmp_path / "wide.csv", index=False)
    result = cli("init", "wide.csv", "--out", "w.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    dataset = yaml.safe_load((tmp_path / "w.yaml").read_text())["dataset"]
    assert dataset["layout"] == "wide" and dataset["rater_columns"] == ["rater_1", "rater_2", "rater_3"]
    assert dataset["column_map"] == {"task": "id"} and dataset["labels"] == [0, 1]


def test_shell_completion_is_offered_and_completes_commands(tmp_path):
    import subprocess

    script = cli("--show-completion", "bash", cwd=tmp_path)
    assert script.returncode == 0 and "_SMO_IMPACT_COMPLETE" in script.stdout
    assert "--install-completion" in cli("--help", cwd=tmp_path).stdout
    env = {**os.environ, "_SMO_IMPACT_COMPLETE": "complete_bash", "COMP_WORDS": "smo-impact re", "COMP_CWORD": "1"}
    completed = subprocess.run([EXE], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert completed.stdout.split() == ["results", "report"]


def _in_a_terminal(args: list[str], cwd, env: dict, timeout: float = 300) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as stdout and stderr (rich draws live bars only on a
    terminal); return its exit code and what it drew, escape codes removed."""
    import pty
    import re
    import select
    import subprocess
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, env={**os.environ, **env, "TERM": "xterm", "COLUMNS": "160"},
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the command closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    code = proc.wait(timeout=60)
    text = b"".join(chunks).decode("utf-8", "replace")
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@pytest.mark.slow
def test_fine_tuning_shows_its_epochs_and_steps_in_the_run_bar(tmp_path):
    config = _own_csv_experiment(tmp_path, {})
    spec = yaml.safe_load(config.read_text())
    spec["arms"] = {"control": ["aggregate"]}
    spec["model"] = {"name": "finetune", "params": {"encoder": "tiny", "max_length": 32, "batch_size": 8,
                                                     "epochs": 2, "patience": 2, "learning_rate": 1e-2}}
    config.write_text(yaml.safe_dump(spec))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}", "SMO_IMPACT_TORCH_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    code, drawn = _in_a_terminal([EXE, "run", str(config)], tmp_path, env)
    assert code == 0, drawn[-3000:]
    # 180 training texts in batches of 8: 23 steps an epoch, 46 planned; the row sits under the run bar.
    assert "training: epoch 1/2, step" in drawn and "/46" in drawn, drawn[-3000:]
    assert "training: epoch 2/2, step" in drawn
    assert "fine-tuning tiny" not in drawn  # no second bar of the model's own
