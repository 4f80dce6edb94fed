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
from smo_impact.data.schema import AnnotationSet, positions_in
from smo_impact.errors import ConfigError, DataError
from smo_impact.evaluation.benchmarks import (
    Benchmark,
    BenchmarkResult,
    build_benchmarks,
    is_multiclass,
    score_benchmark,
)
from smo_impact.models import MODELS
from smo_impact.models.base import DevSet
from smo_impact.models.features import Features
from smo_impact.quality.training import training_label_quality
from smo_impact.runner.logged_models import keeps_model
from smo_impact.runner.plan import RunSpec
from smo_impact.treatments import TREATMENTS, LabelState
from smo_impact.treatments.aggregate import majority_vote
from smo_impact.treatments.costs import cost_metrics

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
    task: str = "auto"  # evaluation.task: auto | binary | multiclass
    log_models: str = "all"  # tracking.log_models: the runs whose trained model is saved and logged

    def features_for(self, model: ModelSpec) -> Features:
        """The cached features a run with this model spec trains and predicts on."""
        return self.model_features.get(model_key(model), self.features)


@dataclass(frozen=True)
class LabelSpace:
    """What a trained model's class codes mean (``model.label_space_``, set by :func:`train`).

    Attributes:
        classes: K-class models: the training label set (code i = ``classes[i]``); empty for a
            binary model, whose class 1 is harmful.
        harmful: The codes the binary view adds up into P(harmful).
    """

    classes: tuple = ()
    harmful: tuple[int, ...] = (1,)


