"""One run, stage by stage: treat -> train -> score. Logging and comparison are the caller's job.

``treat``, ``train`` and ``score`` are the only implementations of those stages: the runner and
root-cause analysis (which retrains with some label changes reverted) both call them, so an
attribution re-scores exactly as the logged run was scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.config import ModelSpec, stable_hash
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
# The arm's treatments applied to the dev split (early-stopping labels) draw from their own stream.
DEV_STREAM = 8


@dataclass(frozen=True)
class RunContext:
    """Inputs shared by every run of an experiment, computed once.

    ``model_features`` holds one feature matrix per distinct featurizer the plan needs, keyed by
    :func:`model_key` of a run's model spec (a sweep over ``model.ngram_max`` trains each grid
    point on its own features); ``features`` is the experiment's base model's, used where a
    cheap model on cached features is needed outside training (RCA neighbours).
    """

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
    model_features: Mapping[str, Features] = field(default_factory=dict)

    def features_for(self, model: ModelSpec) -> Features:
        """The cached features a run with this model spec trains and predicts on."""
        return self.model_features.get(model_key(model), self.features)


def model_key(model: ModelSpec) -> str:
    """Identity of a model spec (name and params), for looking up its features."""
    return stable_hash(model.model_dump(mode="json"))


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


@dataclass
class Treated:
    """The training data of a run after its treatment steps, and what the steps reported."""

    state: LabelState
    metrics: dict[str, float]
    artifacts: dict[str, Any]

    @property
    def labels(self) -> pd.Series:
        return self.state.labels


def build_context(
    dataset: AnnotationSet,
    features: Features,
    eval_split: str,
    threshold: float,
    evaluation: Any = None,
    suites: dict[str, AnnotationSet] | None = None,
    model_features: Mapping[str, Features] | None = None,
) -> RunContext:
    """The untreated training state, the reference labels of the evaluation split, the benchmarks.

    ``evaluation`` (an EvaluationSpec) adds its benchmarks and bootstrap settings; ``suites`` are the
    loaded functional suites they name (their items must be in ``features``); ``model_features``
    maps :func:`model_key` to features for runs whose featurizer differs from the base model's.
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
        model_features=dict(model_features or {}),
    )


def execute_run(spec: RunSpec, ctx: RunContext) -> RunResult:
    """Apply the arm's treatments, train the model, score it on every benchmark."""
    start = time.perf_counter()

    # 1. Treat: each step gets its own generator derived from the run seed.
    treated = treat(spec, ctx)
    metrics = dict(treated.metrics)

    # 2. Train on cached features of the kept items (plus dev labels and soft labels if the model asks).
    model = train(spec, ctx, treated.state)
    metrics.update(getattr(model, "metrics_", {}))

    # 3. Score every benchmark against its reference labels; bootstrap seeded from the run seed.
    scored = score(spec, ctx, model)
    for result in scored.values():
        metrics.update(result.metrics)
    return RunResult(
        spec=spec,
        metrics=metrics,
        predictions=scored[ctx.benchmarks[0].namespace].predictions,  # the primary benchmark's
        changes=treated.state.changes,
        step_artifacts=treated.artifacts,
        seconds=time.perf_counter() - start,
        curves=getattr(model, "curves_", {}),
        model_files=_saved_files(model),
        benchmarks=scored,
    )


