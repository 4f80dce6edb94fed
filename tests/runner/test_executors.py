"""All executors give identical metrics for the same config."""

from __future__ import annotations

import numpy as np
import pytest

from smo_impact.config import validate
from smo_impact.errors import ConfigError
from smo_impact.runner.executors import LocalExecutor, SequentialExecutor, make_executor
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset

CONFIG = {
    "name": "exec",
    "dataset": {"name": "md-agreement"},
    "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.1}}]},
    "sweep": {"noisy": {"noise.rate": [0.1, 0.3]}},
    "seeds": [0, 1],
    "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
}


def _metrics(result):
    frame = result.runs.set_index("run_name").sort_index()
    cols = sorted(c for c in frame.columns if c.startswith(("test/", "delta/", "treatment/")))
    return frame[cols].to_numpy(float)


def test_local_pool_matches_sequential(tmp_path):
    data = make_text_dataset(300)
    config = validate(CONFIG)
    store = f"sqlite:///{tmp_path / 'm.db'}"
    seq = run_experiment(config, lambda: MlflowTracker(store, "seq"), dataset=data, executor=SequentialExecutor())
    pool = run_experiment(config, lambda: MlflowTracker(store, "pool"), dataset=data, executor=LocalExecutor(2))
    assert len(seq.runs) == len(pool.runs) == 6
    assert np.array_equal(_metrics(seq), _metrics(pool), equal_nan=True)  # bit-identical


def test_ray_matches_sequential(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'smo-impact[ray]'")
    from smo_impact.runner.executors import RayExecutor

    data = make_text_dataset(200)
    config = validate({**CONFIG, "sweep": {"noisy": {"noise.rate": [0.2]}}, "seeds": [0]})
    store = f"sqlite:///{tmp_path / 'm.db'}"
    seq = run_experiment(config, lambda: MlflowTracker(store, "seq"), dataset=data)
    ray_result = run_experiment(config, lambda: MlflowTracker(store, "ray"), dataset=data, executor=RayExecutor(workers=2))
    assert np.array_equal(_metrics(seq), _metrics(ray_result), equal_nan=True)


def test_unknown_executor_is_a_config_error():
    with pytest.raises(ConfigError, match="Unknown executor 'lokal'. Did you mean 'local'?"):
        make_executor("lokal")


def _progress_goes_to_a_callback() -> bool:
    from smo_impact.models.training import training_progress

    return training_progress() is not None


def test_pool_workers_draw_no_training_bar_over_the_parents_run_bar():
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from smo_impact.runner.executors import _init_worker

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(None,)) as pool:
        assert pool.submit(_progress_goes_to_a_callback).result(timeout=120)
    assert not _progress_goes_to_a_callback()  # this process still draws its own (no CLI bar here)