BINARY = LabelSpace()


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
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # per-round step metrics

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
    log_models: str = "all",
) -> RunContext:
    """The untreated training state, the reference labels of the evaluation split, the benchmarks.

    ``evaluation`` (an EvaluationSpec) adds its benchmarks and bootstrap settings; ``suites`` are the
    loaded functional suites they name (their items must be in ``features``); ``model_features``
    maps :func:`model_key` to features for runs whose featurizer differs from the base model's;
    ``log_models`` (tracking.log_models) says which runs save their trained model.
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
        harmful_labels=tuple(dataset.binary_positive),
        ordinal=dataset.ordinal,
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
    benchmarks = tuple(build_benchmarks(dataset, evaluation, suites))
    _check_ordinal_gates(evaluation, benchmarks)
    return RunContext(
        dataset, features, initial, untreated, eval_split, eval_items, reference, threshold,
        dev_items if has_dev else None, dev_reference if has_dev else None,
        benchmarks=benchmarks,
        bootstrap=evaluation.bootstrap,
        confidence=evaluation.confidence,
        model_features=dict(model_features or {}),
        task=getattr(evaluation, "task", "auto"),
        log_models=log_models,
    )


def _check_ordinal_gates(evaluation: Any, benchmarks: tuple[Benchmark, ...]) -> None:
    """An ordinal metric (mae, qwk) gated on a benchmark that is not an ordered K-class scale has no
    value to gate: refused with the fix, before any run."""
    from smo_impact.evaluation.metrics import ORDINAL_METRICS

    by_name = {b.namespace: b for b in benchmarks}
    for metric in evaluation.gates.max_drop:
        namespace, _, name = metric.partition("/")
        bench = by_name.get(namespace)
        if name not in ORDINAL_METRICS or bench is None or (bench.multiclass and bench.ordinal):
            continue
        scale = (f"the nominal labels {list(bench.classes)}" if bench.multiclass else "harmful vs benign")
        raise DataError(
            f"evaluation.gates.max_drop.{metric}: {name} is an ordinal metric, but benchmark '{namespace}' scores "
            f"{scale}; declare an ordered scale (dataset.ordinal: true, or ordinal: true on the guideline that "
            "maps to it) or gate macro_f1 instead"
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
        curves={**treated.curves, **getattr(model, "curves_", {})},
        # Saving a TF-IDF model costs ~0.2 s, a tenth of the run: only for runs that keep it.
        model_files=_saved_files(model) if keeps_model(spec, ctx.log_models) else {},
        benchmarks=scored,
    )


def apply_steps(
    spec: RunSpec, state: LabelState, seed: Any, *, start: int = 0,
    after_step: Callable[[int, LabelState, LabelState], LabelState] | None = None,
    curves: dict[str, list[tuple[int, float]]] | None = None,
) -> tuple[LabelState, dict[str, float], dict[str, Any]]:
    """Run the arm's steps on ``state``, each with its own generator spawned from ``seed``.

    Returns the final state, the steps' ``metrics_`` and their artifacts (flip matrices, skills).
    A treatment raises ValueError/KeyError for data it cannot treat (a pool that selects no one,
    a column the data lacks): that is a data/config problem, reported as a DataError.

    For root-cause analysis: ``start`` skips the first steps (``state`` is then the state before
    step ``start``; each step keeps its own generator), and ``after_step(index, before, after)``
    sees each step's input and output and returns the state the next step gets. ``curves``, when
    given, collects the steps' per-round metrics (``curves_``: metric -> [(round, value)]).

    With ``spec.costs`` (the config's ``costs``), the judgements the labels are built from (those
    present when the first aggregation step runs) are priced: ``treatment/cost`` and
    ``treatment/cost/<pool>`` (see :func:`~smo_impact.treatments.costs.cost_metrics`); they replace
    a step's own ``treatment/cost``.
    """
    metrics: dict[str, float] = {}
    artifacts: dict[str, Any] = {}
    costs = getattr(spec, "costs", None)
    if costs is not None and state.costs is None:  # steps that spend a budget price judgements with it
        state = state.evolve(costs=costs)
    spent: pd.DataFrame | None = None  # the judgements the training labels are built from
    rounds = 1  # labelling rounds: one for a one-shot design, more where a step buys in rounds
    priced_items = state.items  # item texts, for costs.per_char (before any step drops items)
    for index, (step, seed_seq) in enumerate(zip(spec.steps, np.random.SeedSequence(seed).spawn(len(spec.steps)))):
        if index < start:
            continue
        before = state
        treatment_cls = TREATMENTS.get(step.name)
        treatment = treatment_cls(treatment_cls.Params.model_validate(step.params))
        if spent is None and state.labels is None and getattr(treatment_cls, "produces_labels", False):
            spent = state.annotations  # what was paid for; later steps (cleaning) refund nothing
        try:
            state = treatment.apply(state, np.random.default_rng(seed_seq))
        except (ValueError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise DataError(f"arm '{spec.arm}', step '{step.name}': {message}") from exc
        metrics.update(treatment.metrics_)
        rounds += getattr(treatment, "rounds_", 0)
        if hasattr(treatment, "flip_matrix_"):
            artifacts[f"{step.name}_flip_matrix"] = treatment.flip_matrix_
        artifacts.update(getattr(treatment, "artifacts_", {}))  # e.g. rater skills, simulated confusions
        if curves is not None:
            curves.update(getattr(treatment, "curves_", {}))  # metric -> [(round, value)]
        if after_step is not None:
            state = after_step(index, before, state)
    if costs is not None and start == 0:
        try:
            metrics.update(cost_metrics(state.annotations if spent is None else spent, state.workers, costs, rounds, priced_items))
        except ValueError as exc:
            raise DataError(f"arm '{spec.arm}': {exc}") from exc
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
        try:
            state = apply_steps(replace(spec, steps=steps), ctx.initial_state, spec.entropy)[0]
            if len(steps) < len(spec.steps):  # the first costly step may still check its inputs cheaply
                _check_step(spec, spec.steps[len(steps)], state)
        except DataError as exc:
            problems.append(f"{exc}{at}")
            continue
        if len(steps) < len(spec.steps):
            continue
        if state.labels is None:
            problems.append(f"arm '{spec.arm}' produced no training labels: add an 'aggregate' step")
            continue
        if is_multiclass(ctx.task, state.labels_set):
            problem = _multiclass_problem(spec, state, ctx)
            if problem:
                problems.append(f"{problem}{at}")
            continue
        positive = _is_harmful(state.labels.to_numpy(), state.harmful)
        if positive.all() or not positive.any():
            problems.append(
                f"arm '{spec.arm}'{at}: the training labels of seed {spec.seed} contain a single class "
                f"({'all positive' if positive.all() else 'no positive'} of {len(positive)} items); nothing to learn"
            )
    return problems


def _multiclass_problem(spec: RunSpec, state: LabelState, ctx: RunContext) -> str | None:
    """Why a run could not train K classes on ``state``: a model that trains binary classifiers only,
    or training labels of a single class; None when it can."""
    model_cls = MODELS.get(spec.model.name)
    k = len(state.labels_set)
    if not getattr(model_cls, "multiclass", False):
        return (
            f"model.name: '{spec.model.name}' trains harmful-vs-benign classifiers only, but arm '{spec.arm}' trains "
            f"on {k} labels {list(state.labels_set)}; set evaluation.task: binary (harmful = dataset.positive_labels) "
            "or pick a model that trains K classes"
        )
    present = pd.unique(state.labels)
    if len(present) < 2:
        return (
            f"arm '{spec.arm}': the training labels of seed {spec.seed} contain a single class "
            f"({present[0]!r} for all {len(state.labels)} items); nothing to learn" if len(present) else
            f"arm '{spec.arm}': no training labels left for seed {spec.seed}; nothing to learn"
        )
    return None


def _is_harmful(values: np.ndarray, harmful: tuple) -> np.ndarray:
    """Whether each label is harmful in the binary view (``== positive`` for one harmful label)."""
    if len(harmful) == 1:
        return values == harmful[0]
    return np.isin(values, np.asarray(harmful, dtype=object))


def _check_step(spec: RunSpec, step: Any, state: LabelState) -> None:
    """A costly step's ``check(state)``, where it has one: what it would refuse (a budget below one
    judgement's price, a pool without a price), found without fitting anything."""
    cls = TREATMENTS.get(step.name)
    if not hasattr(cls, "check"):
        return
    costs = getattr(spec, "costs", None)
    if costs is not None and state.costs is None:
        state = state.evolve(costs=costs)
    try:
        cls(cls.Params.model_validate(step.params)).check(state)
    except (ValueError, KeyError) as exc:
        raise DataError(f"arm '{spec.arm}', step '{step.name}': {exc}") from exc


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
    curves: dict[str, list[tuple[int, float]]] = {}
    state, metrics, artifacts = apply_steps(spec, initial, spec.entropy, curves=curves)
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
    return Treated(state, metrics, artifacts, curves)


