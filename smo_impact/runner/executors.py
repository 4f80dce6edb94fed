"""Where runs execute: in this process, in a local process pool, or on Ray.

Executors only compute (treat -> train -> evaluate). Every write to the tracking store happens in
the parent process, one run at a time, so concurrent workers never contend for the store
(SQLite's "database is locked") and a killed worker cannot leave a half-logged run.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from smo_impact.config import EvaluationSpec
from smo_impact.errors import SmoError
from smo_impact.evaluation.benchmarks import BenchmarkResult
from smo_impact.evaluation.compare import Comparison, compare_with_control
from smo_impact.runner.plan import RunSpec
from smo_impact.runner.run import RunContext, RunResult, execute_run

ExecutorName = Literal["sequential", "local", "ray"]
EXECUTORS: tuple[str, ...] = ("sequential", "local", "ray")


@dataclass
class Outcome:
    """What one run produced: a result, or the error that stopped it."""

    spec: RunSpec
    result: RunResult | None
    error: str | None = None  # "ExceptionType: message"
    traceback: str | None = None
    user_error: SmoError | None = None  # bad config/data found mid-run: every run would hit it
    started_ms: int = 0
    ended_ms: int = 0
    comparison: Comparison | None = None  # a treatment run's, with the control it was given


@dataclass
class ControlRef:
    """What a treatment run is compared with: its control's logged metrics and per-item scores.

    Handed to the executor with the run, so that a pool's workers compare (paired bootstrap,
    McNemar, new errors) and the parent only logs.
    """

    metrics: dict[str, float]
    scores: dict[str, BenchmarkResult]
    evaluation: EvaluationSpec


def run_metrics(result: RunResult) -> dict[str, float]:
    """The metrics a computed run logs: its scores and its wall time."""
    return {**result.metrics, "time/run_seconds": result.seconds}


def compare_run(
    spec: RunSpec, metrics: dict[str, float], scores: dict[str, BenchmarkResult], control: ControlRef,
    context: RunContext,
) -> Comparison:
    """A treatment run (its metrics and per-item scores) against its control."""
    return compare_with_control(
        metrics, control.metrics, control.evaluation, spec.seed, scores, control.scores,
        {b.namespace: b.slice_columns for b in context.benchmarks},
    )


def blas_threads() -> int:
    """BLAS threads a run computes with: 1, or ``$SMO_IMPACT_BLAS_THREADS``."""
    value = os.environ.get("SMO_IMPACT_BLAS_THREADS", "1")
    if not value.strip().isdigit() or int(value) < 1:
        from smo_impact.errors import ConfigError

        raise ConfigError(f"SMO_IMPACT_BLAS_THREADS must be a positive whole number of threads, got '{value}'")
    return int(value)


def compute(spec: RunSpec, context: RunContext, control: ControlRef | None = None) -> Outcome:
    """Run one spec, and compare it with ``control`` when given; never raises except KeyboardInterrupt.

    With :func:`blas_threads` BLAS threads (default one), whichever the executor: OpenBLAS sums in
    an order that depends on its thread count, so a dense model's metrics would move in the 10th
    decimal between a pool and this process, or between machines with other core counts. One
    thread also ran faster on 2 cores (embeddings sweep 12.6 s vs 14.9 s; a pool of 2 workers with
    2 threads each was 40% slower than sequential). Torch's own threads are not affected.
    """
    # threadpoolctl limits the BLAS libraries loaded when it is called: load scipy's OpenBLAS (the
    # one scikit-learn calls) first, or a process's first run would compute with every thread.
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    started = int(time.time() * 1000)
    try:
        with threadpool_limits(blas_threads(), user_api="blas"):
            result = execute_run(spec, context)
            comparison = compare_run(spec, run_metrics(result), result.benchmarks, control, context) if control else None
        return Outcome(spec, result, started_ms=started, ended_ms=int(time.time() * 1000), comparison=comparison)
    except Exception as exc:  # noqa: BLE001 - a failed run is data, not a crash
        return Outcome(
            spec,
            None,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            user_error=exc if isinstance(exc, SmoError) else None,
            started_ms=started,
            ended_ms=int(time.time() * 1000),
        )


class Executor(Protocol):
    def start(self) -> None:
        """Get ready before the data is loaded (a pool starts its workers); may do nothing."""
        ...

    def run(
        self, specs: Sequence[RunSpec], context: RunContext, controls: Mapping[str, ControlRef] | None = None
    ) -> Iterator[Outcome]:
        """Yield one Outcome per spec, in completion order; a spec named in ``controls`` is also
        compared with its control there."""
        ...

    def close(self) -> None: ...


class SequentialExecutor:
    """Runs in this process, in plan order."""

    def start(self) -> None:
        pass

    def run(
        self, specs: Sequence[RunSpec], context: RunContext, controls: Mapping[str, ControlRef] | None = None
    ) -> Iterator[Outcome]:
        for spec in specs:
            yield compute(spec, context, (controls or {}).get(spec.name))

    def close(self) -> None:
        pass


# -- local process pool ---------------------------------------------------------------------
_WORKER_CONTEXTS: dict[str, RunContext] = {}  # context file -> its context, loaded once per worker


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group: the parent handles it (marks runs KILLED, stops the
    # pool); workers printing their own KeyboardInterrupt tracebacks would only be noise.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Fine-tuning in a worker draws no bar of its own: it would be drawn over the parent's run bar.
    from smo_impact.models.training import quiet_training_progress

    quiet_training_progress()
    # A worker whose parent was killed outright (SIGKILL, OOM) would wait for work forever, holding
    # the parent's stdout and stderr open: it leaves with its parent. (SIGTERM and Ctrl-C reach the
    # parent's handlers, which stop the pool themselves.)
    import threading

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    # The stack a run computes with, imported now, while the parent loads data and featurizes
    # (the pool starts first): ~3 s a worker, no longer on the first run's path.
    import scipy.sparse  # noqa: F401
    import sklearn.feature_extraction.text  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    import smo_impact.evaluation.compare  # noqa: F401
    import smo_impact.models  # noqa: F401
    # Each run computes with one BLAS thread (compute), here as in the parent: the same numbers.


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _ready() -> int:
    return os.getpid()


def write_shared(obj: object, folder: Path) -> Path:
    """Pickle ``obj`` into ``folder`` for workers to map: its arrays (features, label tables) go
    out of band into one file that each worker maps copy-on-write, so N workers share one copy
    in the page cache instead of unpickling N copies. Returns the file to pass to :func:`read_shared`.

    ``folder`` must be private to this user (a ``tempfile`` directory is): :func:`read_shared`
    refuses any other, since unpickling runs code.
    """
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    spans, offset = [], 0
    with open(folder / "arrays.bin", "wb") as out:
        for buffer in buffers:
            raw = buffer.raw()
            offset += -offset % 64  # aligned, as numpy likes its data
            out.seek(offset)
            out.write(raw)
            spans.append([offset, raw.nbytes])
            offset += raw.nbytes
    (folder / "arrays.json").write_text(json.dumps(spans))
    path = folder / "context.pkl"
    path.write_bytes(head)
    return path


def read_shared(path: Path) -> object:
    """The object :func:`write_shared` wrote, its arrays backed by the mapped file (copy-on-write:
    a worker that changes one gets its own pages, the file and the other workers' view stay).

    Raises:
        PermissionError: the folder is not this user's alone (another user could have planted it).
    """
    import mmap

    folder = os.stat(path.parent)
    if hasattr(os, "getuid") and (folder.st_uid != os.getuid() or folder.st_mode & 0o077):  # POSIX
        raise PermissionError(f"{path.parent} is not private to this user: its context is not read")
    spans = json.loads(path.with_name("arrays.json").read_text())
    views = []
    if spans:
        with open(path.with_name("arrays.bin"), "rb") as file:
            view = memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY))
        views = [view[start:start + size] for start, size in spans]
    # The one unpickling in the package: this process's parent wrote it, in a folder only this
    # user can write (checked above); multiprocessing unpickles the same objects from a pipe.
    return pickle.loads(path.read_bytes(), buffers=views)  # trusted: own workers' context


def _compute_in_worker(context_file: str, spec: RunSpec, control: ControlRef | None) -> Outcome:
    context = _WORKER_CONTEXTS.get(context_file)
    if context is None:
        _WORKER_CONTEXTS.clear()  # a new experiment's context: the old one is not used again
        context = _WORKER_CONTEXTS[context_file] = read_shared(Path(context_file))  # type: ignore[assignment]
    return compute(spec, context, control)


class LocalExecutor:
    """A process pool on this machine (``workers`` processes, default: CPU count).

    The workers start with :meth:`start` (the CLI calls it before loading data), import the stack
    while this process loads data and featurizes, and stay for the whole sweep; the shared
    context reaches them once, as a memory-mapped file.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool = None
        self._folder: tempfile.TemporaryDirectory | None = None
        self._shared: tuple[int, str] | None = None  # (id of the context, its file)

    def start(self) -> None:
        """Start the worker processes now, without waiting for them to be ready."""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            # spawn, not fork: forking a process that holds SQLite and BLAS thread state is unsafe.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker)
            for _ in range(self.workers):  # the pool launches its processes at the first submit
                self._pool.submit(_ready)

    def _context_file(self, context: RunContext) -> str:
        if self._shared is None or self._shared[0] != id(context):
            if self._folder is not None:
                self._folder.cleanup()
            self._folder = tempfile.TemporaryDirectory(prefix="smo-impact-context-")
            self._shared = (id(context), str(write_shared(context, Path(self._folder.name))))
        return self._shared[1]

    def run(
        self, specs: Sequence[RunSpec], context: RunContext, controls: Mapping[str, ControlRef] | None = None
    ) -> Iterator[Outcome]:
        from concurrent.futures import as_completed

        self.start()
        context_file = self._context_file(context)
        futures = [self._pool.submit(_compute_in_worker, context_file, spec, (controls or {}).get(spec.name))
                   for spec in specs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            self._terminate()
            raise

    def _terminate(self) -> None:
        """Stop at once (Ctrl-C, an error): running computations are dropped, nothing was logged.

        The workers are killed and the pool's manager thread fails every queued future
        (BrokenProcessPool). They are not cancelled first: on Python 3.11 the manager thread then
        raises InvalidStateError on each cancelled one, a traceback on the user's terminal.
        """
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
            self._pool.shutdown(wait=False)
            self._pool = None
        self._cleanup()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder, self._shared = None, None


class RayExecutor:
    """Ray tasks on a local instance or the cluster at ``address`` (``$RAY_ADDRESS``).

    The shared context goes into Ray's object store once; each run is one task declaring the
    CPUs it needs.
    """

    def __init__(self, address: str | None = None, cpus_per_run: float = 1.0, workers: int | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            from smo_impact.errors import ConfigError

            raise ConfigError(
                "executor 'ray' needs Ray: pip install 'smo-impact[ray]' (or choose sequential/local)"
            ) from None
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.cpus_per_run = cpus_per_run
        self.workers = workers
        self._started = False

    def start(self) -> None:
        pass  # Ray starts (or connects) at the first run: its start-up prints, and needs the config

    def run(
        self, specs: Sequence[RunSpec], context: RunContext, controls: Mapping[str, ControlRef] | None = None
    ) -> Iterator[Outcome]:
        import ray

        if not ray.is_initialized():
            kwargs = {"address": self.address} if self.address else {"num_cpus": self.workers or os.cpu_count()}
            # Ray pins OMP threads to each task's CPUs: keep this process's threading for what
            # runs outside compute's BLAS limit (e.g. torch's OpenMP threads).
            threads = str(os.cpu_count() or 1)
            env = {k: os.environ.get(k, threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
            ray.init(ignore_reinit_error=True, include_dashboard=False, logging_level="ERROR",
                     runtime_env={"env_vars": env}, **kwargs)
            self._started = True
        remote = ray.remote(num_cpus=self.cpus_per_run)(compute)
        context_ref = ray.put(context)
        pending = [remote.remote(spec, context_ref, (controls or {}).get(spec.name)) for spec in specs]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        import ray

        if self._started and ray.is_initialized():
            ray.shutdown()
            self._started = False


def make_executor(name: str, workers: int | None = None, address: str | None = None) -> Executor:
    blas_threads()  # a bad $SMO_IMPACT_BLAS_THREADS fails here, before any work
    if name == "sequential":
        return SequentialExecutor()
    if name == "local":
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address=address, workers=workers)
    from smo_impact.errors import ConfigError
    from smo_impact.registry import unknown_name_message

    raise ConfigError(unknown_name_message("executor", name, EXECUTORS))
