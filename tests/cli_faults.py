"""A generated experiment on disk and the ``smo-impact`` command in a child process, for the fault
tests (copied, moved and read-only stores, unreachable servers, SIGTERM, concurrent sweeps).

The data is generated (``make_text_dataset``), so these tests need no data mirror.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from mlflow import MlflowClient

from tests.conftest import REPO, make_text_dataset

EXE = str(Path(sys.executable).parent / "smo-impact")


def write_experiment(folder: Path, name: str = "toy", seeds=(0, 1), rates=(0.2, 0.4), **extra) -> Path:
    """A toy CSV (``toy.csv``) and an experiment YAML (``<name>.yaml``) over it in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = make_text_dataset(300)
    rows = data.annotations.merge(data.items[["task", "text", "split", "domain"]], on="task")
    rows.to_csv(folder / "toy.csv", index=False)
    config = {
        "name": name,
        "dataset": {"name": "toy", "path": str(folder / "toy.csv"), "labels": [0, 1], "positive_label": 1},
        "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.1}}]},
        "sweep": {"noisy": {"noise.rate": list(rates)}},
        "seeds": list(seeds),
        "evaluation": {"split": "test"},
        **extra,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment, importing the package from this checkout, without a tracking URI."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def smo(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``smo-impact ARGS`` to completion."""
    return subprocess.run([EXE, *args], cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=timeout)


def start(*args: str, cwd: Path, **popen) -> subprocess.Popen:
    """Start ``smo-impact ARGS`` (stdout and stderr piped as text unless given)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([EXE, *args], cwd=cwd, env=child_env(), text=True, **popen)


def error_lines(stderr: str) -> list[str]:
    """The non-empty lines of a command's stderr (an error must be exactly one)."""
    return [line for line in stderr.splitlines() if line.strip()]


def runs(store: str, experiment: str, kind: str = "run") -> list:
    """Every run of ``smo.kind`` ``kind`` in an experiment (none while it does not exist)."""
    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return client.search_runs([found.experiment_id], f"tags.`smo.kind` = '{kind}'", max_results=5000)


def section(markdown: str, title: str) -> str:
    """One ``## title`` section of a Markdown report."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    assert match, f"no section {title!r}"
    return match.group(1)