def train(spec: RunSpec, ctx: RunContext, state: LabelState) -> Any:
    """Fit the run's model on ``state.labels``.

    K classes (``evaluation.task`` multiclass, or auto and more than two labels in the state's label
    set): the model learns the class codes of ``state.labels_set``. Otherwise harmful vs benign:
    class 1 = the state's harmful labels (``state.harmful``: its positive label unless
    ``positive_labels`` say more). The fitted model carries ``label_space_`` (:class:`LabelSpace`).

    Models that ask (``fit_inputs``) also get the dev split for early stopping, labelled as the
    model's ``dev_labels`` param says (default ``treated``: the arm's own steps applied to the dev
    judgements), the arm's soft labels (K-way vote shares for K classes) and ``n_classes``.
    """
    labels = state.labels
    model_cls = MODELS.get(spec.model.name)
    params = model_cls.Params.model_validate(spec.model.params)
    model = model_cls(params)
    features = ctx.features_for(spec.model)
    # A guideline step may redefine the label set: the state's labels are the ones to train on.
    multiclass = is_multiclass(ctx.task, state.labels_set)
    if multiclass:
        problem = _multiclass_problem(spec, state, ctx)
        if problem:
            raise DataError(problem)
        y_train = positions_in(labels, state.labels_set)
        space = LabelSpace(tuple(state.labels_set), tuple(positions_in(pd.Series(state.harmful, dtype=object), state.labels_set)))
    else:
        y_train = _is_harmful(labels.to_numpy(), state.harmful).astype(int)
        space = BINARY
        if len(np.unique(y_train)) < 2:
            raise DataError(
                f"training labels of run {spec.name} contain a single class "
                f"({'all positive' if y_train.all() else 'no positive'} of {len(y_train)}); nothing to learn"
            )
    fit_inputs = getattr(model_cls, "fit_inputs", frozenset())
    extra: dict[str, Any] = {}
    if multiclass and "n_classes" in fit_inputs:
        extra["n_classes"] = len(state.labels_set)
    if "dev" in fit_inputs and ctx.dev_items is not None:
        extra["dev"] = dev_set(spec, ctx, getattr(params, "dev_labels", "reference"), state if multiclass else None)
    if state.soft_labels is not None and "soft_labels" not in fit_inputs:
        raise DataError(
            f"arm '{spec.arm}' produces soft labels (aggregate soft: true) but model '{spec.model.name}' "
            "trains on hard labels only; use a model that takes soft labels (e.g. embedding_logreg) "
            "or drop soft: true"
        )
    if "soft_labels" in fit_inputs and state.soft_labels is not None:
        if multiclass:
            extra["soft_labels"] = _class_shares(state.soft_labels, labels.index, state.labels_set)
        else:
            extra["soft_labels"] = _positive_share(state.soft_labels, labels.index, state.harmful)
    model.fit(features.rows(labels.index), y_train, seed=spec.model_seed, **extra)
    model.label_space_ = space
    return model


