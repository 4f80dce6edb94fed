"""Benchmarks: the sets a model is scored on, each under its own metric namespace.

A *split benchmark* is a dataset split whose reference label comes from a treatment pipeline applied
to that split's judgements, exactly as an arm's steps are applied to the training judgements: the
default ``[aggregate]`` is the majority of all raters; ``[rater_pool: {...}, aggregate]`` is one rater
group's view. Its soft target is the positive-vote share among the judgements the pipeline kept.
A *suite benchmark* is a functional test suite (HateCheck) scored against its gold labels.

A split benchmark whose reference label set has more than two labels is a *K-class benchmark*
(unless ``evaluation.task`` is ``binary``): a K-class model is scored with the K-class metrics under
``<ns>/`` (macro-F1 over the classes, ``class/<label>/...``, one-vs-rest ROC-AUC, ...) and, like any
model, on the binary view under ``<ns>/binary/`` (harmful = the reference state's harmful labels,
score = the model's P(harmful)). A binary benchmark gets the binary metrics under ``<ns>/``.

The reference pipeline uses the treatment registry (imported lazily): a reference *is* a
treatment pipeline, and a second implementation of rater selection or aggregation here would drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from smo_impact.data.schema import AnnotationSet, vote_counts
from smo_impact.errors import DataError
from smo_impact.data.schema import positions_in
from smo_impact.evaluation.bootstrap import BOOTSTRAP_METRICS, bootstrap_ci, multiclass_bootstrap_ci
from smo_impact.evaluation.functional import CASE_COLUMNS, check_cases, functional_report
from smo_impact.evaluation.metrics import (
    HEADLINE_METRICS,
    MULTICLASS_HEADLINE_METRICS,
    ORDINAL_METRICS,
    binary_metrics,
    multiclass_metrics,
    predicted_classes,
)
from smo_impact.evaluation.regression import metric_safe
from smo_impact.evaluation.slices import slice_report

if TYPE_CHECKING:
    from smo_impact.config import EvaluationSpec, StepSpec

DEFAULT_REFERENCE = ({"aggregate": {"method": "majority", "tie": "positive"}},)
# The reference is the same for every run, so its pipeline has a fixed seed (for tie: random).
REFERENCE_SEED = 0
SUITE_SPLIT_PREFIX = "suite:"


def is_multiclass(task: str, labels_set: tuple | list) -> bool:
    """Whether a run trains, or a benchmark scores, K classes: ``evaluation.task`` is
    ``multiclass``, or ``auto`` and the label set has more than two labels."""
    return task == "multiclass" or (task == "auto" and len(labels_set) > 2)


@dataclass(frozen=True)
class Benchmark:
    """Items with a reference label, scored in every run.

    Attributes:
        namespace: Metric prefix (``test``, ``view_target_group``, ``hatecheck``).
        kind: ``split`` or ``suite``.
        items: ``task``, ``text`` and slice columns (suites: :data:`CASE_COLUMNS`), one row per item.
        reference: Reference label per item in the binary view, 1 = harmful.
        soft_target: Harmful-vote share per item (split benchmarks), else None.
        slice_columns: Item columns reported per value.
        classes: K-class benchmarks: the reference label set, in order (code i = ``classes[i]``).
        labels: K-class benchmarks: the reference class code per item; None for binary ones.
        soft_classes: K-class benchmarks: the K-way vote shares (items x K).
        ordinal: ``classes`` is an ordered scale (adds MAE and quadratic-weighted kappa).
    """

    namespace: str
    kind: Literal["split", "suite"]
    items: pd.DataFrame
    reference: np.ndarray
    soft_target: np.ndarray | None = None
    slice_columns: tuple[str, ...] = ()
    classes: tuple = ()
    labels: np.ndarray | None = None
    soft_classes: np.ndarray | None = None
    ordinal: bool = False

    @property
    def multiclass(self) -> bool:
        """Whether the benchmark is scored as K classes (else harmful vs benign)."""
        return self.labels is not None


@dataclass
class BenchmarkResult:
    """One run's score on one benchmark.

    Attributes:
        metrics: Namespaced metrics (``<namespace>/<metric>``).
        predictions: Per item: item columns, ``reference``, ``score``, ``predicted``.
        artifacts: Tables to log, by artifact path (slice tables, failed suite cases).
        tags: Short facts worth a tag (``smo.worst_slice.<namespace>``: per slice column, the slice
            with the lowest accuracy among those of at least MIN_SLICE_SIZE items).
    """

    metrics: dict[str, float]
    predictions: pd.DataFrame
    artifacts: dict[str, pd.DataFrame] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def reference_state(dataset: AnnotationSet, split: str, steps: list[StepSpec] | tuple | None):
    """Apply the reference treatment steps to a split's judgements; return the final LabelState."""
    from smo_impact.config import StepSpec
    from smo_impact.treatments import TREATMENTS, LabelState

    steps = [s if isinstance(s, StepSpec) else StepSpec.model_validate(s) for s in (steps or DEFAULT_REFERENCE)]
    state = LabelState(
        items=dataset.split(split).reset_index(drop=True),
        annotations=dataset.split_annotations(split).reset_index(drop=True),
        labels_set=tuple(dataset.labels),
        positive_label=dataset.positive_label,
        workers=dataset.workers,  # rater attributes, for rater_pool by attribute
        harmful_labels=tuple(dataset.binary_positive),
        ordinal=dataset.ordinal,
    )
    seeds = np.random.SeedSequence(REFERENCE_SEED).spawn(len(steps))
    for step, seed in zip(steps, seeds):
        cls = TREATMENTS.get(step.name)
        state = cls(cls.Params.model_validate(step.params)).apply(state, np.random.default_rng(seed))
    if state.labels is None:
        names = ", ".join(s.name for s in steps)
        raise DataError(f"reference pipeline [{names}] on split '{split}' produced no labels: end it with 'aggregate'")
    return state


