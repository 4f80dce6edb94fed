"""Experiment configs: YAML -> frozen pydantic specs, ``key=value`` overrides, validation.

An experiment config composes reusable blocks from ``configs/``: any mapping may name a file with
``from: path.yaml`` (relative to the file that says it); the file's contents are the defaults and
the mapping's own keys override them.

Validation reports every problem at once, each as ``dotted.path: what is wrong`` with the allowed
values, before any data is read.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from smo_impact.errors import ConfigError, listing, not_a_regular_file, shorten, shown
from smo_impact.registry import unknown_name_message

INCLUDE_KEY = "from"


class QuietDefaults(BaseModel):
    """Leaves the fields named in ``quiet_defaults`` out of dumps while they hold their default.

    For fields added after configs were first hashed: a config that does not use one keeps its
    resolved YAML, config hash and run keys (resume reuses its stored runs).
    """

    quiet_defaults: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_quiet_defaults(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in self.quiet_defaults:
                if name in data and getattr(self, name) == type(self).model_fields[name].default:
                    del data[name]
        return data


class Spec(QuietDefaults):
    """Base for config specs: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Label = StrictInt | StrictFloat | StrictStr


def _no_yaml_booleans(value: Any, field_name: str) -> Any:
    """YAML reads unquoted yes/no/true/false as booleans: refuse them rather than guess."""
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, bool):
            raise ValueError(
                f"{field_name} contains the boolean {v!r}; YAML reads unquoted yes/no/true/false as "
                "booleans: quote them ('yes') or use 0/1"
            )
    return value


def _plain_name(value: str, key: str) -> str:
    """Names become folder and file names: '.' and '..' would point outside them."""
    if value in (".", ".."):
        raise ValueError(f"{key} {value!r} is a path, not a name; use letters, digits, _ - and .")
    return value


class TableSpec(Spec):
    """A side table joined by key: rater attributes (``workers``, key ``worker``) or item
    metadata (``items``, key ``task``)."""

    path: str = Field(description="CSV, JSONL or Parquet file, or a saved Hugging Face dataset.")
    format: Literal["csv", "jsonl", "parquet", "hf"] | None = Field(None, description="Default: from the suffix.")
    column_map: dict[str, str] = Field(default_factory=dict, description="Our column name -> the file's.")
    encoding: str = "utf-8"


class SplitSpec(Spec):
    """Train/dev/test splits made for data without them (``smo_impact.data.splits``)."""

    train: float = Field(0.8, ge=0.0, le=1.0, description="Share of items in train.")
    dev: float = Field(0.1, ge=0.0, le=1.0, description="Share of items in dev (0: no dev split).")
    test: float = Field(0.1, ge=0.0, le=1.0, description="Share of items in test (0: no test split).")
    by: Literal["task"] = Field("task", description="The unit dealt into splits: items (task).")
    stratify: str | None = Field(
        "label", description="label: each item's majority label; or an item column; null: no stratification."
    )
    group: str | None = Field(None, description="Item column whose items stay in one split (an author, a conversation).")
    seed: int = Field(0, ge=0, description="Seed of the deal; the same seed and data give the same splits.")

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        total = self.train + self.dev + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"the split ratios must sum to 1: train {self.train:g} + dev {self.dev:g} + test {self.test:g} = "
                f"{total:g}; e.g. {{train: 0.8, dev: 0.1, test: 0.1}}"
            )
        if self.train == 0:
            raise ValueError("train must be above 0: the models train on the train split")
        return self


