"""Run a whole experiment: load -> featurize -> (treat -> train -> evaluate -> log) per run -> summarize.

This module is the method: read it top to bottom.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import yaml

from smo_impact import __version__
from smo_impact.config import ExperimentConfig
from smo_impact.data.catalog import get_info, load_dataset
from smo_impact.data.schema import AnnotationSet
from smo_impact.errors import SmoError
from smo_impact.models import MODELS, FeatureCache
from smo_impact.provenance import code_version, flatten
from smo_impact.report.plots import dose_response_figure
from smo_impact.report.summary import summarize, summary_metrics, to_markdown
from smo_impact.runner.plan import RunSpec, plan_runs
from smo_impact.runner.run import RunContext, RunResult, build_context, execute_run
from smo_impact.tracking.base import Tracker

# Callback the CLI uses for a progress bar: (run spec, index, total, status) -> None.
ProgressCallback = Callable[[RunSpec, int, int, str], None]


@dataclass
class ExperimentResult:
    parent_run_id: str
    runs: pd.DataFrame  # one row per finished run
    summary: pd.DataFrame
    failures: list[tuple[str, str]] = field(default_factory=list)  # (run name, error line)
    cache_stats: dict[str, float] = field(default_factory=dict)


def prepare(
    config: ExperimentConfig, cache: FeatureCache | None = None, dataset: AnnotationSet | None = None
) -> tuple[AnnotationSet, RunContext, list[RunSpec], FeatureCache]:
    """Everything before the first run: load the data, featurize once, plan the runs.

    ``dataset`` replaces the config's dataset (tests and notebooks pass data they built).
    """
    dataset = dataset if dataset is not None else load_dataset(config.dataset.name)
    cache = cache or FeatureCache()
    model_cls = MODELS.get(config.model.name)
    # Features depend only on the featurizer params, which a sweep over model params may not change.
    featurizer = model_cls(model_cls.Params.model_validate(config.model.params)).featurizer()
    features = cache.get(dataset, featurizer)
    context = build_context(dataset, features, config.evaluation.split, config.evaluation.threshold)
    return dataset, context, plan_runs(config), cache


def run_experiment(
    config: ExperimentConfig,
    tracker_factory: Callable[[], Tracker],
    progress: ProgressCallback | None = None,
    cache: FeatureCache | None = None,
    dataset: AnnotationSet | None = None,
) -> ExperimentResult:
    """Run every planned run, logging each as a child of one parent run.

    A run that raises is marked FAILED (traceback logged) and the sweep goes on; Ctrl-C marks the
    running child and the parent KILLED. Nothing is left RUNNING.
    """
    # Load and featurize before touching the tracking store: bad data fails with no run created.
    dataset, context, specs, cache = prepare(config, cache, dataset)
    tracker = tracker_factory()
    digest = dataset.digest()
    split = config.evaluation.split

    parent_tags = {
        "smo.kind": "experiment",
        "smo.config_hash": config.config_hash(),
        "smo.code_version": code_version(),
        "smo.data_digest": digest,
        "smo.dataset": dataset.name,
        "smo.runs_planned": str(len(specs)),
        "mlflow.note.content": config.description or f"Experiment {config.name}",
    }
    parent_id = tracker.start_run(config.name, parent_tags)
    rows: list[dict[str, Any]] = []
    failures: list[tuple[str, str]] = []
    controls: dict[int, RunResult] = {}
    try:
        tracker.log_params(parent_id, flatten(config.to_dict()))
        tracker.log_text(parent_id, config.to_yaml(), "config/resolved.yaml")
        tracker.log_dataset(parent_id, dataset.items, dataset.name, digest, _dataset_source(dataset.name))

        for index, spec in enumerate(specs):
            if progress:
                progress(spec, index, len(specs), "start")
            status = _run_one(spec, config, context, tracker, parent_id, digest, controls, rows, failures)
            if progress:
                progress(spec, index + 1, len(specs), status)

        runs = pd.DataFrame(rows)
        arm_order = [config.control] + [a for a in config.arms if a != config.control]
        table = summarize(runs, split, arm_order)
        if not table.empty:
            tracker.log_metrics(parent_id, summary_metrics(table))
            tracker.log_frame(parent_id, table, "summary/summary.csv")
            tracker.log_text(parent_id, to_markdown(table, split), "summary/summary.md")
            tracker.log_frame(parent_id, runs.drop(columns=["grid_params"]), "summary/runs.csv")
            for metric in (f"{split}/macro_f1", f"{split}/recall"):
                figure = dose_response_figure(runs, metric, config.control)
                if figure is not None:
                    tracker.log_figure(parent_id, figure, f"plots/dose_response_{metric.split('/')[-1]}.png")
                    import matplotlib.pyplot as plt

                    plt.close(figure)
        tracker.log_metrics(parent_id, {**cache.stats.as_metrics(), "runs/failed": len(failures), "runs/finished": len(rows)})
        tracker.set_tags(parent_id, {"smo.failed_runs": str(len(failures))})
        tracker.end_run(parent_id, "FAILED" if failures else "FINISHED")
    except KeyboardInterrupt:
        tracker.end_run(parent_id, "KILLED")
        raise
    except BaseException:
        tracker.end_run(parent_id, "FAILED")
        raise
    return ExperimentResult(parent_id, runs, table, failures, cache.stats.as_metrics())


def _run_one(
    spec: RunSpec,
    config: ExperimentConfig,
    context: RunContext,
    tracker: Tracker,
    parent_id: str,
    digest: str,
    controls: dict[int, RunResult],
    rows: list[dict[str, Any]],
    failures: list[tuple[str, str]],
) -> str:
    """Run and log one child run; return its final status."""
    resolved = spec.resolved(config)
    tags = {
        "smo.kind": "run",
        "smo.arm": spec.arm,
        "smo.seed": str(spec.seed),
        "smo.grid": spec.grid_label,
        "smo.is_control": str(spec.is_control).lower(),
        "smo.config_hash": config.config_hash(),
        "smo.run_key": spec.key(config, digest),
        "smo.code_version": code_version(),
        "smo.data_digest": digest,
    }
    run_id = tracker.start_run(spec.name, tags, parent_id=parent_id)
    try:
        params = {"arm": spec.arm, "seed": spec.seed, "dataset": spec.dataset}
        params.update({f"grid.{k}": v for k, v in spec.grid})
        for step in spec.steps:
            params.update({f"treatment.{step.name}.{k}": v for k, v in flatten(step.params).items()})
        params["treatment.steps"] = ",".join(s.name for s in spec.steps)
        params.update(flatten(resolved["model"], "model"))
        params.update(flatten(resolved["evaluation"], "evaluation"))
        tracker.log_params(run_id, params)
        tracker.log_text(run_id, yaml.safe_dump(resolved, sort_keys=False), "config/resolved.yaml")
        tracker.log_dataset(run_id, context.dataset.items, context.dataset.name, digest, _dataset_source(spec.dataset))

        result = execute_run(spec, context)

        metrics = dict(result.metrics)
        if spec.is_control:
            controls[spec.seed] = result
        elif spec.seed in controls:
            base = controls[spec.seed].metrics
            split = context.eval_split
            metrics.update(
                {f"delta/{k}": metrics[k] - base[k] for k in metrics if k.startswith(f"{split}/") and k in base}
            )
        metrics["time/run_seconds"] = result.seconds
        tracker.log_metrics(run_id, metrics)
        if config.tracking.log_predictions:
            tracker.log_frame(run_id, result.predictions, f"predictions/{context.eval_split}.parquet")
        if not result.changes.empty:
            changes = result.changes.astype({"label_before": str, "label_after": str})
            tracker.log_frame(run_id, changes, "treatment/changes.parquet")
        for name, frame in result.step_artifacts.items():
            tracker.log_text(run_id, frame.to_csv(), f"treatment/{name}.csv")
        tracker.end_run(run_id, "FINISHED")
    except KeyboardInterrupt:
        tracker.end_run(run_id, "KILLED")
        raise
    except Exception as exc:  # noqa: BLE001 - one failed run must not stop the sweep
        try:
            tracker.log_text(run_id, traceback.format_exc(), "error/traceback.txt")
            tracker.set_tags(run_id, {"smo.error": f"{type(exc).__name__}: {exc}"[:500]})
        finally:
            tracker.end_run(run_id, "FAILED")
        failures.append((spec.name, f"{type(exc).__name__}: {exc}"))
        return "FAILED"
    rows.append(
        {
            "run_id": run_id,
            "run_name": spec.name,
            "arm": spec.arm,
            "grid": spec.grid_label,
            "grid_params": dict(spec.grid),
            "seed": spec.seed,
            **metrics,
        }
    )
    return "FINISHED"


def _dataset_source(name: str) -> str:
    try:
        info = get_info(name)
    except SmoError:
        return f"smo-impact://{name}"
    return info.files[0].url.rsplit("/", 1)[0] if info.files else f"smo-impact://{name}"


__all__ = ["ExperimentResult", "prepare", "run_experiment", "__version__"]
