"""Several commands starting at once on a fresh SQLite store race to create its tables and the same
experiment; every one of them must get the store, and there must be one experiment."""

from __future__ import annotations

import subprocess
import sys

from mlflow import MlflowClient

OPEN = "import sys; from smo_impact.tracking.mlflow_tracker import MlflowTracker; print(MlflowTracker(sys.argv[1], 'shared').experiment_id)"


def test_concurrent_starts_on_a_fresh_store(tmp_path):
    store = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", OPEN, store], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], [err[-500:] for _, _, err in results]
    assert len({out.strip() for _, out, _ in results}) == 1  # the same experiment for all
    assert [e.name for e in MlflowClient(store).search_experiments() if e.name == "shared"] == ["shared"]