class DatasetSpec(Spec):
    """Which annotation data to load: a built-in dataset by ``name``, or your own files (``path``).

    Your own data is mapped onto the vocabulary ``task``, ``worker``, ``label`` (+ ``text``,
    ``split``) once, through ``column_map`` (our name -> your column). See ``smo_impact.data.loader``.
    """

    quiet_defaults: ClassVar[tuple[str, ...]] = ("ordinal",)

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="A built-in dataset name (see `smo-impact datasets list`), or a name for your own data.",
    )
    path: str | list[str] | None = Field(None, description="Your annotation file(s); relative to the working directory.")
    format: Literal["csv", "jsonl", "parquet", "hf", "label_studio"] | None = Field(
        None, description="Default: from the suffix (.csv/.tsv, .jsonl, .parquet, .json = Label Studio, folder = hf)."
    )
    layout: Literal["long", "wide", "count", "label_studio"] = Field(
        "long",
        description="long: a row per judgement; wide: a row per item, a column per rater; count: a row per "
        "item with per-label vote counts (anonymous raters); label_studio: a Label Studio JSON export.",
    )
    column_map: dict[str, str] = Field(default_factory=dict, description="Our column name -> your column name.")
    labels: list[Label] | None = Field(None, description="Declared label set, ordered from benign to harmful.")
    positive_label: Label | None = Field(None, description="The harmful class in metrics; default: the last label.")
    positive_labels: list[Label] | None = Field(
        None, description="Default binary rule for a non-binary scale: the labels counted as harmful (e.g. [4, 5])."
    )
    binarize: bool = Field(
        True,
        description="Apply the dataset's default binary rule (built-in or positive_labels) before any treatment; "
        "false keeps the raw scale for a guideline step to map, or to train K-class models on.",
    )
    ordinal: bool | None = Field(
        None,
        description="The labels are an ordered scale (benign to harmful): K-class runs also report MAE and "
        "quadratic-weighted kappa. Default: as the built-in declares (ConvAbuse severity), else false.",
    )
    item_columns: list[str] = Field(default_factory=list, description="Extra item-level columns (long/wide layouts).")
    slice_columns: list[str] = Field(default_factory=list, description="Item columns usable as evaluation slices.")
    rater_columns: list[str] | None = Field(None, description="wide layout: the rater columns; default: all others.")
    count_columns: dict[str, str] | None = Field(
        None, description="count layout: label -> column of its vote counts; default: columns named like the labels."
    )
    items: TableSpec | None = Field(None, description="Items table (text, split, slices, gold) joined on task.")
    workers: TableSpec | None = Field(None, description="Workers table (rater attributes) joined on worker.")
    worker_columns: list[str] = Field(
        default_factory=list,
        description="long layout: columns of the judgement rows that are rater attributes (e.g. [gender, age]); they "
        "build the workers table and must not change between a rater's rows.",
    )
    where: dict[str, list[Label]] = Field(
        default_factory=dict, description="Keep only judgements whose column value is listed, e.g. {lang: [en]}."
    )
    split: SplitSpec | None = Field(
        None, description="Make train/dev/test splits for data without a split column, e.g. {train: 0.8, dev: 0.1, test: 0.1}."
    )
    duplicates: Literal["error", "first", "last"] | None = Field(
        None,
        description="A second judgement by the same worker on the same task: error, or keep first/last. "
        "Default: error for your own data, the documented policy for built-ins.",
    )
    leakage: Literal["error", "dedupe", "warn"] | None = Field(
        None,
        description="Same text in train and a held-out split, or an item in two splits: error (default for your "
        "own data), dedupe (drop the train/dev copies) or warn. Default for built-ins: their documented policy.",
    )
    encoding: str = Field("utf-8", description="Text encoding of your files.")
    max_text_chars: int = Field(
        100_000, ge=1, description="Longest item text accepted, in characters (one 200 MB text took 6 GB to featurize)."
    )
    long_text: Literal["error", "truncate"] = Field(
        "error", description="A text longer than max_text_chars: error, or truncate it to that length (with a warning)."
    )
    min_rater_judgements: int = Field(3, ge=1, description="Warn about raters with fewer judgements than this.")

    @field_validator("name")
    @classmethod
    def _not_a_relative_path(cls, value: str) -> str:
        return _plain_name(value, "dataset.name")

    @field_validator("labels", "positive_labels", "positive_label", "where", mode="before")
    @classmethod
    def _reject_booleans(cls, value: Any, info: Any) -> Any:
        if isinstance(value, dict):
            for v in value.values():
                _no_yaml_booleans(v, info.field_name)
            return value
        return _no_yaml_booleans(value, info.field_name)

    @model_validator(mode="after")
    def _own_data_rules(self) -> DatasetSpec:
        own_only = (
            "format", "labels", "positive_label", "positive_labels", "rater_columns", "count_columns", "items", "workers", "split",
        )
        if self.path is None:
            given = [f for f in own_only if getattr(self, f) is not None] + [
                f for f in ("column_map", "item_columns", "slice_columns", "worker_columns") if getattr(self, f)
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} only apply to your own data (set dataset.path); built-in datasets "
                    "declare their own"
                )
            return self
        if self.labels is None or len(self.labels) < 2:
            raise ValueError("your own data needs dataset.labels: the label set in order, benign to harmful, e.g. [0, 1]")
        if len(set(map(repr, self.labels))) != len(self.labels):
            raise ValueError(f"dataset.labels must be distinct, got {shown(self.labels)}")
        if self.positive_label is not None and self.positive_label not in self.labels:
            raise ValueError(f"dataset.positive_label {shown(self.positive_label)} is not one of dataset.labels {shown(self.labels)}")
        outside = [v for v in self.positive_labels or [] if v not in self.labels]
        if outside:
            raise ValueError(f"dataset.positive_labels {shown(outside)} are not in dataset.labels {shown(self.labels)}")
        if self.ordinal and len(self.labels) < 3:
            raise ValueError(
                f"dataset.ordinal: a {len(self.labels)}-label scale {shown(self.labels)} has no order beyond "
                "harmful/benign, so ordinal metrics say nothing there; drop ordinal: true"
            )
        if self.ordinal and self.binarize and self.positive_labels:
            raise ValueError(
                "dataset.ordinal: true, but binarize applies dataset.positive_labels, which makes the labels "
                "binary before training; set binarize: false to train on the ordinal scale"
            )
        if (self.layout == "label_studio") != (self.format == "label_studio") and self.format is not None:
            raise ValueError("a Label Studio export needs both format: label_studio and layout: label_studio")
        if self.layout != "wide" and self.rater_columns is not None:
            raise ValueError("dataset.rater_columns only applies to layout: wide")
        if self.layout != "count" and self.count_columns is not None:
            raise ValueError("dataset.count_columns only applies to layout: count")
        if self.layout != "long" and self.worker_columns:
            raise ValueError(
                "dataset.worker_columns only applies to layout: long (one row per judgement); in other layouts give "
                "rater attributes as a workers table (dataset.workers)"
            )
        return self

    @property
    def paths(self) -> list[str]:
        """The annotation files, as a list (empty for a built-in dataset)."""
        if self.path is None:
            return []
        return [self.path] if isinstance(self.path, str) else list(self.path)


