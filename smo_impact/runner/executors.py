"""Where runs execute: in this process, in a local process pool, or on Ray.

Executors only compute (treat -> train -> evaluate). Every write to the tracking store happens in
the parent process, one run at a time, so concurrent workers never contend for the store
(SQLite's "database is locked") and a killed worker cannot leave a half-logged run.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from smo_impact.errors import SmoError
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


def compute(spec: RunSpec, context: RunContext) -> Outcome:
    """Run one spec; never raises except KeyboardInterrupt."""
    started = int(time.time() * 1000)
    try:
        result = execute_run(spec, context)
        return Outcome(spec, result, started_ms=started, ended_ms=int(time.time() * 1000))
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
    def run(self, specs: Sequence[RunSpec], context: RunContext) -> Iterator[Outcome]:
        """Yield one Outcome per spec, in completion order."""
        ...

    def close(self) -> None: ...


class SequentialExecutor:
    """Runs in this process, in plan order."""

    def run(self, specs: Sequence[RunSpec], context: RunContext) -> Iterator[Outcome]:
        for spec in specs:
            yield compute(spec, context)

    def close(self) -> None:
        pass


# -- local process pool ---------------------------------------------------------------------
_WORKER_CONTEXT: RunContext | None = None


def _init_worker(context: RunContext) -> None:
    # The shared context is sent once per worker process, not once per run.
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = context
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
    # BLAS thread counts are left as in the parent on purpose: limiting them changes the order of
    # floating-point reductions, and then a pool's metrics differ from sequential ones in the 6th
    # decimal. Identical numbers are worth some oversubscription.


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _compute_in_worker(spec: RunSpec) -> Outcome:
    assert _WORKER_CONTEXT is not None, "worker not initialised"
    return compute(spec, _WORKER_CONTEXT)


class LocalExecutor:
    """A process pool on this machine (``workers`` processes, default: CPU count)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool = None

    def run(self, specs: Sequence[RunSpec], context: RunContext) -> Iterator[Outcome]:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if self._pool is None:
            # spawn, not fork: forking a process that holds SQLite and BLAS thread state is unsafe.
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(context,)
            )
        futures = [self._pool.submit(_compute_in_worker, spec) for spec in specs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            self._terminate()
            raise

    def _terminate(self) -> None:
        """Stop at once (Ctrl-C, an error): running computations are dropped, nothing was logged."""
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


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

    def run(self, specs: Sequence[RunSpec], context: RunContext) -> Iterator[Outcome]:
        import ray

        if not ray.is_initialized():
            kwargs = {"address": self.address} if self.address else {"num_cpus": self.workers or os.cpu_count()}
            # Ray pins OMP threads to each task's CPUs; BLAS then reduces in another order and the
            # metrics drift from sequential ones in the 6th decimal. Keep this process's threading.
            threads = str(os.cpu_count() or 1)
            env = {k: os.environ.get(k, threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
            ray.init(ignore_reinit_error=True, include_dashboard=False, logging_level="ERROR",
                     runtime_env={"env_vars": env}, **kwargs)
            self._started = True
        remote = ray.remote(num_cpus=self.cpus_per_run)(compute)
        context_ref = ray.put(context)
        pending = [remote.remote(spec, context_ref) for spec in specs]
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
    if name == "sequential":
        return SequentialExecutor()
    if name == "local":
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address=address, workers=workers)
    from smo_impact.errors import ConfigError
    from smo_impact.registry import unknown_name_message

    raise ConfigError(unknown_name_message("executor", name, EXECUTORS))