def split_benchmark(
    namespace: str,
    dataset: AnnotationSet,
    split: str,
    steps: list[StepSpec] | tuple | None = None,
    slice_columns: tuple[str, ...] | list[str] | None = None,
    task: str = "auto",
) -> Benchmark:
    """A dataset split against the reference of a treatment pipeline (default: majority of all raters).

    Items the pipeline leaves without a label (e.g. ``tie: drop``, or no rater of the chosen
    group) are not part of the benchmark. It is a K-class benchmark when ``task`` is
    ``multiclass``, or ``auto`` and the reference label set has more than two labels.
    """
    items = dataset.split(split).reset_index(drop=True)
    if items.empty:
        raise DataError(f"{dataset.name}: split '{split}' has no items to evaluate on")
    state = reference_state(dataset, split, steps)
    labels = state.labels
    items = items[items["task"].isin(labels.index)].reset_index(drop=True)
    if items.empty:
        raise DataError(f"benchmark '{namespace}': the reference pipeline kept no item of split '{split}'")
    # The state's label set, not the dataset's: a guideline step may redefine what is harmful.
    harmful = list(state.harmful)
    values = labels.reindex(items["task"])
    reference = np.isin(values.to_numpy(), np.asarray(harmful, dtype=object)).astype(int) if len(harmful) > 1 else (
        values.to_numpy() == harmful[0]).astype(int)
    if state.soft_labels is not None and all(h in state.soft_labels.columns for h in harmful):
        table = state.soft_labels.reindex(items["task"])
    else:
        table = vote_counts(state.annotations, state.labels_set).reindex(items["task"])
    totals = table.sum(axis=1)
    soft = ((table[harmful[0]] if len(harmful) == 1 else table[harmful].sum(axis=1)) / totals).to_numpy(dtype=float)
    classes = tuple(state.labels_set)
    codes = soft_classes = None
    if is_multiclass(task, classes):
        codes = positions_in(values, classes)
        shares = table.reindex(columns=list(classes), fill_value=0.0).to_numpy(dtype=float)
        soft_classes = shares / np.where(totals.to_numpy() > 0, totals.to_numpy(), 1.0)[:, None]
    columns = tuple(dataset.slice_columns if slice_columns is None else slice_columns)
    missing = [c for c in columns if c not in items.columns]
    if missing:
        raise DataError(
            f"benchmark '{namespace}': slice column(s) {', '.join(missing)} not in {dataset.name}'s items; "
            f"columns: {', '.join(map(str, items.columns))}"
        )
    keep = ["task", "text", *[c for c in columns if c not in ("task", "text")]]
    return Benchmark(
        namespace, "split", items[keep], reference, soft, columns,
        classes=classes if codes is not None else (), labels=codes, soft_classes=soft_classes,
        ordinal=bool(state.ordinal) and codes is not None,
    )


_TARGET_COLUMNS = ("target_identity", "target_ident", "target")
_GOLD_COLUMNS = ("gold", "label_gold")


