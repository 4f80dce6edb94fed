"""One run, stage by stage: treat -> train -> evaluate. Logging is the caller's job."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.data.schema import AnnotationSet
from smo_impact.errors import DataError
from smo_impact.evaluation.benchmarks import Benchmark, BenchmarkResult, build_benchmarks, score_benchmark
from smo_impact.models import MODELS
from smo_impact.models.base import DevSet
from smo_impact.models.features import Features
from smo_impact.quality.training import training_label_quality
from smo_impact.runner.plan import RunSpec
from smo_impact.treatments import TREATMENTS, LabelState
from smo_impact.treatments.aggregate import majority_vote


# Evaluation randomness (bootstrap) is its own stream of the run seed, apart from the steps'.
EVALUATION_STREAM = 6


@dataclass(frozen=True)
class RunContext:
    """Inputs shared by every run of an experiment, computed once."""

    dataset: AnnotationSet
    features: Features
    initial_state: LabelState  # untreated training data
    untreated_labels: pd.Series  # majority of all raters on the training split (for labels_changed)
    eval_split: str
    eval_items: pd.DataFrame
    reference: pd.Series  # reference label per evaluation task
    threshold: float
    dev_items: pd.DataFrame | None = None  # dev split, for models that stop early on it
    dev_reference: pd.Series | None = None  # majority of all raters per dev task (untreated)
    benchmarks: tuple[Benchmark, ...] = ()  # scored in every run; the primary one (eval_split) first
    bootstrap: int = 1000  # resamples for confidence intervals
    confidence: float = 0.95


@dataclass
class RunResult:
    spec: RunSpec
    metrics: dict[str, float]
    predictions: pd.DataFrame
    changes: pd.DataFrame
    step_artifacts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # metric -> [(step, value)]
    model_files: dict[str, bytes] = field(default_factory=dict)  # the saved model, path -> content
    benchmarks: dict[str, BenchmarkResult] = field(default_factory=dict)  # score per benchmark namespace


def build_context(
    dataset: AnnotationSet,
    features: Features,
    eval_split: str,
    threshold: float,
    evaluation: Any = None,
    suites: dict[str, AnnotationSet] | None = None,
) -> RunContext:
    """The untreated training state, the reference labels of the evaluation split, the benchmarks.

    ``evaluation`` (an EvaluationSpec) adds its benchmarks and bootstrap settings; ``suites`` are the
    loaded functional suites they name (their items must be in ``features``).
    """
    train_items = dataset.split("train").reset_index(drop=True)
    train_annotations = dataset.split_annotations("train").reset_index(drop=True)
    initial = LabelState(
        items=train_items,
        annotations=train_annotations,
        labels_set=tuple(dataset.labels),
        positive_label=dataset.positive_label,
        workers=dataset.workers,
        features=features,
    )
    untreated = majority_vote(train_annotations, dataset.labels, dataset.positive_label, "positive")
    eval_items = dataset.split(eval_split).reset_index(drop=True)
    reference = majority_vote(
        dataset.split_annotations(eval_split), dataset.labels, dataset.positive_label, "positive"
    ).reindex(eval_items["task"])
    dev_items = dataset.split("dev").reset_index(drop=True)
    dev_reference = majority_vote(
        dataset.split_annotations("dev"), dataset.labels, dataset.positive_label, "positive"
    ).reindex(dev_items["task"])
    has_dev = len(dev_items) > 0 and dev_reference.notna().all()
    if evaluation is None:
        from smo_impact.config import EvaluationSpec

        evaluation = EvaluationSpec(split=eval_split, threshold=threshold)
    return RunContext(
        dataset, features, initial, untreated, eval_split, eval_items, reference, threshold,
        dev_items if has_dev else None, dev_reference if has_dev else None,
        benchmarks=tuple(build_benchmarks(dataset, evaluation, suites)),
        bootstrap=evaluation.bootstrap,
        confidence=evaluation.confidence,
    )


def execute_run(spec: RunSpec, ctx: RunContext) -> RunResult:
    """Apply the arm's treatments, train the model, score it on the evaluation split."""
    start = time.perf_counter()
    metrics: dict[str, float] = {}
    artifacts: dict[str, Any] = {}

    # 1. Treat: each step gets its own generator derived from the run seed.
    state = ctx.initial_state
    step_seeds = np.random.SeedSequence(spec.seed).spawn(len(spec.steps))
    for step, seed_seq in zip(spec.steps, step_seeds):
        treatment_cls = TREATMENTS.get(step.name)
        treatment = treatment_cls(treatment_cls.Params.model_validate(step.params))
        try:
            state = treatment.apply(state, np.random.default_rng(seed_seq))
        except (ValueError, KeyError) as exc:
            # By convention a treatment raises ValueError for data it cannot treat (a pool that
            # selects no one, a column the data lacks): a data/config problem, not a crash.
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise DataError(f"arm '{spec.arm}', step '{step.name}': {message}") from exc
        metrics.update(treatment.metrics_)
        if hasattr(treatment, "flip_matrix_"):
            artifacts[f"{step.name}_flip_matrix"] = treatment.flip_matrix_
        artifacts.update(getattr(treatment, "artifacts_", {}))  # e.g. rater skills, simulated confusions
    labels = state.labels
    if labels is None:
        raise ValueError(f"arm '{spec.arm}' produced no training labels: add an 'aggregate' step")
    changed = labels.ne(ctx.untreated_labels.reindex(labels.index))
    metrics.update(
        {
            "treatment/items_kept": float(len(labels)),
            "treatment/judgements_kept": float(len(state.annotations)),
            "treatment/labels_changed": float(changed.sum()),
            "treatment/label_change_rate": float(changed.mean()) if len(labels) else 0.0,
            "treatment/positive_rate": float((labels == state.positive_label).mean()),
        }
    )
    # Quality of the labels this run trains on (alpha, realized noise, rater agreement).
    metrics.update(training_label_quality(state, ctx))

    # 2. Train on cached features of the kept items; models that ask (``fit_inputs``) also get
    #    the dev split for early stopping and the arm's soft labels (see models/base.py).
    model_cls = MODELS.get(spec.model.name)
    model = model_cls(model_cls.Params.model_validate(spec.model.params))
    # A guideline step may redefine the label set: the state's positive label is the one to train on.
    y_train = (labels.to_numpy() == state.positive_label).astype(int)
    if len(np.unique(y_train)) < 2:
        raise ValueError(f"training labels of run {spec.name} contain a single class; nothing to learn")
    fit_inputs = getattr(model_cls, "fit_inputs", frozenset())
    extra: dict[str, Any] = {}
    if "dev" in fit_inputs and ctx.dev_items is not None:
        y_dev = (ctx.dev_reference.to_numpy() == ctx.dataset.positive_label).astype(int)
        extra["dev"] = DevSet(ctx.features.rows(ctx.dev_items["task"]), y_dev)
    if state.soft_labels is not None and "soft_labels" not in fit_inputs:
        raise ValueError(
            f"arm '{spec.arm}' produces soft labels (aggregate soft: true) but model '{spec.model.name}' "
            "trains on hard labels only; use a model that takes soft labels (e.g. embedding_logreg) "
            "or drop soft: true"
        )
    if "soft_labels" in fit_inputs and state.soft_labels is not None:
        extra["soft_labels"] = _positive_share(state.soft_labels, labels.index, state.positive_label)
    model.fit(ctx.features.rows(labels.index), y_train, seed=spec.seed, **extra)
    metrics.update(getattr(model, "metrics_", {}))

    # 3. Evaluate on every benchmark against its reference labels; bootstrap seeded from the run seed.
    scored: dict[str, BenchmarkResult] = {}
    for i, bench in enumerate(ctx.benchmarks):
        proba = model.predict_proba(ctx.features.rows(bench.items["task"]))
        score = proba[:, list(model.classes_).index(1)]
        rng = np.random.default_rng([spec.seed, EVALUATION_STREAM, i])
        scored[bench.namespace] = score_benchmark(bench, score, ctx.threshold, rng, ctx.bootstrap, ctx.confidence)
        metrics.update(scored[bench.namespace].metrics)
    predictions = scored[ctx.eval_split].predictions
    return RunResult(
        spec=spec,
        metrics=metrics,
        predictions=predictions,
        changes=state.changes,
        step_artifacts=artifacts,
        seconds=time.perf_counter() - start,
        curves=getattr(model, "curves_", {}),
        model_files=_saved_files(model),
        benchmarks=scored,
    )


def _positive_share(soft_labels: pd.DataFrame, tasks: pd.Index, positive: Any) -> np.ndarray:
    """P(positive) per training task from a task x label distribution (rows normalised here)."""
    if positive not in soft_labels.columns:
        raise ValueError(f"soft labels have no column for the positive label {positive!r}; columns: {list(soft_labels.columns)}")
    table = soft_labels.reindex(tasks)
    if table.isna().any().any():
        missing = table.index[table.isna().any(axis=1)][:3].tolist()
        raise ValueError(f"soft labels are missing for training task(s) {missing}")
    totals = table.sum(axis=1).to_numpy(dtype=float)
    return table[positive].to_numpy(dtype=float) / np.where(totals > 0, totals, 1.0)


def _saved_files(model: Any) -> dict[str, bytes]:
    """The model's ``save(directory)`` output as bytes, so it can travel back from a worker process."""
    if not hasattr(model, "save"):
        return {}
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp))
        return {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
