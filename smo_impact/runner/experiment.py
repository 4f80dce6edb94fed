"""Run a whole experiment: load -> featurize -> plan -> resume -> (treat -> train -> evaluate) -> log -> summarize.

This module is the method: read ``run_experiment`` top to bottom.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
import yaml

from smo_impact.analysis.calibration import gate_false_alarm_note
from smo_impact.analysis.impact import log_impact
from smo_impact.analysis.power import minimum_detectable_effect
from smo_impact.config import ExperimentConfig
from smo_impact.data.catalog import get_info, load_dataset
from smo_impact.data.loader import load_data
from smo_impact.data.schema import AnnotationSet
from smo_impact.evaluation.benchmarks import BenchmarkResult, with_suite_items
from smo_impact.evaluation.compare import Comparison
from smo_impact.evaluation.gates import arm_verdicts
from smo_impact.errors import DataError, SmoError
from smo_impact.models import MODELS, FeatureCache
from smo_impact.provenance import code_version, flatten
from smo_impact.report.plots import dose_response_figure
from smo_impact.report.summary import summarize, summary_metrics, to_markdown
from smo_impact.report.takeaway import log_parent_description
from smo_impact.runner.executors import (
    ControlRef,
    Executor,
    Outcome,
    SequentialExecutor,
    compare_run,
    run_metrics,
)
from smo_impact.runner.interrupts import uninterrupted
from smo_impact.runner.logged_models import keeps_model, servable_model
from smo_impact.runner.rater_models import load_rater_models
from smo_impact.runner.plan import RunSpec, comparison_key, plan_runs
from smo_impact.runner.run import RunContext, RunResult, build_context, model_key, preflight
from smo_impact.tracking.base import RunLog, TrackedRun, Tracker

# Callback the CLI uses for a progress bar: (run spec, done, total, status) -> None.
ProgressCallback = Callable[[RunSpec, int, int, str], None]


@dataclass
class ExperimentResult:
    parent_run_id: str
    runs: pd.DataFrame  # one row per finished run (fresh or reused)
    summary: pd.DataFrame
    failures: list[tuple[str, str]] = field(default_factory=list)  # (run name, error line)
    cache_stats: dict[str, float] = field(default_factory=dict)
    computed: int = 0  # runs computed by this invocation
    reused: int = 0  # finished runs found in the store and skipped
    gates: pd.DataFrame = field(default_factory=pd.DataFrame)  # per treatment arm/grid: gate, reasons
    compared: int = 0  # comparisons (treatment vs control) computed by this invocation
    stale_code: list[tuple[str, str]] = field(default_factory=list)  # reused runs of another code version
    takeaway: str = ""  # the parent run's one-sentence result (report/takeaway.py)
    degenerate: list[str] = field(default_factory=list)  # runs predicting one class for every item

    @property
    def gate_failed(self) -> bool:
        """Whether a configured regression gate failed for some treatment arm."""
        return not self.gates.empty and bool((self.gates["gate"] == "failed").any())


def prepare(
    config: ExperimentConfig,
    cache: FeatureCache | None = None,
    dataset: AnnotationSet | None = None,
    suites: dict[str, AnnotationSet] | None = None,
    tracking_uri: str | None = None,
) -> tuple[AnnotationSet, RunContext, list[RunSpec], FeatureCache]:
    """Everything before the first run: load the data, plan the runs, featurize once per
    featurizer, load the model raters' external models (from ``tracking_uri``, default
    ``tracking.uri``), and check every arm's steps against the data.

    ``dataset`` replaces the config's dataset and ``suites`` the functional suites its evaluation
    names (tests and notebooks pass data they built).
    """
    dataset = dataset if dataset is not None else load_data(config.dataset)
    # Functional suites (evaluation.benchmarks[].suite) are built-in datasets scored on gold labels.
    suites = suites if suites is not None else {
        b.suite: load_dataset(b.suite) for b in config.evaluation.benchmarks if b.suite is not None
    }
    specs = plan_runs(config)
    cache = cache or FeatureCache()
    items = with_suite_items(dataset, suites)
    # One feature matrix per distinct featurizer the plan needs: a sweep over a featurizer param
    # (model.ngram_max, model.encoder, ...) trains each grid point on its own features.
    by_model: dict[str, Any] = {}
    for model in [config.model, *(s.model for s in specs)]:
        if model_key(model) not in by_model:
            model_cls = MODELS.get(model.name)
            featurizer = model_cls(model_cls.Params.model_validate(model.params)).featurizer()
            by_model[model_key(model)] = cache.get(items, featurizer)
    context = build_context(
        dataset, by_model[model_key(config.model)], config.evaluation.split, config.evaluation.threshold,
        config.evaluation, suites, by_model, config.tracking.log_models,
    )
    # Model raters' models from other runs, the registry or a folder: a missing one fails here.
    rater_models = load_rater_models(specs, tracking_uri or config.tracking.uri, dataset)
    if rater_models:
        context = replace(context, initial_state=context.initial_state.evolve(rater_models=rater_models))
    # Steps that can fail on the data (a pool that selects no one, a budget that buys nothing)
    # fail here, for every grid point at once, before any run is created.
    problems = preflight(specs, context)
    if problems:
        raise DataError(problems[0] if len(problems) == 1 else f"{len(problems)} problems: " + "; ".join(problems))
    return dataset, context, specs, cache


def run_experiment(
    config: ExperimentConfig,
    tracker_factory: Callable[[], Tracker],
    progress: ProgressCallback | None = None,
    cache: FeatureCache | None = None,
    dataset: AnnotationSet | None = None,
    executor: Executor | None = None,
    force: bool = False,
    suites: dict[str, AnnotationSet] | None = None,
) -> ExperimentResult:
    """Run every planned run not already finished in the store; log each as a child of one parent.

    Two stages, each keyed by exactly what it reads:

    * **score** (treat -> train -> score) is keyed by the run's own spec and the data digest
      (``smo.run_key``): a run whose key has a FINISHED run in the store is reused (``force``
      recomputes everything);
    * **compare** (deltas, paired bootstrap, McNemar, new errors, the run's gate verdict) is
      computed from the stored per-item predictions of a treatment run and its seed's control,
      keyed by both run keys and the comparison settings (``smo.compare_key``): a changed control
      recomputes every comparison against it and nothing else.

    Runs left RUNNING by a killed process are marked KILLED and redone; the parent run of the same
    config is reused. A run that raises is marked FAILED (traceback logged, one-line reason) and
    the sweep goes on; Ctrl-C marks the parent KILLED. Nothing is left RUNNING.
    """
    # 1. Reach the tracking store (fails in seconds if it is down), then load data, featurize and
    #    check the steps before any run is created: bad data fails with nothing left in the store.
    tracker = tracker_factory()
    dataset, context, specs, cache = prepare(config, cache, dataset, suites, getattr(tracker, "uri", None))
    executor = executor or SequentialExecutor()
    digest = dataset.digest()
    keys = {spec.name: spec.key(config, digest) for spec in specs}
    controls = {spec.name: spec.control(specs) for spec in specs}

    # 2. Resume: reap runs orphaned by killed processes, find finished runs, reuse the parent.
    #    Under the store's lock (issue 17): sweeps of one config started together share one parent.
    with tracker.lock():
        _reap_orphans(tracker)
        finished = {} if force else _finished_runs(tracker, set(keys.values()))
        parent_id = _open_parent(tracker, config, dataset, digest, len(specs))

    logged: dict[str, TrackedRun] = {s.name: finished[keys[s.name]] for s in specs if keys[s.name] in finished}
    current = code_version()
    stale_code = sorted(
        (name, run.tags.get("smo.code_version", "?")) for name, run in logged.items()
        if run.tags.get("smo.code_version") != current
    )
    failures: list[tuple[str, str]] = []
    todo = [s for s in specs if s.name not in logged]
    done = len(logged)
    compared = 0
    # Per-item predictions of control runs, by run name: computed here or read from the store.
    control_scores: dict[str, dict[str, BenchmarkResult]] = {}
    claims: dict[str, str] = {}  # run name -> id of the RUNNING run claimed for it, until logged

    def control_of(spec: RunSpec) -> ControlRef | None:
        """What a treatment run is compared with: its seed's finished control (else None)."""
        control = controls[spec.name]
        if spec.is_control or control is None or control.name not in logged:
            return None
        if control.name not in control_scores:
            control_scores[control.name] = _stored_scores(tracker, logged[control.name].run_id, config.evaluation.namespaces)
        return ControlRef(logged[control.name].metrics, control_scores[control.name], config.evaluation)

    def pending(spec: RunSpec, comparison: Comparison) -> PendingComparison:
        control = controls[spec.name]
        return PendingComparison(comparison, comparison_key(keys[spec.name], keys[control.name], config), control.name)

    def compare_stored(spec: RunSpec) -> None:
        """Stage 4 for a reused treatment run: compare with its control unless the stored
        comparison is keyed on the same pair and settings."""
        nonlocal compared
        control = controls[spec.name]
        run = logged.get(spec.name)
        if control is None or run is None or control.name not in logged:
            return
        if run.tags.get("smo.compare_key") == comparison_key(keys[spec.name], keys[control.name], config):
            return
        if (against := control_of(spec)) is not None:
            scores = _stored_scores(tracker, run.run_id, config.evaluation.namespaces)
            logged[spec.name] = _log_comparison(tracker, run, pending(spec, compare_run(spec, run.metrics, scores, against, context)))
            compared += 1

    try:
        # Claim the runs to compute before computing them (issue 17): an identical sweep started
        # at the same time leaves them to this one (and this one leaves it those it claimed).
        with uninterrupted():  # Ctrl-C/SIGTERM wait until every claim is known, to be marked KILLED
            claims, elsewhere = _claim_runs(tracker, todo, keys, config, digest, parent_id, force)
        todo = [s for s in todo if s.name in claims]

        # 3. Score: treat -> train -> score each run not in the store, controls first so that a
        #    fresh treatment run is compared (stage 4) where it computes (in a pool: its worker),
        #    and its comparison goes to the store in the run's own batch (issue 16).
        for phase in ([s for s in todo if s.is_control], [s for s in todo if not s.is_control]):
            against = {spec.name: ref for spec in phase if (ref := control_of(spec)) is not None}
            for outcome in _outcomes(executor, phase, context, tracker, claims, against):
                spec = outcome.spec
                comparison = pending(spec, outcome.comparison) if outcome.comparison is not None else None
                run = _log_run(outcome, config, context, tracker, parent_id, keys[spec.name], digest,
                               run_id=claims.pop(spec.name), comparison=comparison)
                if run.status == "FINISHED":
                    logged[spec.name] = run
                    if spec.is_control:
                        control_scores[spec.name] = outcome.result.benchmarks
                    compared += comparison is not None
                else:
                    failures.append((spec.name, outcome.error or "unknown error"))
                done += 1
                if progress:
                    progress(spec, done, len(specs), run.status)

        # Runs claimed by another sweep: wait for them, then reuse them like finished runs.
        for spec, run in _await_claims(tracker, elsewhere):
            if run.status == "FINISHED":
                logged[spec.name] = run
            else:
                failures.append((spec.name, f"claimed by another sweep ({run.tags.get('smo.host')}, pid "
                                            f"{run.tags.get('smo.pid')}), which ended it {run.status}; rerun to compute it"))
            done += 1
            if progress:
                progress(spec, done, len(specs), run.status)

        # 4. Compare the reused treatment runs whose stored comparison is stale (e.g. the control
        #    arm changed, or a gate): from both runs' stored predictions, no retraining.
        for spec in specs:
            if not spec.is_control:
                compare_stored(spec)

        # 5. Summarize across seeds on the parent run.
        rows = [_row(spec, logged[spec.name]) for spec in specs if spec.name in logged]
        runs = pd.DataFrame(rows)
        table = _log_summary(tracker, parent_id, config, runs)
        # dose-response slopes, quality vs outcome, cost frontier
        impact = log_impact(tracker, parent_id, runs, config.control, config.evaluation.primary, config.evaluation.outcomes) if not runs.empty else None
        gates = _log_gates(tracker, parent_id, config, runs)
        if not gates.empty:  # the terminal summary shows each arm's verdict
            table = table.merge(gates[["arm", "grid", "gate"]], on=["arm", "grid"], how="left")
        # The parent's description: takeaway + summary table, the first thing the MLflow UI shows.
        degenerate = [s.name for s in specs if logged.get(s.name) and logged[s.name].tags.get("smo.degenerate") == "true"]
        takeaway = log_parent_description(tracker, parent_id, config, table, runs, impact.fits if impact else None,
                                          impact.dose_response if impact else None, gates, degenerate)
        tracker.log_metrics(
            parent_id,
            {**cache.stats.as_metrics(), "runs/failed": len(failures), "runs/finished": len(rows),
             "runs/computed": len(todo), "runs/reused": len(specs) - len(todo), "runs/compared": compared},
        )
        tracker.set_tags(parent_id, {"smo.failed_runs": str(len(failures)),
                                     "smo.stale_code_runs": str(len(stale_code))})
        tracker.end_run(parent_id, "FAILED" if failures else "FINISHED")
    except KeyboardInterrupt:
        for run_id in claims.values():  # claimed, never computed: nothing to keep
            tracker.delete_run(run_id)
        tracker.end_run(parent_id, "KILLED")
        raise
    except BaseException:
        for run_id in claims.values():
            tracker.delete_run(run_id)
        tracker.end_run(parent_id, "FAILED")
        raise
    finally:
        executor.close()
    return ExperimentResult(
        parent_id, runs, table, failures, cache.stats.as_metrics(), computed=len(todo), reused=len(specs) - len(todo),
        gates=gates, compared=compared, stale_code=stale_code, takeaway=takeaway, degenerate=degenerate,
    )


# -- resume ---------------------------------------------------------------------------------
def _owner_tags() -> dict[str, str]:
    return {"smo.host": socket.gethostname(), "smo.pid": str(os.getpid())}


def _is_orphan(run: TrackedRun) -> bool:
    """A RUNNING run whose process on this host is gone (a run from another host is left alone)."""
    if run.tags.get("smo.host") != socket.gethostname():
        return False
    try:
        pid = int(run.tags.get("smo.pid", "0"))
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    return pid == 0


def _reap_orphans(tracker: Tracker) -> None:
    for run in tracker.find_runs({}, statuses=("RUNNING",)):
        if run.tags.get("smo.kind") in ("run", "experiment") and _is_orphan(run):
            tracker.set_tags(run.run_id, {"smo.error": "process died while running; marked KILLED on resume"})
            tracker.end_run(run.run_id, "KILLED")


def _finished_runs(tracker: Tracker, keys: set[str]) -> dict[str, TrackedRun]:
    found: dict[str, TrackedRun] = {}
    for run in tracker.find_runs({"smo.kind": "run"}, statuses=("FINISHED",)):
        key = run.tags.get("smo.run_key")
        if key in keys:
            found.setdefault(key, run)
    return found


def _outcomes(
    executor: Executor, phase: list[RunSpec], context: RunContext, tracker: Tracker, claims: dict[str, str],
    controls: dict[str, ControlRef],
) -> Iterator[Outcome]:
    """The executor's outcomes for ``phase``, with MLflow's system metrics sampled into each run
    whose model asks for them (fine-tuning: minutes of CPU/GPU; sklearn runs take seconds and skip
    it) while that run computes.

    Only where runs compute one at a time in this process (the sequential executor, in plan
    order): in a pool the machine's figures would mix the runs that share it.
    """
    if not phase:
        return
    outcomes = executor.run(phase, context, controls)
    if not isinstance(executor, SequentialExecutor):
        yield from outcomes
        return
    for spec in phase:
        sample = getattr(MODELS.get(spec.model.name), "log_system_metrics", False)
        monitor = getattr(tracker, "system_metrics", None) if sample else None
        with monitor(claims[spec.name]) if monitor is not None else contextlib.nullcontext():
            outcome = next(outcomes)
        yield outcome


def _claim_runs(
    tracker: Tracker, todo: list[RunSpec], keys: dict[str, str], config: ExperimentConfig, digest: str,
    parent_id: str, force: bool,
) -> tuple[dict[str, str], list[tuple[RunSpec, TrackedRun]]]:
    """Claim each run to compute: start its (RUNNING) run now, to be logged into once computed.

    Under the store's lock, so two sweeps never claim one key: a run whose key another live sweep
    has claimed (a RUNNING run), or finished since this one looked, is left to it and returned with
    that run, to wait for. Claims of a killed process are orphans like any RUNNING run: reaped.

    Returns:
        run name -> claimed run id; (spec, run of another sweep) pairs.
    """
    claims: dict[str, str] = {}
    elsewhere: list[tuple[RunSpec, TrackedRun]] = []
    with tracker.lock():
        taken = {} if force else _finished_runs(tracker, set(keys.values()))
        for run in tracker.find_runs({"smo.kind": "run"}, statuses=("RUNNING",)):
            taken.setdefault(run.tags.get("smo.run_key", ""), run)
        for spec in todo:
            if keys[spec.name] in taken:
                elsewhere.append((spec, taken[keys[spec.name]]))
            else:
                tags = _run_tags(spec, config, keys[spec.name], digest)
                claims[spec.name] = tracker.start_run(spec.name, tags, parent_id=parent_id)
    return claims, elsewhere


def _await_claims(
    tracker: Tracker, elsewhere: list[tuple[RunSpec, TrackedRun]], poll_s: float = 1.0
) -> Iterator[tuple[RunSpec, TrackedRun]]:
    """Yield (spec, run) for each run claimed by another sweep as soon as it ends (a claim whose
    process died is marked KILLED, like any orphan; one it gave up is deleted)."""
    waiting = {run.run_id: (spec, run) for spec, run in elsewhere}
    while waiting:
        now = {run.run_id: run for run in tracker.find_runs({"smo.kind": "run"})}
        for run_id, (spec, claim) in list(waiting.items()):
            # A claim deleted by its interrupted sweep was never computed: KILLED, to rerun.
            run = now.get(run_id, TrackedRun(run_id, "KILLED", claim.tags))
            if run.status == "RUNNING" and _is_orphan(run):
                tracker.set_tags(run_id, {"smo.error": "process died while running; marked KILLED on resume"})
                tracker.end_run(run_id, "KILLED")
                run.status = "KILLED"
            if run.status != "RUNNING":
                del waiting[run_id]
                yield spec, run
        if waiting:
            time.sleep(poll_s)


def _open_parent(tracker: Tracker, config: ExperimentConfig, dataset: AnnotationSet, digest: str, planned: int) -> str:
    """Reuse the parent run of the same config (resume), else start one."""
    # A RUNNING parent here belongs to a live sweep of the same config (orphans were just reaped):
    # joining it (issue 17) keeps one parent, with every run as its child, for report and export.
    previous = tracker.find_runs({"smo.kind": "experiment", "smo.config_hash": config.config_hash(), "smo.data_digest": digest})
    tags = {
        "smo.kind": "experiment",
        "smo.config_hash": config.config_hash(),
        "smo.code_version": code_version(),
        "smo.data_digest": digest,
        "smo.dataset": dataset.name,
        "smo.runs_planned": str(planned),
        "mlflow.note.content": config.description or f"Experiment {config.name}",
        **_owner_tags(),
    }
    if previous:
        parent_id = previous[0].run_id
        tracker.reopen_run(parent_id)
        tracker.set_tags(parent_id, {**tags, "smo.resumed": "true"})
        return parent_id
    parent_id = tracker.start_run(config.name, tags)
    try:
        tracker.log_params(parent_id, flatten(config.to_dict()))
        tracker.log_text(parent_id, config.to_yaml(), "config/resolved.yaml")
        tracker.log_dataset(parent_id, dataset.items, dataset.name, digest, _dataset_source(dataset.name))
    except BaseException:
        tracker.end_run(parent_id, "FAILED")
        raise
    return parent_id


def _stored_scores(tracker: Tracker, run_id: str, namespaces: list[str]) -> dict[str, BenchmarkResult]:
    """A stored run's per-benchmark predictions (``predictions/<ns>.parquet``), as far as logged."""
    load = getattr(tracker, "load_frame", None)
    frames = {ns: load(run_id, f"predictions/{ns}.parquet") for ns in namespaces} if load else {}
    return {ns: BenchmarkResult({}, frame) for ns, frame in frames.items() if frame is not None}


# -- logging one run ------------------------------------------------------------------------
def _log_run(
    outcome: Outcome,
    config: ExperimentConfig,
    context: RunContext,
    tracker: Tracker,
    parent_id: str,
    key: str,
    digest: str,
    run_id: str | None = None,
    comparison: PendingComparison | None = None,
) -> TrackedRun:
    """Write one computed run (the score stage) to the store: start -> params -> metrics -> artifacts -> end.

    ``run_id``: the run claimed for it before it was computed (``_claim_runs``), else a new one.
    ``comparison``: its comparison with its control, written in the same batch (its key tag last).
    """
    spec, result = outcome.spec, outcome.result
    tags = _run_tags(spec, config, key, digest)
    run_id = run_id or tracker.start_run(spec.name, tags, parent_id=parent_id, start_time_ms=outcome.started_ms or None)
    metrics: dict[str, float] = {}
    try:
        resolved = spec.resolved(config)
        # Params, metrics, tags and files go to the store in one batch (one log_batch, one
        # log_artifacts): call by call, logging took a third of a quickstart run (issue 16).
        with tracker.batch(run_id) as log:
            log.log_params(_run_params(spec, resolved))
            log.log_text(yaml.safe_dump(resolved, sort_keys=False), "config/resolved.yaml")
            if result is None:
                log.log_text(outcome.traceback or "", "error/traceback.txt")
                log.set_tags({"smo.error": (outcome.error or "")[:500]})
            else:
                metrics = run_metrics(result)
                log.log_metrics(metrics)
                if degenerate := _constant_predictions(result):  # a broken training loop must not pass unnoticed
                    log.set_tags(degenerate)
                    tags.update(degenerate)
                if config.tracking.log_predictions or spec.is_control:
                    # A control's predictions are always kept: comparisons with it are recomputed from them.
                    for ns, scored in result.benchmarks.items():
                        log.log_frame(scored.predictions, f"predictions/{ns}.parquet")
                for scored in result.benchmarks.values():
                    log.set_tags(scored.tags)
                    for path, frame in scored.artifacts.items():
                        log.log_frame(frame, path)
                        if path.startswith("confusion/"):  # a K-class run's confusion matrix, also as a picture
                            _log_confusion_figure(log, frame, path)
                if not result.changes.empty:
                    changes = result.changes.astype({"label_before": str, "label_after": str})
                    log.log_frame(changes, "treatment/changes.parquet")
                for name, frame in result.step_artifacts.items():
                    log.log_text(frame.to_csv(), f"treatment/{name}.csv")
                keep = keeps_model(spec, config.tracking.log_models)  # tracking.log_models: all | control | none
                _log_training(log, result, keep)
                if comparison is not None:  # last: its key tag marks the comparison complete
                    tags.update(_write_comparison(log, comparison))
                    metrics.update(comparison.comparison.metrics)
        tracker.log_dataset(run_id, context.dataset.items, context.dataset.name, digest, _dataset_source(spec.dataset))
        if result is None:
            tracker.end_run(run_id, "FAILED", outcome.ended_ms or None)
            return TrackedRun(run_id, "FAILED", tags)
        started = time.perf_counter()
        if keep and (model := servable_model(spec, context, result.model_files)) is not None:
            tags["smo.model_uri"] = tracker.log_model(run_id, *model)
            tracker.log_metrics(run_id, {"time/log_model_seconds": time.perf_counter() - started})
        tracker.end_run(run_id, "FINISHED", outcome.ended_ms or None)
    except KeyboardInterrupt:
        tracker.end_run(run_id, "KILLED")
        raise
    except Exception as exc:  # noqa: BLE001 - a logging failure fails this run, not the sweep
        tracker.set_tags(run_id, {"smo.error": f"while logging: {type(exc).__name__}: {exc}"[:500]})
        tracker.end_run(run_id, "FAILED")
        outcome.error = f"while logging: {type(exc).__name__}: {exc}"
        return TrackedRun(run_id, "FAILED", tags)
    return TrackedRun(run_id, "FINISHED", tags, metrics)


def _constant_predictions(result: RunResult) -> dict[str, str]:
    """``smo.degenerate`` tags when a benchmark's predictions are one class for every item."""
    constant = [f"{ns}: every item predicted {scored.predictions['predicted'].iloc[0]!s}"
                for ns, scored in result.benchmarks.items()
                if len(scored.predictions) > 1 and scored.predictions["predicted"].nunique() == 1]
    return {"smo.degenerate": "true", "smo.degenerate_reason": "; ".join(constant)[:500]} if constant else {}


def _log_confusion_figure(log: RunLog, table: pd.DataFrame, path: str) -> None:
    import matplotlib.pyplot as plt

    from smo_impact.report.confusion import confusion_figure

    figure = confusion_figure(table, path.removeprefix("confusion/").removesuffix(".csv"))
    log.log_figure(figure, path.removesuffix(".csv") + ".png")
    plt.close(figure)


@dataclass
class PendingComparison:
    """A treatment run's comparison with its control, to be written with its key."""

    comparison: Comparison
    key: str  # smo.compare_key: both run keys and the comparison settings
    control: str  # the control run's name


def _write_comparison(log: RunLog, pending: PendingComparison) -> dict[str, str]:
    """Put a comparison in a run's batch; returns its tags. The key tag goes last, so a
    comparison cut short by a crash is redone on resume (the batch sends files, metrics, tags)."""
    comparison = pending.comparison
    tags = {"smo.compared_with": pending.control}
    if comparison.verdict is not None:
        tags.update(comparison.verdict.tags())
    tags["smo.compare_key"] = pending.key
    log.log_metrics(comparison.metrics)
    if not comparison.regressed.empty:
        log.log_frame(comparison.regressed, "regression/regressed_items.parquet")
    log.set_tags(tags)
    return tags


def _log_comparison(tracker: Tracker, run: TrackedRun, pending: PendingComparison) -> TrackedRun:
    """Log a comparison on a stored (finished) treatment run. Returns the run with its metrics updated."""
    with tracker.batch(run.run_id) as log:
        tags = _write_comparison(log, pending)
    # Metrics of an earlier comparison (another control) must not leak into the summary.
    metrics = {k: v for k, v in run.metrics.items() if not k.startswith(("delta/", "regression/"))}
    return TrackedRun(run.run_id, run.status, {**run.tags, **tags}, {**metrics, **pending.comparison.metrics}, run.params)


def _log_training(log: RunLog, result: RunResult, keep_model: bool = True) -> None:
    """Training curves as metric history (``train/loss`` by step, ``dev/*`` by epoch) and the model."""
    by_step: dict[int, dict[str, float]] = {}
    for name, points in result.curves.items():
        for step, value in points:
            by_step.setdefault(step, {})[name] = value
    for step, values in sorted(by_step.items()):
        log.log_metrics(values, step=step)
    if keep_model:
        for relative, content in result.model_files.items():
            log.log_bytes(content, f"model/{relative}")


def _run_tags(spec: RunSpec, config: ExperimentConfig, key: str, digest: str) -> dict[str, str]:
    return {
        "smo.kind": "run",
        "smo.arm": spec.arm,
        "smo.seed": str(spec.seed),
        "smo.grid": spec.grid_label,
        "smo.is_control": str(spec.is_control).lower(),
        "smo.config_hash": config.config_hash(),
        "smo.run_key": key,
        "smo.code_version": code_version(),
        "smo.data_digest": digest,
        **_owner_tags(),
    }


def _run_params(spec: RunSpec, resolved: dict[str, Any]) -> dict[str, Any]:
    """Arm, seed, grid values and step params as flat params, so the MLflow compare view can chart them."""
    params: dict[str, Any] = {"arm": spec.arm, "seed": spec.seed, "dataset": spec.dataset}
    params.update({f"grid.{k}": v for k, v in spec.grid})
    for step in spec.steps:
        params.update({f"treatment.{step.name}.{k}": v for k, v in flatten(step.params).items()})
    params["treatment.steps"] = ",".join(s.name for s in spec.steps)
    params.update(flatten(resolved["model"], "model"))
    params.update(flatten(resolved["evaluation"], "evaluation"))
    return params


def _row(spec: RunSpec, run: TrackedRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "run_name": spec.name,
        "arm": spec.arm,
        "grid": spec.grid_label,
        "grid_params": dict(spec.grid),
        "seed": spec.seed,
        "model_uri": run.tags.get("smo.model_uri"),  # an MLflow model, when the run keeps one (tracking.log_models)
        **run.metrics,
    }


def _log_summary(tracker: Tracker, parent_id: str, config: ExperimentConfig, runs: pd.DataFrame) -> pd.DataFrame:
    split = config.evaluation.primary
    arm_order = [config.control] + [a for a in config.arms if a != config.control]
    table = summarize(runs, split, arm_order)
    if table.empty:
        return table
    tracker.log_metrics(parent_id, summary_metrics(table))
    tracker.log_frame(parent_id, table, "summary/summary.csv")
    tracker.log_text(parent_id, to_markdown(table, split), "summary/summary.md")
    tracker.log_frame(parent_id, runs.drop(columns=["grid_params"]), "summary/runs.csv")
    for metric in (f"{split}/macro_f1", f"{split}/recall"):
        figure = dose_response_figure(runs, metric, config.control)
        if figure is not None:
            import matplotlib.pyplot as plt

            tracker.log_figure(parent_id, figure, f"plots/dose_response_{metric.split('/')[-1]}.png")
            plt.close(figure)
    return table


def _log_gates(tracker: Tracker, parent_id: str, config: ExperimentConfig, runs: pd.DataFrame) -> pd.DataFrame:
    """Gate each treatment arm/grid point on its mean over seeds; tag the parent with the verdicts.

    Also plots, per benchmark, the regressions vs control and a functional suite's accuracy per
    functionality (``plots/regressions_<ns>.png``, ``plots/functional_<ns>.png``).
    """
    import matplotlib.pyplot as plt

    from smo_impact.report.regression_plots import functional_figure, regressions_figure

    for bench in config.evaluation.benchmarks if not runs.empty else ():
        if bench.suite is not None and (figure := functional_figure(runs, bench.name)) is not None:
            tracker.log_figure(parent_id, figure, f"plots/functional_{bench.name}.png")
            plt.close(figure)
    for ns in config.evaluation.namespaces if not runs.empty else ():
        if (figure := regressions_figure(runs, ns, config.control)) is not None:
            tracker.log_figure(parent_id, figure, f"plots/regressions_{ns}.png")
            plt.close(figure)
    gates = config.evaluation.gates
    if not gates.active or runs.empty:
        return pd.DataFrame()
    table = arm_verdicts(runs, gates, config.evaluation.namespaces, config.control)
    if table.empty:
        return table
    # What a verdict is worth: the smallest drop its seeds can detect, and how often this kind of
    # gate fired in the stored A/A calibration (benchmarks/bench_aa.py).
    notes = []
    for metric, tolerance in gates.max_drop.items():
        std = table.get(f"drop/{metric}_std", pd.Series(float("nan"), index=table.index))
        table[f"mde/{metric}"] = [minimum_detectable_effect(sd, int(n)) for sd, n in zip(std, table["seeds"])]
        notes.append(table["seeds"].map(
            lambda n, m=metric, t=tolerance: gate_false_alarm_note(m, t, gates.require_significance, int(n))))
    if notes:
        table["aa_false_alarms"] = ["; ".join(x for x in parts if x) for parts in zip(*notes)]
    tracker.log_frame(parent_id, table, "summary/gates.csv")
    failed = table[table["gate"] == "failed"]
    reasons = [f"{r.arm}[{r.grid}]: {r.reasons}" for r in failed.itertuples()]
    tags = {"smo.gate": "failed" if reasons else "passed", "smo.gate_reasons": "; ".join(reasons)[:5000] or "-"}
    for r in table.itertuples():
        group = r.arm if r.grid == "-" else f"{r.arm}/{r.grid}"
        tags["smo.gate." + re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", group)] = r.gate
    tracker.set_tags(parent_id, tags)
    return table


def _dataset_source(name: str) -> str:
    try:
        info = get_info(name)
    except SmoError:
        return f"smo-impact://{name}"
    return info.files[0].url.rsplit("/", 1)[0] if info.files else f"smo-impact://{name}"


__all__ = ["ExperimentResult", "prepare", "run_experiment"]