def suite_cases(suite: AnnotationSet) -> pd.DataFrame:
    """A functional suite's items as a case table (:data:`CASE_COLUMNS`).

    The gold label is the items' ``gold``/``label_gold`` column (``hateful`` counts as 1), else the
    majority of the suite's judgements.
    """
    items = suite.items.reset_index(drop=True)
    cases = pd.DataFrame({"task": items["task"], "text": items["text"]})
    if "functionality" not in items:
        raise DataError(f"suite '{suite.name}': items lack a 'functionality' column; found: {', '.join(items.columns)}")
    cases["functionality"] = items["functionality"].astype(str)
    target = next((c for c in _TARGET_COLUMNS if c in items), None)
    cases["target_identity"] = items[target] if target else None
    gold = next((c for c in _GOLD_COLUMNS if c in items), None)
    if gold is not None:
        raw = items[gold]
        if raw.dtype.kind in "iub":
            cases["gold"] = raw.astype(int)
        else:
            cases["gold"] = raw.astype(str).str.strip().str.lower().map({"hateful": 1, "non-hateful": 0, "1": 1, "0": 0})
    else:
        counts = vote_counts(suite.annotations, suite.labels).reindex(items["task"])
        cases["gold"] = (counts.idxmax(axis=1).to_numpy() == suite.positive_label).astype(int)
    check_cases(cases[list(CASE_COLUMNS)], f"suite '{suite.name}'")
    # Suite task ids get a prefix so they never collide with the experiment dataset's.
    cases["task"] = SUITE_SPLIT_PREFIX + suite.name + ":" + cases["task"].astype(str)
    return cases[list(CASE_COLUMNS)]


def suite_benchmark(namespace: str, suite: AnnotationSet) -> Benchmark:
    """A functional suite, sliced by functionality and target identity."""
    cases = suite_cases(suite)
    return Benchmark(
        namespace, "suite", cases, cases["gold"].to_numpy(dtype=int), None, ("functionality", "target_identity")
    )


def build_benchmarks(
    dataset: AnnotationSet, evaluation: EvaluationSpec, suites: dict[str, AnnotationSet] | None = None
) -> list[Benchmark]:
    """The primary benchmark (``evaluation.split``, majority of all raters) and every configured one."""
    suites = suites or {}
    task = getattr(evaluation, "task", "auto")
    reference = getattr(evaluation, "reference_steps", None)
    out = [] if evaluation.split is None else [
        split_benchmark(evaluation.split, dataset, evaluation.split, reference, evaluation.slices, task)
    ]
    for spec in evaluation.benchmarks:
        if spec.suite is not None:
            if spec.suite not in suites:
                raise DataError(f"benchmark '{spec.name}': suite '{spec.suite}' was not loaded")
            out.append(suite_benchmark(spec.name, suites[spec.suite]))
        else:
            out.append(split_benchmark(spec.name, dataset, spec.split, spec.reference, spec.slices, task))
    return out


def with_suite_items(dataset: AnnotationSet, suites: dict[str, AnnotationSet]) -> AnnotationSet:
    """The dataset plus every suite's cases as extra items (split ``suite:<name>``), for featurizing.

    Featurizers fit on the training split only, so the dataset's own features do not change; the
    suite texts get features from the same fitted featurizer.
    """
    if not suites:
        return dataset
    extra = [
        suite_cases(s)[["task", "text"]].assign(split=SUITE_SPLIT_PREFIX + name) for name, s in suites.items()
    ]
    items = pd.concat([dataset.items, *extra], ignore_index=True)
    return AnnotationSet(
        name=f"{dataset.name}+{'+'.join(sorted(suites))}",
        items=items,
        annotations=dataset.annotations,
        labels=dataset.labels,
        positive_label=dataset.positive_label,
        workers=dataset.workers,
        slice_columns=dataset.slice_columns,
    )


def score_benchmark(
    bench: Benchmark,
    score: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    proba: np.ndarray | None = None,
) -> BenchmarkResult:
    """Every metric of one run on one benchmark, namespaced, plus its per-item predictions.

    Adds bootstrap intervals of the headline metrics (``<ns>/<metric>_ci_low|high``), per-slice
    metrics with the worst slice, and for suites the functional report (failed cases as an artifact).

    Args:
        bench: The benchmark.
        score: The model's P(harmful) per item (the binary view).
        threshold: Flag an item as harmful when ``score >= threshold``.
        rng: Generator of the bootstrap resamples.
        n_resamples: Bootstrap resamples (0: no intervals).
        confidence: Interval coverage.
        proba: K-class benchmarks: the model's probability of each of ``bench.classes`` (items x K),
            or None when the model was trained on another label set (then only the binary view is
            scored, under ``binary/``).
    """
    ns = bench.namespace
    score = np.asarray(score, dtype=float)
    artifacts: dict[str, pd.DataFrame] = {}
    if bench.multiclass:
        metrics = _multiclass_scores(bench, proba, rng, n_resamples, confidence, artifacts)
        view = binary_metrics(bench.reference, score, threshold, bench.soft_target)
        metrics.update({f"binary/{name}": value for name, value in view.items() if name != "n"})
        metrics["n"] = view["n"]
    else:
        metrics = binary_metrics(bench.reference, score, threshold, bench.soft_target)
        if n_resamples > 0:
            headline = tuple(m for m in HEADLINE_METRICS if m in BOOTSTRAP_METRICS)
            for name, (low, high) in bootstrap_ci(bench.reference, score, threshold, rng, n_resamples, confidence, headline).items():
                metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = low, high

    predictions = bench.items.copy()
    predictions["reference"] = bench.reference
    predictions["score"] = score
    predictions["predicted"] = (score >= threshold).astype(int)
    if bench.multiclass:
        predictions = with_class_columns(predictions, bench, proba)

    tags: dict[str, str] = {}
    slices = slice_report(predictions, bench.slice_columns)
    metrics.update(slices.metrics)
    if not slices.table.empty:
        artifacts[f"slices/{ns}.csv"] = slices.table
    if slices.worst:
        tags[f"smo.worst_slice.{ns}"] = ", ".join(f"{c}={v}" for c, v in slices.worst.items())
    if bench.kind == "suite":
        cases = bench.items.assign(gold=bench.reference)
        report = functional_report(cases, score, threshold)
        metrics.update(report.metrics)
        artifacts[f"functional/{ns}_per_functionality.csv"] = report.per_functionality
        artifacts[f"functional/{ns}_failed_cases.parquet"] = report.failed
        tags[f"smo.worst_functionality.{ns}"] = report.worst_functionality
    return BenchmarkResult({f"{ns}/{k}": float(v) for k, v in metrics.items()}, predictions, artifacts, tags)


