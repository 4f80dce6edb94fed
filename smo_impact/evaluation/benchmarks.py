"""Benchmarks: the sets a model is scored on, each under its own metric namespace.

A *split benchmark* is a dataset split whose reference label comes from a treatment pipeline applied
to that split's judgements, exactly as an arm's steps are applied to the training judgements: the
default ``[aggregate]`` is the majority of all raters; ``[rater_pool: {...}, aggregate]`` is one rater
group's view. Its soft target is the positive-vote share among the judgements the pipeline kept.
A *suite benchmark* is a functional test suite (HateCheck) scored against its gold labels.

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
from smo_impact.evaluation.bootstrap import BOOTSTRAP_METRICS, bootstrap_ci
from smo_impact.evaluation.functional import CASE_COLUMNS, check_cases, functional_report
from smo_impact.evaluation.metrics import HEADLINE_METRICS, binary_metrics
from smo_impact.evaluation.slices import slice_report

if TYPE_CHECKING:
    from smo_impact.config import EvaluationSpec, StepSpec

DEFAULT_REFERENCE = ({"aggregate": {"method": "majority", "tie": "positive"}},)
# The reference is the same for every run, so its pipeline has a fixed seed (for tie: random).
REFERENCE_SEED = 0
SUITE_SPLIT_PREFIX = "suite:"


@dataclass(frozen=True)
class Benchmark:
    """Items with a reference label, scored in every run.

    Attributes:
        namespace: Metric prefix (``test``, ``view_target_group``, ``hatecheck``).
        kind: ``split`` or ``suite``.
        items: ``task``, ``text`` and slice columns (suites: :data:`CASE_COLUMNS`), one row per item.
        reference: Reference label per item, 1 = positive.
        soft_target: Positive-vote share per item (split benchmarks), else None.
        slice_columns: Item columns reported per value.
    """

    namespace: str
    kind: Literal["split", "suite"]
    items: pd.DataFrame
    reference: np.ndarray
    soft_target: np.ndarray | None = None
    slice_columns: tuple[str, ...] = ()


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
) -> Benchmark:
    """A dataset split against the reference of a treatment pipeline (default: majority of all raters).

    Items the pipeline leaves without a label (e.g. ``tie: drop``, or no rater of the chosen
    group) are not part of the benchmark.
    """
    items = dataset.split(split).reset_index(drop=True)
    if items.empty:
        raise DataError(f"{dataset.name}: split '{split}' has no items to evaluate on")
    state = reference_state(dataset, split, steps)
    labels = state.labels
    items = items[items["task"].isin(labels.index)].reset_index(drop=True)
    if items.empty:
        raise DataError(f"benchmark '{namespace}': the reference pipeline kept no item of split '{split}'")
    # The state's label set, not the dataset's: a guideline step may redefine what is positive.
    positive = state.positive_label
    reference = (labels.reindex(items["task"]).to_numpy() == positive).astype(int)
    if state.soft_labels is not None and positive in state.soft_labels.columns:
        table = state.soft_labels.reindex(items["task"])
    else:
        table = vote_counts(state.annotations, state.labels_set).reindex(items["task"])
    soft = (table[positive] / table.sum(axis=1)).to_numpy(dtype=float)
    columns = tuple(dataset.slice_columns if slice_columns is None else slice_columns)
    missing = [c for c in columns if c not in items.columns]
    if missing:
        raise DataError(
            f"benchmark '{namespace}': slice column(s) {', '.join(missing)} not in {dataset.name}'s items; "
            f"columns: {', '.join(map(str, items.columns))}"
        )
    keep = ["task", "text", *[c for c in columns if c not in ("task", "text")]]
    return Benchmark(namespace, "split", items[keep], reference, soft, columns)


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
    out = [] if evaluation.split is None else [split_benchmark(evaluation.split, dataset, evaluation.split, None, evaluation.slices)]
    for spec in evaluation.benchmarks:
        if spec.suite is not None:
            if spec.suite not in suites:
                raise DataError(f"benchmark '{spec.name}': suite '{spec.suite}' was not loaded")
            out.append(suite_benchmark(spec.name, suites[spec.suite]))
        else:
            out.append(split_benchmark(spec.name, dataset, spec.split, spec.reference, spec.slices))
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
) -> BenchmarkResult:
    """Every metric of one run on one benchmark, namespaced, plus its per-item predictions.

    Adds bootstrap intervals of the headline metrics (``<ns>/<metric>_ci_low|high``), per-slice
    metrics with the worst slice, and for suites the functional report (failed cases as an artifact).
    """
    ns = bench.namespace
    score = np.asarray(score, dtype=float)
    metrics = binary_metrics(bench.reference, score, threshold, bench.soft_target)
    if n_resamples > 0:
        headline = tuple(m for m in HEADLINE_METRICS if m in BOOTSTRAP_METRICS)
        for name, (low, high) in bootstrap_ci(bench.reference, score, threshold, rng, n_resamples, confidence, headline).items():
            metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = low, high

    predictions = bench.items.copy()
    predictions["reference"] = bench.reference
    predictions["score"] = score
    predictions["predicted"] = (score >= threshold).astype(int)

    artifacts: dict[str, pd.DataFrame] = {}
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