class StepSpec(Spec):
    """One treatment step of an arm: a registered treatment name and its parameters.

    Written in YAML as a one-key mapping, ``- noise: {rate: 0.2}``, or as a bare name, ``- aggregate``.
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml_shape(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value, "params": {}}
        if isinstance(value, dict) and set(value) - {"name", "params"}:
            if len(value) != 1:
                raise ValueError(
                    "a treatment step is a mapping with exactly one key, the treatment name, "
                    f"e.g. `- noise: {{rate: 0.2}}`; got keys {shown(sorted(value))}"
                )
            (name, params), = value.items()
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise ValueError(f"parameters of step '{shorten(name)}' must be a mapping, got {shown(params)}")
            return {"name": name, "params": params}
        return value

    def as_yaml(self) -> dict[str, Any]:
        return {self.name: dict(self.params)}


class ModelSpec(Spec):
    """The classifier trained in every run."""

    name: str = "tfidf_logreg"
    params: dict[str, Any] = Field(default_factory=dict)


NAMESPACE_PATTERN = r"^[A-Za-z0-9_\-.]+$"  # MLflow-legal, no '/': a benchmark's metric prefix
RESERVED_NAMESPACES = ("delta", "regression", "treatment", "summary", "time", "features", "runs", "quality")


class BenchmarkSpec(Spec):
    """One more set the model is scored on, logged under its own namespace (``<name>/<metric>``).

    Either a dataset ``split`` whose reference label is produced by the ``reference`` treatment
    pipeline applied to that split's judgements (default: majority of all raters, ``[aggregate]``;
    a rater group's view is ``[rater_pool: {...}, aggregate]``), or a functional ``suite``
    (``hatecheck``) scored against its gold labels.
    """

    name: str = Field(pattern=NAMESPACE_PATTERN, description="Metric namespace, e.g. view_target_group.")
    split: Literal["test", "dev"] | None = None
    suite: Literal["hatecheck"] | None = None
    reference: list[StepSpec] | None = Field(None, description="Treatment steps giving the reference label.")
    slices: list[str] | None = Field(None, description="Item columns to slice by; default: the dataset's.")

    @model_validator(mode="after")
    def _split_or_suite(self) -> BenchmarkSpec:
        if (self.split is None) == (self.suite is None):
            raise ValueError(f"benchmark '{shorten(self.name)}' needs exactly one of split (test, dev) or suite (hatecheck)")
        if self.suite is not None and self.reference is not None:
            raise ValueError(f"benchmark '{shorten(self.name)}': a suite is scored against its gold labels; remove reference")
        return self


class GateSpec(Spec):
    """Regression gates: when a treatment run or arm fails against the control of the same seed.

    A drop is ``control - treatment`` for metrics where higher is better and ``treatment - control``
    for those where lower is better (fpr, ece, brier, ...). With ``require_significance`` a
    violation counts only when it is significant at ``alpha``: per run by McNemar's test against
    the control, per arm by a one-sample t-test of the per-seed deltas.
    """

    max_drop: dict[str, float] = Field(default_factory=dict, description="'<namespace>/<metric>': largest tolerated drop.")
    min: dict[str, float] = Field(
        default_factory=dict,
        description="'<namespace>/<metric>': absolute floor every run of every arm (control too) must reach, "
        "e.g. {test/roc_auc: 0.6} fails a model that ranks no better than chance.",
    )
    max: dict[str, float] = Field(
        default_factory=dict, description="'<namespace>/<metric>': absolute ceiling for every run of every arm."
    )
    max_new_false_negatives: int | None = Field(None, ge=0, description="Per benchmark, vs the control run.")
    max_new_false_positives: int | None = Field(None, ge=0, description="Per benchmark, vs the control run.")
    require_significance: bool = False
    alpha: float = Field(0.05, gt=0.0, lt=1.0)

    @field_validator("max_drop")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for metric, drop in value.items():
            if drop < 0:
                raise ValueError(f"max_drop.{metric} must be >= 0 (a tolerated drop), got {drop}")
        return value

    @property
    def active(self) -> bool:
        return (bool(self.max_drop) or bool(self.min) or bool(self.max) or self.max_new_false_negatives is not None
                or self.max_new_false_positives is not None)


class EvaluationSpec(Spec):
    """How every run is scored: the primary benchmark (``split`` against ``reference``, namespace
    ``<split>``), extra ``benchmarks``, bootstrap intervals, and regression ``gates``.

    ``task`` decides binary or K-class scoring: ``auto`` trains and scores K classes where the label
    set (after the arm's steps; for a benchmark, after its reference pipeline) has more than two
    labels, and harmful vs benign otherwise; ``binary`` always trains harmful vs benign (the binary
    view: ``dataset.positive_labels``, a guideline's ``positive_labels``, else the positive label);
    ``multiclass`` always trains K classes (also K = 2).
    """

    quiet_defaults: ClassVar[tuple[str, ...]] = ("task", "outcomes")

    split: Literal["test", "dev"] | None = Field(
        "test", description="The primary benchmark's split; null: score only the benchmarks (e.g. a functional suite)."
    )
    reference: Literal["majority"] | list[StepSpec] = Field(
        "majority",
        description="Reference of the primary benchmark: majority of all raters (untreated data), or a treatment "
        "pipeline applied to the split's judgements, e.g. [guideline: {...}, aggregate] for a mapped label set.",
    )
    task: Literal["auto", "binary", "multiclass"] = Field(
        "auto", description="auto: K-class where a label set has more than 2 labels; binary: harmful vs benign."
    )
    outcomes: list[str] | None = Field(
        None,
        description="Metrics the impact analysis relates to the swept parameters: names under the primary "
        "namespace (macro_f1) or full metric names (view_v2/recall); default macro_f1, recall, roc_auc, "
        "weighted_f1, worst_class_recall (those logged).",
    )
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Decision threshold on P(positive).")
    slices: list[str] | None = Field(None, description="Slice columns of the primary benchmark; default: the dataset's.")
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list)
    bootstrap: int = Field(1000, ge=0, le=100_000, description="Bootstrap resamples for intervals; 0: none.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Coverage of bootstrap intervals.")
    gates: GateSpec = Field(default_factory=GateSpec)

    @property
    def namespaces(self) -> list[str]:
        """Metric namespaces of every benchmark, the primary one first."""
        return [*([self.split] if self.split else []), *(b.name for b in self.benchmarks)]

    @property
    def primary(self) -> str:
        """The primary benchmark's namespace: the split, or without one the first benchmark."""
        return self.namespaces[0] if self.namespaces else "test"

    @property
    def reference_steps(self) -> list[StepSpec] | None:
        """The primary benchmark's reference pipeline (None: majority of all raters)."""
        return None if self.reference == "majority" else list(self.reference)

    def problems(self, treatments: Any, datasets: Any) -> list[str]:
        """Every problem with benchmark names, reference pipelines and gate metrics (for validate)."""
        problems: list[str] = []
        if self.split is None and not self.benchmarks:
            problems.append(
                "evaluation.split: null scores the benchmarks only, and there are none; add one to evaluation.benchmarks "
                "(e.g. {name: hatecheck, suite: hatecheck}) or set split: test"
            )
        seen = {self.split} - {None}
        for j, step in enumerate(self.reference_steps or []):
            if step.name not in treatments:
                problems.append(f"evaluation.reference[{j}]: " + unknown_name_message("treatment", step.name, treatments.names()))
                continue
            try:
                treatments.get(step.name).Params.model_validate(step.params)
            except ValidationError as exc:
                problems.extend(pydantic_problems(exc, f"evaluation.reference[{j}].{step.name}"))
        for i, bench in enumerate(self.benchmarks):
            where = f"evaluation.benchmarks[{i}]"
            if bench.name in seen or bench.name in RESERVED_NAMESPACES:
                problems.append(
                    f"{where}.name: namespace '{shorten(bench.name)}' is taken; not one of "
                    f"{', '.join(sorted({*seen, *RESERVED_NAMESPACES}))}"
                )
            seen.add(bench.name)
            if bench.suite is not None and bench.suite not in datasets:
                problems.append(
                    f"{where}.suite: suite '{bench.suite}' reads the built-in dataset '{bench.suite}', "
                    f"which is not registered; datasets: {', '.join(sorted(datasets.names()))}"
                )
            for j, step in enumerate(bench.reference or []):
                if step.name not in treatments:
                    problems.append(f"{where}.reference[{j}]: " + unknown_name_message("treatment", step.name, treatments.names()))
                    continue
                try:
                    treatments.get(step.name).Params.model_validate(step.params)
                except ValidationError as exc:
                    problems.extend(pydantic_problems(exc, f"{where}.reference[{j}].{step.name}"))
        from smo_impact.evaluation.bootstrap import BOOTSTRAP_METRICS, MULTICLASS_BOOTSTRAP_METRICS

        # Binary benchmarks' metrics, K-class ones, and a K-class benchmark's binary view (binary/<m>).
        testable = {*BOOTSTRAP_METRICS, *MULTICLASS_BOOTSTRAP_METRICS, *(f"binary/{m}" for m in BOOTSTRAP_METRICS)}
        for metric in self.gates.max_drop:
            namespace, _, name = metric.partition("/")
            if namespace not in seen or not name:
                problems.append(
                    f"evaluation.gates.max_drop.{shorten(metric)}: name a benchmark metric '<namespace>/<metric>' "
                    f"with namespace one of {', '.join(sorted(seen))}, e.g. {self.primary}/recall"
                )
            elif self.gates.require_significance and name not in testable:
                # A drop is significant by the paired bootstrap of its own delta; other metrics have no test.
                problems.append(
                    f"evaluation.gates.max_drop.{shorten(metric)}: require_significance needs a metric with a paired "
                    f"bootstrap test, one of {', '.join(sorted(BOOTSTRAP_METRICS))} (K classes: "
                    f"{', '.join(m for m in sorted(MULTICLASS_BOOTSTRAP_METRICS) if m not in BOOTSTRAP_METRICS)} or "
                    f"binary/<one of the first>); gate '{shorten(name)}' without "
                    "significance in a separate experiment, or pick one of those"
                )
        for kind in ("min", "max"):
            for metric in getattr(self.gates, kind):
                namespace, _, name = metric.partition("/")
                if namespace not in seen or not name:
                    problems.append(
                        f"evaluation.gates.{kind}.{shorten(metric)}: name a benchmark metric '<namespace>/<metric>' "
                        f"with namespace one of {', '.join(sorted(seen))}, e.g. {self.split}/roc_auc"
                    )
        if self.gates.require_significance and self.gates.max_drop and self.bootstrap == 0:
            problems.append(
                "evaluation.gates.require_significance: max_drop gates take significance from the paired "
                "bootstrap, but evaluation.bootstrap is 0; set bootstrap (e.g. 1000) or require_significance: false"
            )
        return problems


class TrackingSpec(Spec):
    """Where runs are logged."""

    experiment: str | None = Field(None, description="MLflow experiment name; default: config name.")
    uri: str | None = Field(
        None, description="Tracking URI; default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db."
    )
    log_predictions: bool = True
    log_models: Literal["all", "control", "none"] = Field(
        "none",
        description="Runs that keep their trained model (model/ files; an MLflow model for the logistic "
        "regressions): every run, the control runs only, or none (default: logging a TF-IDF model takes "
        "~0.2 s, two thirds of the run's own time; worth it for fine-tuning runs of minutes).",
    )


# A typo such as `seeds: 1000000000` planned a billion runs (6 GB of run specs in 20 s). A config
# planning more than DEFAULT_MAX_RUNS is refused unless execution.max_runs or `run --yes` allows it;
# none may plan more than MAX_PLANNED_RUNS.
DEFAULT_MAX_RUNS = 500
class CostSpec(Spec):
    """What a judgement costs, for the cost-quality frontier and budgeted steps (``acquire``).

    Without ``column`` every judgement costs ``per_judgement``. With ``column`` (a workers-table
    column such as a pool or a rater attribute, else an annotations column) each judgement costs
    ``pools[<its value>]``, and every value in use needs a cost. ``workers`` prices named raters
    apart from that (a model rater, an expert), each as its own pool; ``per_char`` adds a price per
    character of the item's text to every judgement of a rater not named there (a model reads fast).
    ``per_round`` is a fixed cost per
    labelling round (one for a one-shot design; an ``acquire`` step adds one per round it buys in).
    Every arm then logs ``treatment/cost`` (judgements that went into its training labels plus
    round costs) and ``treatment/cost/<pool>`` (``all`` without a column; ``rounds`` for the fixed
    part).
    """

    per_judgement: float = Field(1.0, ge=0.0, description="Cost of one judgement when no column is given.")
    column: str | None = Field(None, description="Workers-table (or annotations) column naming each judgement's pool.")
    pools: dict[str, float] | None = Field(None, description="Cost per judgement for each value of column.")
    per_round: float = Field(0.0, ge=0.0, description="Fixed cost of each labelling round.")
    workers: dict[str, float] | None = Field(
        None, description="Cost per judgement of named raters (e.g. a model rater: {model: 0.01}); each is its own pool."
    )
    per_char: float = Field(
        0.0, ge=0.0, description="Added to a human judgement's cost per character of the item's text (long items take longer)."
    )

    quiet_defaults: ClassVar[tuple[str, ...]] = ("workers", "per_char")  # added later: older configs keep their run keys

    @field_validator("pools", "workers")
    @classmethod
    def _non_negative_costs(cls, value: dict[str, float] | None, info: Any) -> dict[str, float] | None:
        bad = {k: v for k, v in (value or {}).items() if not v >= 0}
        if bad:
            pool, cost = next(iter(sorted(bad.items())))
            key = "pools" if info.field_name == "pools" else "workers"
            raise ValueError(
                f"a cost per judgement is a number >= 0 (0 for free labels); {key[:-1] if key == 'workers' else 'pool'} "
                f"'{shorten(pool)}' has {shown(cost)}: set costs.{key}.{shorten(pool)} to what one of its judgements costs"
            )
        return value

    @model_validator(mode="after")
    def _column_with_pools(self) -> CostSpec:
        if (self.column is None) != (self.pools is None):
            given, missing = ("column", "pools") if self.pools is None else ("pools", "column")
            raise ValueError(
                f"costs.{given} needs costs.{missing}: column names each judgement's pool, pools its cost per "
                "judgement, e.g. {column: pool, pools: {crowd: 1.0, expert: 5.0}}"
            )
        return self


MAX_PLANNED_RUNS = 100_000
SEED_RANGE = (0, 2**32 - 1)  # numpy.random.SeedSequence takes non-negative ints; 32 bits keep seeds portable


class ExecutionSpec(Spec):
    """Where runs execute (``--executor`` / ``--workers`` on the command line override it)."""

    executor: Literal["sequential", "local", "ray"] = "sequential"
    workers: int | None = Field(None, ge=1, description="Processes (local) or CPUs (ray); default: all cores.")
    ray_address: str | None = Field(None, description="Ray cluster address; default: $RAY_ADDRESS or a local instance.")
    max_runs: int = Field(
        DEFAULT_MAX_RUNS, ge=1, le=MAX_PLANNED_RUNS,
        description="Refuse a config that plans more runs (arms x grid points x seeds); `run --yes` allows it.",
    )


class ExperimentConfig(Spec):
    """A runnable experiment: one dataset, a control arm and treatment arms, swept over seeds."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    dataset: DatasetSpec
    control: str = Field("control", description="Name of the arm every other arm is compared to.")
    arms: dict[str, list[StepSpec]]
    sweep: dict[str, dict[str, list[Any]]] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=lambda: [0])
    streams: dict[str, int] = Field(
        default_factory=dict,
        description="Random stream per arm (default 0). An arm with the control's steps and another stream "
        "differs from it by chance alone: an A/A test of the gates.",
    )
    model: ModelSpec = Field(default_factory=ModelSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    costs: CostSpec | None = Field(None, description="What judgements cost: every arm then logs treatment/cost.")

    @field_validator("name")
    @classmethod
    def _not_a_relative_path(cls, value: str) -> str:
        return _plain_name(value, "name")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, value: Any) -> Any:
        # `seeds: 3` is shorthand for [0, 1, 2].
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError("seeds must be a positive count or a list of ints, e.g. 3 or [0, 1, 2]")
            if value > MAX_PLANNED_RUNS:  # before the list is built
                raise ValueError(
                    f"{value} seeds would plan at least {value} runs, more than the {MAX_PLANNED_RUNS} an "
                    "experiment may plan; use fewer seeds"
                )
            return list(range(value))
        return value

    @field_validator("seeds")
    @classmethod
    def _seed_range(cls, value: list[int]) -> list[int]:
        low, high = SEED_RANGE
        bad = [s for s in value if not low <= s <= high]
        if bad:
            got = ", ".join(map(shown, bad[:5])) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
            raise ValueError(
                f"a seed must be an integer in [{low}, {high}] (numpy.random.SeedSequence's range); got {got}"
            )
        return value

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("at least one seed is required")
        if len(set(value)) != len(value):
            repeated = sorted(s for s, n in Counter(value).items() if n > 1)  # list.count per seed: quadratic
            raise ValueError(f"seeds must be distinct; {repeated} repeated: list each seed once")
        return value

    @field_validator("arms")
    @classmethod
    def _non_empty_arms(cls, value: dict[str, list[StepSpec]]) -> dict[str, list[StepSpec]]:
        if not value:
            raise ValueError("at least one arm is required")
        # Arm names end up in run names, metric names and file names: keep them plain.
        bad = sorted(a for a in value if not re.fullmatch(r"[A-Za-z0-9_\-]+", str(a)))
        if bad:
            raise ValueError(f"arm names may use letters, digits, _ and - only; got {shown(bad)}")
        return value

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data, in YAML shape."""
        data = self.model_dump(mode="json")
        data["arms"] = {arm: [s.as_yaml() for s in steps] for arm, steps in self.arms.items()}
        if not data["streams"]:  # most configs have none; keep their resolved config and hash as before
            del data["streams"]
        if data["costs"] is None:  # likewise
            del data["costs"]
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def config_hash(self) -> str:
        """Identity of what is computed: where it runs (execution) does not change the numbers."""
        data = self.to_dict()
        data.pop("execution", None)
        return stable_hash(data)


def stable_hash(data: Any) -> str:
    """sha256 (16 hex chars) of canonical JSON: the same data always hashes the same."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- YAML loading ------------------------------------------------------------------------------
# Bounds on what one config may cost to read. A config is a few kilobytes and a few hundred values;
# these are three orders of magnitude above that and far below what would exhaust a machine
# (a 'billion laughs' document expands 1 KB of aliases into 10**9 values).
MAX_CONFIG_BYTES = 1_000_000
MAX_YAML_VALUES = 100_000  # values after expanding aliases and includes
MAX_YAML_DEPTH = 50
MAX_INCLUDES = 1000
MAX_INT_DIGITS = 100
_INT_TAG = "tag:yaml.org,2002:int"

# libyaml parses a 1 MB document in about 1 s where the pure-Python parser takes about 9 s.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    """List items, or the keys and values of a mapping (key, value, key, value, ...)."""
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _child_location(node: yaml.Node, i: int) -> str:
    """Location suffix of ``_node_children(node)[i]``: ``[i]`` for a list item, ``.key`` for a value."""
    if isinstance(node, yaml.SequenceNode):
        return f"[{i}]"
    key = node.value[i // 2][0]
    return "" if i % 2 == 0 else f".{shorten(key.value) if isinstance(key, yaml.ScalarNode) else '?'}"


def _duplicate_keys(node: yaml.MappingNode, loc: str) -> list[str]:
    """A key written twice in one mapping: YAML keeps the last silently (``seeds`` twice ran the
    second list). Keys merged in with ``<<`` may repeat explicit ones: that is what merging is for."""
    problems: list[str] = []
    first: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        earlier = first.setdefault((key.tag, key.value), key)
        if earlier is not key:
            problems.append(
                f"{(loc + '.' + shorten(key.value)).lstrip('.')}: key '{shorten(key.value)}' appears twice, at lines "
                f"{earlier.start_mark.line + 1} and {key.start_mark.line + 1}; YAML would silently keep the last: remove one"
            )
    return problems


def _check_node_graph(root: yaml.Node) -> int:
    """Refuse a composed document that would blow up when built, before building it.

    Aliases make the composed document a graph in which one node may be reached many times; its
    size once expanded is computed here bottom-up, once per node, so a billion laughs costs a few
    hundred steps to recognise. Also refused: a node that contains itself (a recursive alias),
    nesting deeper than :data:`MAX_YAML_DEPTH` (Python code walking the data would recurse that
    deep) and a key written twice in one mapping. Returns the expanded number of values.
    """
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    duplicates: list[str] = []  # reported together, after the checks that stop at once
    open_nodes: set[int] = set()  # on the current path: meeting one again is a cycle
    aliased = False
    # (node, location, children once expanded); scalars count 1 and are never pushed.
    stack: list[tuple[yaml.Node, str, list[yaml.Node] | None]] = [(root, "", None)]
    while stack:
        node, loc, children = stack.pop()
        key = id(node)
        if children is not None:  # every child is done
            open_nodes.discard(key)
            size, depth = 1, 0
            for i, child in enumerate(children):
                if isinstance(child, yaml.ScalarNode):
                    size, depth = size + 1, max(depth, 1)
                    if child.tag == _INT_TAG and len(child.value) > MAX_INT_DIGITS:  # int() of 4300+ digits raises
                        raise ConfigError(
                            f"line {child.start_mark.line + 1}: {(loc + _child_location(node, i)).lstrip('.')}: an "
                            f"integer written with {len(child.value)} digits; a config's numbers have at most {MAX_INT_DIGITS}"
                        )
                else:
                    size, depth = size + sizes[id(child)], max(depth, depths[id(child)])
            sizes[key], depths[key] = size, depth + 1
            where = shorten(loc.lstrip(".") or "(top level)")
            if depth + 1 > MAX_YAML_DEPTH:
                raise ConfigError(f"{where}: values nested more than {MAX_YAML_DEPTH} levels deep; a config needs far fewer")
            if size > MAX_YAML_VALUES:
                how = "YAML aliases (*name) expand this value to" if aliased else "holds"
                raise ConfigError(
                    f"{where}: {how} more than {MAX_YAML_VALUES} values, far more than any config needs; "
                    "refused (write the values out, or point dataset.path at data)"
                )
            continue
        if key in sizes:
            aliased = True
            continue
        if key in open_nodes:
            raise ConfigError(
                f"line {node.start_mark.line + 1}: {loc.lstrip('.') or '(top level)'}: a YAML alias refers to a "
                "value that contains it (a recursive alias); write the value out"
            )
        if isinstance(node, yaml.ScalarNode):  # only the root can be one
            sizes[key], depths[key] = 1, 1
            continue
        children = _node_children(node)
        if isinstance(node, yaml.MappingNode):
            duplicates += _duplicate_keys(node, loc)
        open_nodes.add(key)
        stack.append((node, loc, children))
        stack.extend(
            (child, loc + _child_location(node, i), None)
            for i in reversed(range(len(children)))
            if not isinstance(child := children[i], yaml.ScalarNode)
        )
    if duplicates:
        raise ConfigError(duplicates)
    return sizes[id(root)]


def _load_yaml_text(text: str) -> tuple[Any, int]:
    """Parse one YAML document with the safe loader after :func:`_check_node_graph`; returns the
    data and its number of values."""
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, 0
        size = _check_node_graph(node)
        return loader.construct_document(node), size
    finally:
        loader.dispose()


def _read_yaml(path: Path) -> tuple[Any, int]:
    """:func:`read_yaml`, also returning the number of values read."""
    kind = not_a_regular_file(path)
    if kind is not None:  # never opened: a FIFO would block, /dev/zero never ends
        raise ConfigError(f"{shorten(path)}: {kind}; a config is a YAML file")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # never more: /dev/zero or a data file by mistake
    except FileNotFoundError:
        raise ConfigError(f"config file {shorten(path)} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{shorten(path)} is a directory, expected a YAML file") from None
    except OSError as exc:  # a name too long, no permission, ...
        raise ConfigError(f"config file {shorten(path)} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        size = Path(path).stat().st_size
        how_big = f"{size / 1e6:.1f} MB" if size > MAX_CONFIG_BYTES else "more than 1 MB"
        raise ConfigError(
            f"{path} is {how_big}; a config file may be at most {MAX_CONFIG_BYTES // 1_000_000} MB (is it a data "
            "file? point dataset.path at it instead)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; save it as UTF-8") from None
    try:
        return _load_yaml_text(text)
    except ConfigError as exc:
        raise ConfigError(exc.problems, str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:  # where the unclosed list or mapping began
            problem += f" ({context} at line {context_mark.line + 1})"
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from None


def read_yaml(path: Path) -> Any:
    """Read one YAML file with the safe loader; errors name the file and line. Files over
    :data:`MAX_CONFIG_BYTES` and documents whose aliases expand past :data:`MAX_YAML_VALUES`
    values are refused before they are built."""
    return _read_yaml(path)[0]


class _IncludeBudget:
    """What every ``from:`` of one config may read, in all: :data:`MAX_INCLUDES` files and
    :data:`MAX_YAML_VALUES` values (a file included 1000 times from 1000 places is read 10**6 times)."""

    def __init__(self, values: int = 0) -> None:
        self.includes, self.values = 0, values

    def spend(self, values: int, source: Path) -> None:
        self.includes += 1
        self.values += values
        if self.includes > MAX_INCLUDES:
            raise ConfigError(f"more than {MAX_INCLUDES} '{INCLUDE_KEY}:' includes; a config needs far fewer", str(source))
        if self.values > MAX_YAML_VALUES:
            raise ConfigError(
                f"'{INCLUDE_KEY}:' includes expand the config to more than {MAX_YAML_VALUES} values, far more "
                "than any config needs",
                str(source),
            )


def _resolve_includes(node: Any, base_dir: Path, chain: tuple[Path, ...], budget: _IncludeBudget | None = None) -> Any:
    """Replace every ``{from: file, ...}`` mapping by the file's contents merged with its keys."""
    budget = budget if budget is not None else _IncludeBudget()
    if isinstance(node, list):
        return [_resolve_includes(v, base_dir, chain, budget) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _resolve_includes(v, base_dir, chain, budget) for k, v in node.items()}
    if INCLUDE_KEY not in node:
        return node
    ref = node.pop(INCLUDE_KEY)
    if not isinstance(ref, str):
        raise ConfigError(f"'{INCLUDE_KEY}:' must name a YAML file, got {shown(ref)}")
    path = (base_dir / ref).resolve()
    if path in chain:
        raise ConfigError(f"'{INCLUDE_KEY}: {ref}' includes itself ({' -> '.join(map(str, chain))})")
    included, values = _read_yaml(path)
    budget.spend(values, chain[0])
    if not isinstance(included, (dict, list)):
        # Never quote it: `from: /etc/passwd` would print the file's first lines.
        what = "is empty" if included is None else (
            "reads as a single text value" if isinstance(included, str) else "reads as a single number or true/false"
        )
        raise ConfigError(
            f"{shorten(ref)} ({INCLUDE_KEY}: in {chain[-1].name}) is not a YAML mapping: it {what}; '{INCLUDE_KEY}:' "
            "names a YAML file of keys, e.g. configs/models/tfidf_logreg.yaml"
        )
    included = _resolve_includes(included, path.parent, (*chain, path), budget)
    if not isinstance(included, dict):
        if node:
            raise ConfigError(f"{path} must hold a mapping to be merged with keys {listing(sorted(node))}")
        return included
    return deep_merge(included, node)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` wins; nested mappings merge key by key; lists are replaced whole."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.path=value`` override in place; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"override {shown(assignment)} must look like path.to.key=value")
    path, raw_value = assignment.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {shown(assignment)} has an empty key path")
    try:
        value = _load_yaml_text(raw_value)[0] if raw_value.strip() else ""
    except ConfigError as exc:
        raise ConfigError([f"override {shorten(path)}: {p}" for p in exc.problems]) from None
    except yaml.YAMLError:
        value = raw_value
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        where = ".".join(keys[: i + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(f"override {shorten(path)}: '{shorten(where)}' is not an index of a {len(node)}-item list")
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise ConfigError(f"override {shorten(path)}: '{shorten('.'.join(keys[:i]))}' is a value, not a mapping")


def load_raw(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Read an experiment YAML, resolve ``from:`` includes, apply overrides."""
    path = Path(path)
    data, values = _read_yaml(path)
    if data is None:
        raise ConfigError(f"{path} is empty: an experiment config needs at least dataset and arms")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an experiment config must be a YAML mapping, got {type(data).__name__}")
    data = _resolve_includes(data, path.resolve().parent, (path.resolve(),), _IncludeBudget(values))
    data.setdefault("name", path.stem)
    for assignment in overrides:
        apply_override(data, assignment)
    return data


# -- validation --------------------------------------------------------------------------------
def _format_loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after[_from_yaml_shape(), StepSpec]",):
            continue
        else:
            parts.append(("." if parts else "") + shorten(item))
    return "".join(parts) or "(top level)"


def pydantic_problems(exc: ValidationError, prefix: str = "") -> list[str]:
    """One ``path: message (got value)`` line per pydantic error."""
    problems = []
    for err in exc.errors():
        loc = _format_loc(tuple(err["loc"]))
        loc = f"{prefix}.{loc}" if prefix and loc != "(top level)" else (prefix or loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here)"
        got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {shown(err['input'])})"
        problems.append(f"{loc}: {msg}{got}")
    return problems


def _non_finite(data: Any, loc: str = "") -> list[str]:
    """``.inf``, ``-.inf`` and ``.nan`` anywhere in raw config data, by dotted key: pydantic's bounds
    let infinity through (C > 0) and NaN fails them with a message that does not say why."""
    if isinstance(data, float) and not math.isfinite(data):
        text = ".nan" if math.isnan(data) else (".inf" if data > 0 else "-.inf")
        return [f"{loc or '(top level)'}: {text} is not a finite number; use a finite value"]
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _non_finite(v, f"{loc}.{shorten(k)}" if loc else shorten(k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _non_finite(v, f"{loc}[{i}]")]
    return []


def _not_about(problems: list[str], locations: set[str]) -> list[str]:
    """``problems`` less those about a value already reported at one of ``locations`` (a NaN rate
    is not also 'greater than 1'); a sweep's problems name its parameter, not the list item."""
    def loc(problem: str) -> str:
        return problem.split(": ", 1)[0]

    return [p for p in problems if not any(loc(p) == where or where.startswith(loc(p) + "[") for where in locations)]


def _unknown_names(raw: Any, reported: set[str]) -> list[str]:
    """Unknown treatment, model and dataset names in a config whose structure failed, so that one
    `validate` reports them with the structural problems (not one at a time across reruns)."""
    from smo_impact.data.catalog import DATASETS
    from smo_impact.models import MODELS
    from smo_impact.treatments import TREATMENTS

    if not isinstance(raw, dict):
        return []
    problems = []
    arms = raw.get("arms")
    for arm, steps in (arms.items() if isinstance(arms, dict) else ()):
        for i, step in enumerate(steps if isinstance(steps, list) else ()):
            name = step if isinstance(step, str) else next(iter(step), None) if isinstance(step, dict) and len(step) == 1 else None
            where = f"arms.{shorten(str(arm))}[{i}]"
            if isinstance(name, str) and name not in TREATMENTS and not any(r.startswith(where) for r in reported):
                problems.append(f"{where}: " + unknown_name_message("treatment", name, TREATMENTS.names()))
    model = raw.get("model")
    if isinstance(model, dict) and isinstance(model.get("name"), str) and model["name"] not in MODELS \
            and not any(r.startswith("model") for r in reported):
        problems.append("model.name: " + unknown_name_message("model", model["name"], MODELS.names()))
    dataset = raw.get("dataset")
    if isinstance(dataset, dict) and dataset.get("path") is None and isinstance(dataset.get("name"), str) \
            and dataset["name"] not in DATASETS and not any(r.startswith("dataset") for r in reported):
        problems.append(
            "dataset.name: " + unknown_name_message("dataset", dataset["name"], DATASETS.names())
            + " (or set dataset.path to load your own data)"
        )
    return problems


def _planned_runs(config: ExperimentConfig) -> tuple[int, str | None]:
    """How many runs the config plans, counted without building them (``runner.plan.plan_runs``
    builds each), and the problem when that is more than ``execution.max_runs``."""
    grid_points = {arm: math.prod(len(v) for v in config.sweep.get(arm, {}).values()) for arm in config.arms}
    total = sum(grid_points.values()) * len(config.seeds)
    limit = config.execution.max_runs
    if total <= limit:
        return total, None
    per_arm = " + ".join(f"{arm} {n}" for arm, n in grid_points.items())
    fix = (
        f"raise the limit with --set execution.max_runs={total} (or run --yes)"
        if total <= MAX_PLANNED_RUNS
        else f"no experiment may plan more than {MAX_PLANNED_RUNS}: use fewer seeds or sweep values"
    )
    return total, (
        f"execution.max_runs: the config plans {total} runs ({len(config.seeds)} seeds x {per_arm} grid points), "
        f"more than execution.max_runs={limit}; if that is intended, {fix}"
    )


def validate(raw: dict[str, Any], source: str | None = None, allow_many_runs: bool = False) -> ExperimentConfig:
    """Turn raw config data into an :class:`ExperimentConfig`, or raise one ConfigError listing
    every problem: structure, unknown component names, component parameters, sweeps, and a plan
    larger than ``execution.max_runs`` (unless ``allow_many_runs``: `run --yes`)."""
    # Registries are imported here, not at module level, so config stays below the stage packages.
    from smo_impact.data.catalog import DATASETS
    from smo_impact.models import MODELS
    from smo_impact.treatments import TREATMENTS

    non_finite = _non_finite(raw)
    reported = {p.split(": ", 1)[0] for p in non_finite}
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        structural = non_finite + _not_about(pydantic_problems(exc), reported)
        raise ConfigError(structural + _unknown_names(raw, {p.split(": ", 1)[0] for p in structural}), source) from None

    problems: list[str] = []
    if config.dataset.path is None and config.dataset.name not in DATASETS:
        problems.append(
            "dataset.name: " + unknown_name_message("dataset", config.dataset.name, DATASETS.names())
            + " (or set dataset.path to load your own data)"
        )
    elif config.dataset.path is not None and config.dataset.name in DATASETS:
        problems.append(
            f"dataset.name: '{shorten(config.dataset.name)}' is a built-in dataset; give your own data (dataset.path) "
            "another name"
        )
    elif config.dataset.path is None and config.dataset.ordinal:
        info = DATASETS.get(config.dataset.name)
        if len(info.labels) < 3:
            problems.append(
                f"dataset.ordinal: {config.dataset.name}'s labels {list(info.labels)} have no order beyond "
                "harmful/benign, so ordinal metrics say nothing there; drop ordinal: true"
            )
        elif config.dataset.binarize and info.binary_positive:
            problems.append(
                f"dataset.ordinal: true, but binarize applies {config.dataset.name}'s default binary rule, which makes "
                "the labels binary before training; set binarize: false to train on the ordinal scale"
            )
    for arm, stream in config.streams.items():
        if arm not in config.arms:
            problems.append(f"streams.{arm}: no arm named '{arm}'; arms: {', '.join(sorted(config.arms))}")
        elif not 0 <= stream < 2**31:
            problems.append(f"streams.{arm}: a stream is an int in [0, 2**31), got {stream}")
    if config.control not in config.arms:
        problems.append(
            f"control: arm '{shorten(config.control)}' is not defined; arms: {listing(sorted(config.arms))}"
        )

    resolved_arms: dict[str, list[StepSpec]] = {}
    for arm, steps in config.arms.items():
        if not steps:
            problems.append(f"arms.{shorten(arm)}: an arm needs at least one treatment step (e.g. `- aggregate`)")
        seen: set[str] = set()
        resolved_steps = []
        for i, step in enumerate(steps):
            where = f"arms.{shorten(arm)}[{i}]"
            if step.name not in TREATMENTS:
                problems.append(f"{where}: " + unknown_name_message("treatment", step.name, TREATMENTS.names()))
                continue
            if step.name in seen:
                problems.append(f"{where}: treatment '{step.name}' appears twice in arm '{shorten(arm)}'")
            seen.add(step.name)
            treatment_cls = TREATMENTS.get(step.name)
            try:
                params = treatment_cls.Params.model_validate(step.params)
            except ValidationError as exc:
                problems.extend(pydantic_problems(exc, f"{where}.{step.name}"))
                continue
            # A step that transforms aggregated labels needs an earlier step that produces them.
            # `requires_labels` is a bool, or a function of the step's params (noise: level=aggregated).
            requires = getattr(treatment_cls, "requires_labels", False)
            requires = requires(params) if callable(requires) else requires
            if requires and not any(
                getattr(TREATMENTS.get(s.name), "produces_labels", False) for s in steps[:i] if s.name in TREATMENTS
            ):
                problems.append(f"{where}: '{step.name}' works on aggregated labels; put an 'aggregate' step before it")
            # ... and a step that works on raw judgements must come before the aggregation.
            on_judgements = getattr(treatment_cls, "requires_judgements", False)
            on_judgements = on_judgements(params) if callable(on_judgements) else on_judgements
            if on_judgements and any(
                getattr(TREATMENTS.get(s.name), "produces_labels", False) for s in steps[:i] if s.name in TREATMENTS
            ):
                problems.append(f"{where}: '{step.name}' works on individual judgements; put it before the 'aggregate' step")
            # Rules across the step and the rest of the config (acquire: its budget vs costs, its model).
            if (check := getattr(treatment_cls, "config_problems", None)) is not None:
                problems.extend(f"{where}.{step.name}.{p}" for p in check(params, config, MODELS))
            resolved_steps.append(StepSpec(name=step.name, params=params.model_dump(mode="json")))
        resolved_arms[arm] = resolved_steps

    model_params: dict[str, Any] = {}
    if config.model.name not in MODELS:
        problems.append("model.name: " + unknown_name_message("model", config.model.name, MODELS.names()))
    else:
        try:
            model_params = MODELS.get(config.model.name).Params.model_validate(config.model.params).model_dump(mode="json")
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, "model.params"))

    problems.extend(config.evaluation.problems(TREATMENTS, DATASETS))
    if config.evaluation.split == "dev" and config.model.name in MODELS:
        if "dev" in getattr(MODELS.get(config.model.name), "fit_inputs", frozenset()):
            # Picking epochs on the split that is then scored would report an optimistic figure.
            problems.append(
                f"evaluation.split: model '{config.model.name}' early-stops on the dev split, so dev cannot "
                "also be the evaluation split; evaluate on test (evaluation.split: test)"
            )

    for arm, grid in config.sweep.items():
        if arm not in config.arms:
            problems.append(f"sweep.{shorten(arm)}: no arm named '{shorten(arm)}'; arms: {listing(sorted(config.arms))}")
            continue
        step_names = {s.name: s for s in config.arms[arm]}
        for key, values in grid.items():
            where = f"sweep.{shorten(arm)}.{shorten(key)}"
            if not values:
                problems.append(f"{where}: needs at least one value")
                continue
            target, _, param = key.partition(".")
            if not param:
                problems.append(f"{where}: a sweep key is 'step.param' or 'model.param', e.g. noise.rate")
                continue
            if target == "model":
                if config.model.name not in MODELS:
                    continue
                params_model = MODELS.get(config.model.name).Params
                base = dict(config.model.params)
            elif target in step_names:
                if target not in TREATMENTS:
                    continue
                params_model = TREATMENTS.get(target).Params
                base = dict(step_names[target].params)
            else:
                problems.append(
                    f"{where}: arm '{shorten(arm)}' has no step '{shorten(target)}'; its steps: "
                    f"{', '.join(sorted(step_names)) or '(none)'} (or use model.<param>)"
                )
                continue
            if param not in params_model.model_fields:
                problems.append(
                    f"{where}: '{shorten(target)}' has no parameter '{shorten(param)}'; parameters: "
                    f"{', '.join(sorted(params_model.model_fields))}"
                )
                continue
            for value in values:
                try:
                    params_model.model_validate({**base, param: value})
                except ValidationError as exc:
                    problems.extend(pydantic_problems(exc, f"sweep.{shorten(arm)}.{shorten(target)}"))

    if not problems:  # a sweep with problems plans nothing countable
        total, too_many = _planned_runs(config)
        if too_many and not (allow_many_runs and total <= MAX_PLANNED_RUNS):
            problems.append(too_many)
    problems = non_finite + _not_about(problems, reported)
    if problems:
        raise ConfigError(problems, source)
    return config.model_copy(
        update={
            "arms": resolved_arms,
            "model": ModelSpec(name=config.model.name, params=model_params),
        }
    )


def load_config(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), allow_many_runs: bool = False
) -> ExperimentConfig:
    """Read, compose, override and validate an experiment config file (``allow_many_runs``: plan
    more than ``execution.max_runs`` runs, up to :data:`MAX_PLANNED_RUNS`)."""
    return validate(load_raw(path, overrides), source=str(path), allow_many_runs=allow_many_runs)