# Per-item columns of a K-class benchmark's predictions (besides the binary view's reference, score
# and predicted): codes into the benchmark's classes, their labels, and P(class) per class code.
CLASS_COLUMNS = ("reference_class", "reference_label", "predicted_class", "predicted_label")
PROBA_PREFIX = "proba_"


def with_class_columns(predictions: pd.DataFrame, bench: Benchmark, proba: np.ndarray | None) -> pd.DataFrame:
    """``predictions`` plus the K-class columns: ``reference_class``/``reference_label`` and, when the
    model was scored on the benchmark's classes, ``predicted_class``/``predicted_label`` and
    ``proba_<code>`` (one column per class, in ``bench.classes`` order)."""
    labels = np.asarray([str(c) for c in bench.classes], dtype=object)
    out = predictions.copy()
    out["reference_class"] = bench.labels
    out["reference_label"] = labels[bench.labels]
    if proba is not None:
        predicted = predicted_classes(proba)
        out["predicted_class"] = predicted
        out["predicted_label"] = labels[predicted]
        for code in range(proba.shape[1]):
            out[f"{PROBA_PREFIX}{code}"] = proba[:, code]
    return out


def class_probabilities(predictions: pd.DataFrame) -> np.ndarray | None:
    """The ``proba_<code>`` columns of stored K-class predictions (items x K), or None."""
    columns = sorted((c for c in predictions.columns if str(c).startswith(PROBA_PREFIX)), key=lambda c: int(c[len(PROBA_PREFIX):]))
    return predictions[columns].to_numpy(dtype=float) if columns else None


def confusion_table(confusion: np.ndarray, classes: tuple) -> pd.DataFrame:
    """A K x K confusion matrix as a table: column ``reference``, then one count column per
    predicted label (``confusion/<ns>.csv``)."""
    names = [str(c) for c in classes]
    table = pd.DataFrame(np.asarray(confusion, dtype=np.int64), columns=names)
    table.insert(0, "reference", names)
    return table


def _multiclass_scores(
    bench: Benchmark, proba: np.ndarray | None, rng: np.random.Generator, n_resamples: int, confidence: float,
    artifacts: dict[str, pd.DataFrame],
) -> dict[str, float]:
    """K-class metrics of one run on a K-class benchmark (empty without class probabilities), with
    ``class/<label>/{precision,recall,f1,n}``, bootstrap intervals of the headline metrics and the
    confusion matrix as an artifact."""
    if proba is None:
        return {}
    proba = np.asarray(proba, dtype=float)
    scored = multiclass_metrics(bench.labels, proba, bench.ordinal, bench.soft_classes)
    metrics: dict[str, float] = {k: v for k, v in scored.items() if np.ndim(v) == 0}
    for code, label in enumerate(bench.classes):
        key = f"class/{metric_safe(label)}"
        metrics[f"{key}/precision"] = float(scored["precision"][code])
        metrics[f"{key}/f1"] = float(scored["f1"][code])
        metrics[f"{key}/n"] = float(scored["support"][code])
        if not np.isnan(scored["recall"][code]):  # a class absent from the reference has no recall
            metrics[f"{key}/recall"] = float(scored["recall"][code])
    artifacts[f"confusion/{bench.namespace}.csv"] = confusion_table(scored["confusion"], bench.classes)
    if n_resamples > 0:
        headline = (*MULTICLASS_HEADLINE_METRICS, *(ORDINAL_METRICS if bench.ordinal else ()))
        for name, (low, high) in multiclass_bootstrap_ci(bench.labels, proba, rng, n_resamples, confidence, headline).items():
            metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = low, high
    return metrics