def dev_set(spec: RunSpec, ctx: RunContext, which: str, training: LabelState | None = None) -> DevSet:
    """The dev split for early stopping: ``reference`` = untreated majority of all raters;
    ``treated`` = the arm's steps applied to the dev judgements (what a team that has only its
    treated labels selects epochs on). ``training``: the run's training state when it trains K
    classes (dev labels are then class codes of its label set), None for harmful vs benign."""
    features = ctx.features_for(spec.model)
    if which == "reference":
        if training is not None:
            y = positions_in(ctx.dev_reference, training.labels_set)
            if (y < 0).any():
                raise DataError(
                    f"arm '{spec.arm}' trains on the labels {list(training.labels_set)}, but the dev split's untreated "
                    f"majority uses the dataset's {list(ctx.dataset.labels)}; set model.params.dev_labels: treated"
                )
            return DevSet(features.rows(ctx.dev_items["task"]), y)
        y = _is_harmful(ctx.dev_reference.to_numpy(), ctx.initial_state.harmful).astype(int)
        return DevSet(features.rows(ctx.dev_items["task"]), y)
    dataset = ctx.dataset
    state = LabelState(
        items=ctx.dev_items,
        annotations=dataset.split_annotations("dev").reset_index(drop=True),
        labels_set=tuple(dataset.labels),
        positive_label=dataset.positive_label,
        workers=dataset.workers,
        features=features,
        harmful_labels=tuple(dataset.binary_positive),
        ordinal=dataset.ordinal,
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
    if training is not None:
        return DevSet(features.rows(labels.index), positions_in(labels, training.labels_set))
    return DevSet(features.rows(labels.index), _is_harmful(labels.to_numpy(), state.harmful).astype(int))


def positive_scores(model: Any, X: Any) -> np.ndarray:
    """P(positive) per row: the model's probability column of class 1."""
    return model.predict_proba(X)[:, list(model.classes_).index(1)]


def class_probabilities(model: Any, X: Any, n_classes: int) -> np.ndarray:
    """P(class) per row and class code ``0 .. n_classes - 1`` of a K-class model (0 for a class the
    model never saw in training: scikit-learn drops such classes from ``classes_``)."""
    proba = model.predict_proba(X)
    out = np.zeros((proba.shape[0], n_classes))
    out[:, np.asarray(model.classes_, dtype=int)] = proba
    return out


def score(spec: RunSpec, ctx: RunContext, model: Any) -> dict[str, BenchmarkResult]:
    """Every benchmark's metrics and per-item predictions for a trained model.

    A K-class model is scored with the K-class metrics on a K-class benchmark of the same label set,
    and on every benchmark's binary view with P(harmful) = the sum of its harmful classes'
    probabilities; a binary model with its P(class 1).
    """
    features = ctx.features_for(spec.model)
    space = getattr(model, "label_space_", BINARY)
    scored: dict[str, BenchmarkResult] = {}
    for i, bench in enumerate(ctx.benchmarks):
        X = features.rows(bench.items["task"])
        proba = None
        if space.classes:
            every = class_probabilities(model, X, len(space.classes))
            scores = every[:, list(space.harmful)].sum(axis=1)
            if bench.multiclass and tuple(bench.classes) == tuple(space.classes):
                proba = every
        else:
            scores = positive_scores(model, X)
        rng = np.random.default_rng([spec.seed, EVALUATION_STREAM, i])
        scored[bench.namespace] = score_benchmark(bench, scores, ctx.threshold, rng, ctx.bootstrap, ctx.confidence, proba)
    return scored


def _positive_share(soft_labels: pd.DataFrame, tasks: pd.Index, harmful: tuple) -> np.ndarray:
    """P(harmful) per training task from a task x label distribution (rows normalised here)."""
    missing_columns = [h for h in harmful if h not in soft_labels.columns]
    if missing_columns:
        raise DataError(
            f"soft labels have no column for the harmful label(s) {missing_columns}; columns: {list(soft_labels.columns)}"
        )
    table = soft_labels.reindex(tasks)
    if table.isna().any().any():
        missing = table.index[table.isna().any(axis=1)][:3].tolist()
        raise DataError(f"soft labels are missing for training task(s) {missing}")
    totals = table.sum(axis=1).to_numpy(dtype=float)
    share = table[harmful[0]] if len(harmful) == 1 else table[list(harmful)].sum(axis=1)
    return share.to_numpy(dtype=float) / np.where(totals > 0, totals, 1.0)


def _class_shares(soft_labels: pd.DataFrame, tasks: pd.Index, labels_set: tuple) -> np.ndarray:
    """The K-way vote shares per training task (items x K, columns in ``labels_set`` order)."""
    table = soft_labels.reindex(index=tasks, columns=list(labels_set))
    if table.isna().any().any():
        missing = table.index[table.isna().any(axis=1)][:3].tolist()
        raise DataError(f"soft labels are missing for training task(s) {missing}")
    values = table.to_numpy(dtype=float)
    totals = values.sum(axis=1, keepdims=True)
    return values / np.where(totals > 0, totals, 1.0)


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
    from smo_impact.runner.rater_models import load_rater_models

    try:  # model raters' models from the store or a folder: a missing one is a problem like the others
        rater_models = load_rater_models(specs, config.tracking.uri, dataset)
    except ConfigError as exc:
        return dataset, specs, list(exc.problems)
    if rater_models:
        ctx = replace(ctx, initial_state=ctx.initial_state.evolve(rater_models=rater_models))
    problems = preflight(specs, ctx, everything=True)
    return dataset, specs, problems
