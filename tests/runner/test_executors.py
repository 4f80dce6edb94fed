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

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_init_worker) as pool:
        assert pool.submit(_progress_goes_to_a_callback).result(timeout=120)
    assert not _progress_goes_to_a_callback()  # this process still draws its own (no CLI bar here)


def test_shared_context_round_trips_with_its_arrays_mapped_copy_on_write(tmp_path):
    import pandas as pd
    import scipy.sparse as sp

    from smo_impact.runner.executors import read_shared, write_shared

    rng = np.random.default_rng(0)
    dense = rng.random((50, 8)).astype(np.float32)
    sparse = sp.random(40, 30, density=0.1, format="csr", random_state=1)
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(40)], "label": rng.integers(0, 3, 40)})
    path = write_shared({"dense": dense, "sparse": sparse, "frame": frame}, tmp_path)
    assert (tmp_path / "arrays.bin").stat().st_size >= dense.nbytes + sparse.data.nbytes  # out of band
    first, second = read_shared(path), read_shared(path)
    assert np.array_equal(first["dense"], dense) and first["dense"].dtype == np.float32
    assert (first["sparse"] != sparse).nnz == 0
    pd.testing.assert_frame_equal(first["frame"], frame)
    # A worker may change its copy; the file and another worker's view do not move.
    first["dense"][0, 0] = -1.0
    assert second["dense"][0, 0] == dense[0, 0] and read_shared(path)["dense"][0, 0] == dense[0, 0]


def test_shared_object_without_arrays_round_trips(tmp_path):
    from smo_impact.runner.executors import read_shared, write_shared

    assert read_shared(write_shared({"a": [1, 2], "b": "x"}, tmp_path)) == {"a": [1, 2], "b": "x"}


def test_a_run_computes_with_one_blas_thread_whatever_the_process_has(monkeypatch):
    # OpenBLAS sums in an order that depends on its thread count: a dense model's metrics moved in
    # the 10th decimal between 1 and 2 threads (embeddings sweep). compute pins it for every executor.
    from threadpoolctl import threadpool_info, threadpool_limits

    from smo_impact.runner import executors

    seen = []
    monkeypatch.setattr(executors, "execute_run", lambda spec, context: seen.append(
        [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]))
    with threadpool_limits(2, user_api="blas"):
        executors.compute(None, None)
        monkeypatch.setenv("SMO_IMPACT_BLAS_THREADS", "2")
        executors.compute(None, None)
        after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert seen[0] and set(seen[0]) == {1}
    assert set(seen[1]) == {2}
    assert set(after) == {2}  # the process's own setting is back after the run


def test_stopping_a_busy_pool_leaves_no_traceback_in_its_manager_thread(monkeypatch):
    # Ctrl-C mid-sweep stops the pool at once. Cancelling the queued futures and then killing the
    # workers made the pool's manager thread set BrokenProcessPool on cancelled futures: an
    # InvalidStateError traceback ("Exception in thread Thread-1") on the user's terminal. This
    # test failed so before the fix (seen in 1 of 12 Ctrl-C runs under load, test_resume).
    import threading
    import time

    from smo_impact.runner.executors import LocalExecutor

    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(repr(args.exc_value)))
    pool = LocalExecutor(1)
    pool.start()
    futures = [pool._pool.submit(time.sleep, 30) for _ in range(6)]  # one runs, the rest queue
    time.sleep(1.0)
    manager = pool._pool._executor_manager_thread
    started = time.perf_counter()
    pool._terminate()
    manager.join(timeout=30)
    assert not manager.is_alive() and time.perf_counter() - started < 10
    assert errors == []
    assert all(f.done() for f in futures)


def test_a_fresh_processs_first_run_has_one_blas_thread_too():
    # threadpoolctl limits the libraries loaded when it is called; scipy's OpenBLAS (the one
    # scikit-learn calls) loads during a process's first fit. Before the fix the first run of a
    # sequential sweep computed with every thread and its metrics differed from a pool's in the
    # 10th decimal; this test printed [1, 2] then.
    import os
    import subprocess
    import sys

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: every BLAS runs one thread anyway")
    script = (
        "import sys\n"
        "from smo_impact.runner import executors\n"
        "def fit(spec, context):\n"
        "    import sklearn.linear_model\n"
        "    from threadpoolctl import threadpool_info\n"
        "    print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))\n"
        "executors.execute_run = fit\n"
        "executors.compute(None, None)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS") and k != "SMO_IMPACT_BLAS_THREADS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "[1]"


@pytest.mark.parametrize("value", ["two", "0", "-1", ""])
def test_a_bad_blas_thread_count_is_refused_before_any_work(monkeypatch, value):
    from smo_impact.errors import ConfigError

    monkeypatch.setenv("SMO_IMPACT_BLAS_THREADS", value)
    with pytest.raises(ConfigError, match=f"SMO_IMPACT_BLAS_THREADS must be a positive whole number of threads, got '{value}'"):
        make_executor("sequential")