def apply_steps(
    spec: RunSpec, state: LabelState, seed: Any, *, start: int = 0,
    after_step: Callable[[int, LabelState, LabelState], LabelState] | None = None,
) -> tuple[LabelState, dict[str, float], dict[str, Any]]:
    """Run the arm's steps on ``state``, each with its own generator spawned from ``seed``.

    Returns the final state, the steps' ``metrics_`` and their artifacts (flip matrices, skills).
    A treatment raises ValueError/KeyError for data it cannot treat (a pool that selects no one,
    a column the data lacks): that is a data/config problem, reported as a DataError.

    For root-cause analysis: ``start`` skips the first steps (``state`` is then the state before
    step ``start``; each step keeps its own generator), and ``after_step(index, before, after)``
    sees each step's input and output and returns the state the next step gets.
    """
    metrics: dict[str, float] = {}
    artifacts: dict[str, Any] = {}
    for index, (step, seed_seq) in enumerate(zip(spec.steps, np.random.SeedSequence(seed).spawn(len(spec.steps)))):
        if index < start:
            continue
        before = state
        treatment_cls = TREATMENTS.get(step.name)
        treatment = treatment_cls(treatment_cls.Params.model_validate(step.params))
        try:
            state = treatment.apply(state, np.random.default_rng(seed_seq))
        except (ValueError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise DataError(f"arm '{spec.arm}', step '{step.name}': {message}") from exc
        metrics.update(treatment.metrics_)
        if hasattr(treatment, "flip_matrix_"):
            artifacts[f"{step.name}_flip_matrix"] = treatment.flip_matrix_
        artifacts.update(getattr(treatment, "artifacts_", {}))  # e.g. rater skills, simulated confusions
        if after_step is not None:
            state = after_step(index, before, state)
    return state, metrics, artifacts


def preflight(specs: list[RunSpec], ctx: RunContext, everything: bool = False) -> list[str]:
    """Problems an arm's steps would hit on this data, found before any run is created.

    For each distinct (arm, grid point), the arm's steps are applied to the training data with the
    first seed, as far as they are cheap (``preflight`` on the treatment class: a bool, or a function
    of the step's params: rater pools, budgets, guidelines, majority vote, noise...; the first
    costly step, e.g. GLAD or cleaning, ends the check since later steps depend on its output), or
    all of them with ``everything`` (``validate --data``). When every step ran, the training labels
    must exist and hold two classes, as :func:`train` requires.
    """
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        if (spec.arm, spec.grid_label) in seen:
            continue
        seen.add((spec.arm, spec.grid_label))
        at = "" if spec.grid_label == "-" else f" at {spec.grid_label}"
        steps = spec.steps if everything else tuple(_cheap_prefix(spec.steps))
        if not steps:
            continue
        try:
            state = apply_steps(replace(spec, steps=steps), ctx.initial_state, spec.entropy)[0]
        except DataError as exc:
            problems.append(f"{exc}{at}")
            continue
        if len(steps) < len(spec.steps):
            continue
        if state.labels is None:
            problems.append(f"arm '{spec.arm}' produced no training labels: add an 'aggregate' step")
            continue
        positive = state.labels.to_numpy() == state.positive_label
        if positive.all() or not positive.any():
            problems.append(
                f"arm '{spec.arm}'{at}: the training labels of seed {spec.seed} contain a single class "
                f"({'all positive' if positive.all() else 'no positive'} of {len(positive)} items); nothing to learn"
            )
    return problems


def _cheap_prefix(steps: tuple) -> list:
    """The leading steps whose treatment says it is cheap enough to try before any run."""
    out = []
    for step in steps:
        cls = TREATMENTS.get(step.name)
        cheap = getattr(cls, "preflight", False)
        if callable(cheap):
            cheap = cheap(cls.Params.model_validate(step.params))
        if not cheap:
            break
        out.append(step)
    return out


def treat(spec: RunSpec, ctx: RunContext) -> Treated:
    """The run's training labels: its arm's steps applied to the untreated training data."""
    initial = ctx.initial_state
    features = ctx.features_for(spec.model)
    if features is not initial.features:  # steps with a cheap model (cleaning) use the run's features
        initial = initial.evolve(features=features)
    state, metrics, artifacts = apply_steps(spec, initial, spec.entropy)
    labels = state.labels
    if labels is None:
        raise DataError(f"arm '{spec.arm}' produced no training labels: add an 'aggregate' step")
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
    # Class shares of the training labels: an arm that wins by having more harmful labels shows here.
    shares = labels.value_counts(normalize=True)
    metrics.update({f"treatment/class_share/{c}": float(shares.get(c, 0.0)) for c in state.labels_set})
    # Quality of the labels this run trains on (alpha, realized noise, rater agreement).
    metrics.update(training_label_quality(state, ctx))
    return Treated(state, metrics, artifacts)


def train(spec: RunSpec, ctx: RunContext, state: LabelState) -> Any:
    """Fit the run's model on ``state.labels`` (positive class: ``state.positive_label``).

    Models that ask (``fit_inputs``) also get the dev split for early stopping, labelled as the
    model's ``dev_labels`` param says (default ``treated``: the arm's own steps applied to the dev
    judgements), and the arm's soft labels.
    """
    labels = state.labels
    model_cls = MODELS.get(spec.model.name)
    params = model_cls.Params.model_validate(spec.model.params)
    model = model_cls(params)
    features = ctx.features_for(spec.model)
    # A guideline step may redefine the label set: the state's positive label is the one to train on.
    y_train = (labels.to_numpy() == state.positive_label).astype(int)
    if len(np.unique(y_train)) < 2:
        raise DataError(
            f"training labels of run {spec.name} contain a single class "
            f"({'all positive' if y_train.all() else 'no positive'} of {len(y_train)}); nothing to learn"
        )
    fit_inputs = getattr(model_cls, "fit_inputs", frozenset())
    extra: dict[str, Any] = {}
    if "dev" in fit_inputs and ctx.dev_items is not None:
        extra["dev"] = dev_set(spec, ctx, getattr(params, "dev_labels", "reference"))
    if state.soft_labels is not None and "soft_labels" not in fit_inputs:
        raise DataError(
            f"arm '{spec.arm}' produces soft labels (aggregate soft: true) but model '{spec.model.name}' "
            "trains on hard labels only; use a model that takes soft labels (e.g. embedding_logreg) "
            "or drop soft: true"
        )
    if "soft_labels" in fit_inputs and state.soft_labels is not None:
        extra["soft_labels"] = _positive_share(state.soft_labels, labels.index, state.positive_label)
    model.fit(features.rows(labels.index), y_train, seed=spec.model_seed, **extra)
    return model


def dev_set(spec: RunSpec, ctx: RunContext, which: str) -> DevSet:
    """The dev split for early stopping: ``reference`` = untreated majority of all raters;
    ``treated`` = the arm's steps applied to the dev judgements (what a team that has only its
    treated labels selects epochs on)."""
    features = ctx.features_for(spec.model)
    if which == "reference":
        y = (ctx.dev_reference.to_numpy() == ctx.dataset.positive_label).astype(int)
        return DevSet(features.rows(ctx.dev_items["task"]), y)
    dataset = ctx.dataset
    state = LabelState(
        items=ctx.dev_items,
        annotations=dataset.split_annotations("dev").reset_index(drop=True),
        labels_set=tuple(dataset.labels),
        positive_label=dataset.positive_label,
        workers=dataset.workers,
        features=features,
    )
    try:
        entropy = spec.entropy if isinstance(spec.entropy, list) else [spec.entropy]
        state, _, _ = apply_steps(spec, state, [*entropy, DEV_STREAM])
    except DataError as exc:
        raise DataError(f"{exc} (on the dev split, for early-stopping labels; set model.params.dev_labels: reference "
                        "to stop on the untreated majority instead)") from exc
    labels = state.labels
    if labels is None or labels.empty:
        raise DataError(f"arm '{spec.arm}' left no labelled dev item for early stopping; set model.params.dev_labels: reference")
    return DevSet(features.rows(labels.index), (labels.to_numpy() == state.positive_label).astype(int))


def positive_scores(model: Any, X: Any) -> np.ndarray:
    """P(positive) per row: the model's probability column of class 1."""
    return model.predict_proba(X)[:, list(model.classes_).index(1)]


def score(spec: RunSpec, ctx: RunContext, model: Any) -> dict[str, BenchmarkResult]:
    """Every benchmark's metrics and per-item predictions for a trained model."""
    features = ctx.features_for(spec.model)
    scored: dict[str, BenchmarkResult] = {}
    for i, bench in enumerate(ctx.benchmarks):
        scores = positive_scores(model, features.rows(bench.items["task"]))
        rng = np.random.default_rng([spec.seed, EVALUATION_STREAM, i])
        scored[bench.namespace] = score_benchmark(bench, scores, ctx.threshold, rng, ctx.bootstrap, ctx.confidence)
    return scored


def _positive_share(soft_labels: pd.DataFrame, tasks: pd.Index, positive: Any) -> np.ndarray:
    """P(positive) per training task from a task x label distribution (rows normalised here)."""
    if positive not in soft_labels.columns:
        raise DataError(f"soft labels have no column for the positive label {positive!r}; columns: {list(soft_labels.columns)}")
    table = soft_labels.reindex(tasks)
    if table.isna().any().any():
        missing = table.index[table.isna().any(axis=1)][:3].tolist()
        raise DataError(f"soft labels are missing for training task(s) {missing}")
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


def check_data(config: Any) -> tuple[AnnotationSet, list[RunSpec], list[str]]:
    """What ``smo-impact validate --data`` checks, without featurizing or training anything.

    The dataset (and any functional suite) loads and passes every data check; the benchmarks
    find their splits and slice columns (``build_context``); and, for each distinct (arm, grid
    point), the arm's steps run on the training data with the first seed and leave training
    labels of two classes, as :func:`train` requires. A step that would fit a cheap model (clean)
    uses its TF-IDF fallback here, since there are no cached features.

    Returns:
        The dataset, the planned runs, and every problem found (empty when the data is fine).
    """
    from smo_impact.data.catalog import load_dataset
    from smo_impact.data.loader import load_data
    from smo_impact.runner.plan import plan_runs

    dataset = load_data(config.dataset)
    suites = {b.suite: load_dataset(b.suite) for b in config.evaluation.benchmarks if b.suite is not None}
    specs = plan_runs(config)
    ctx = build_context(dataset, None, config.evaluation.split, config.evaluation.threshold, config.evaluation, suites)
    problems = preflight(specs, ctx, everything=True)
    return dataset, specs, problems
