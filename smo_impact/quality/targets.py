"""Quality targets (KPIs): declared in YAML, checked against an audit, each passes or fails.

A targets file (each target a mapping, or the same as one line)::

    targets:
      - alpha >= 0.6
      - rater_agreement >= 0.7 for every rater with >= 50 judgements
      - {metric: krippendorff_alpha, min: 0.6}
      - {metric: rater_agreement, per: rater, min: 0.7, min_judgements: 50}
      - {metric: flag_bias, per: rater_slice, min: -0.25, max: 0.25, min_judgements: 30}

``per`` says what must meet the bound: the whole dataset, every rater, every slice (item slice or
rater group) or every rater within every slice. Raters and slices below ``min_judgements`` /
``min_items`` are not judged (too little evidence). For an agreement metric a slice's items are its
*pairable* items, those with two or more judgements within the slice (for a rater group: by its own
raters), because agreement is computed on those alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field, ValidationError, model_validator

from smo_impact.config import Spec, pydantic_problems, read_yaml
from smo_impact.errors import ConfigError
from smo_impact.registry import did_you_mean

# Metric names per scope, with what each means (shown in errors and reports).
METRICS: dict[str, dict[str, str]] = {
    "dataset": {
        "krippendorff_alpha": "Krippendorff's alpha (nominal) of all judgements",
        "krippendorff_alpha_low": "lower bound of alpha's bootstrap confidence interval",
        "krippendorff_alpha_ordinal": "Krippendorff's alpha (ordinal; label sets of 3+ ordered labels)",
        "krippendorff_alpha_interval": "Krippendorff's alpha (interval; numeric label sets of 3+ values)",
        "percent_agreement": "share of agreeing rater pairs per item",
        "fleiss_kappa": "Fleiss' kappa (items with the most common number of judgements)",
        "cohen_kappa_median": "median Cohen's kappa over rater pairs with enough shared items",
        "unanimous_share": "share of items on which every rater agreed",
        "rater_agreement_mean": "mean over raters of their leave-one-out majority agreement",
        "loo_agreement": "share of judgements that match the other raters' majority",
        "gold_accuracy": "share of judgements equal to the gold label",
        "ds_skill_mean": "mean Dawid-Skene skill of the raters",
        "positive_rate": "share of judgements with the positive label",
    },
    "rater": {
        "rater_agreement": "leave-one-out majority agreement of the rater",
        "gold_accuracy": "share of the rater's judgements equal to gold",
        "ds_skill": "Dawid-Skene skill of the rater",
        "flag_rate": "share of the rater's judgements with the positive label",
        "flag_bias": "rater's flag rate minus the other raters' on the same items",
    },
    "slice": {
        "krippendorff_alpha": "alpha within the slice",
        "krippendorff_alpha_ordinal": "ordinal alpha within the slice (3+ ordered labels)",
        "krippendorff_alpha_interval": "interval alpha within the slice (numeric labels)",
        "fleiss_kappa": "Fleiss' kappa within the slice",
        "percent_agreement": "percent agreement within the slice",
        "positive_rate": "share of positive judgements in the slice",
    },
    "rater_slice": {
        "flag_rate": "rater's flag rate within the slice",
        "flag_bias": "rater's flag rate minus the other raters' on the same items of the slice",
    },
}
Scope = Literal["dataset", "rater", "slice", "rater_slice"]
# Slice metrics that are not agreement: their min_items floor counts every item of the slice.
SHARE_METRICS = frozenset({"positive_rate"})
ALIASES = {"alpha": "krippendorff_alpha"}

_NUMBER = r"-?\d+(?:\.\d*)?(?:[eE]-?\d+)?"
_SENTENCE = re.compile(
    rf"^\s*(?P<metric>[A-Za-z_]+)\s*(?P<op>>=|<=)\s*(?P<value>{_NUMBER})"
    rf"(?:\s+and\s+(?P<op2>>=|<=)\s*(?P<value2>{_NUMBER}))?"
    r"(?:\s+for\s+every\s+(?P<per>rater\s+in\s+every\s+slice|rater|slice))?"
    r"(?:\s+with\s*>=\s*(?P<floor>\d+)\s+(?P<unit>judgements|items))?\s*$"
)


def parse_target(sentence: str) -> dict[str, Any]:
    """Parse the one-line form of a target into its mapping.

    Grammar: ``METRIC (>=|<=) NUMBER [and (>=|<=) NUMBER] [for every rater|slice|rater in every
    slice] [with >= N judgements|items]``, e.g. ``alpha >= 0.6`` or ``flag_bias >= -0.2 and <= 0.2
    for every rater with >= 50 judgements``.
    """
    match = _SENTENCE.match(sentence)
    if not match:
        raise ValueError(
            f"cannot read target {sentence!r}; write e.g. 'alpha >= 0.6' or "
            "'rater_agreement >= 0.7 for every rater with >= 50 judgements'"
        )
    target: dict[str, Any] = {"metric": ALIASES.get(match["metric"], match["metric"])}
    for op, value in ((match["op"], match["value"]), (match["op2"], match["value2"])):
        if op:
            target["min" if op == ">=" else "max"] = float(value)
    per = (match["per"] or "dataset").split()
    target["per"] = "rater_slice" if len(per) > 1 else per[0]
    if match["floor"]:
        target["min_items" if match["unit"] == "items" else "min_judgements"] = int(match["floor"])
    return target


class Target(Spec):
    """One quality target: a metric, a scope and bounds."""

    metric: str = Field(description="Metric name; see METRICS for each scope.")
    per: Scope = Field("dataset", description="What must meet the bound.")
    min: float | None = Field(None, description="Pass when the value is >= min.")
    max: float | None = Field(None, description="Pass when the value is <= max.")
    min_judgements: int = Field(0, ge=0, description="rater/rater_slice: judge only cells with this many judgements.")
    min_items: int = Field(
        0, ge=0, description="slice: judge only slices with this many items (agreement metrics: items with >= 2 judgements in the slice)."
    )
    name: str | None = Field(None, description="Display name; default: derived from the target.")

    @model_validator(mode="before")
    @classmethod
    def _from_sentence(cls, value: Any) -> Any:
        # "rater_agreement >= 0.7 for every rater with >= 50 judgements" is shorthand for the mapping.
        return parse_target(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> Target:
        if self.metric not in METRICS[self.per]:
            choices = sorted(METRICS[self.per])
            raise ValueError(
                f"Unknown metric '{self.metric}' for per={self.per}.{did_you_mean(self.metric, choices)} "
                f"Available: {', '.join(choices)}."
            )
        if self.min is None and self.max is None:
            raise ValueError(f"target '{self.metric}' needs a bound: give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"target '{self.metric}': min {self.min} is above max {self.max}")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        bounds = " and ".join(
            part for part in (f">= {self.min:g}" if self.min is not None else "", f"<= {self.max:g}" if self.max is not None else "") if part
        )
        scope = {"dataset": "", "rater": " for every rater", "slice": " for every slice", "rater_slice": " for every rater in every slice"}[self.per]
        floor = ""
        if self.per in ("rater", "rater_slice") and self.min_judgements:
            floor = f" with >= {self.min_judgements} judgements"
        if self.per == "slice" and self.min_items:
            floor = f" with >= {self.min_items} items"
        return f"{self.metric} {bounds}{scope}{floor}"

    def passes(self, value: float) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class TargetsFile(Spec):
    """A targets YAML file."""

    description: str = ""
    targets: list[Target] = Field(min_length=1)


def load_targets(path: str | Path) -> TargetsFile:
    """Read and validate a targets file; one ConfigError lists every problem with its path."""
    raw = read_yaml(Path(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"a targets file must be a mapping with a 'targets' list, got {type(raw).__name__}", source=str(path))
    try:
        return TargetsFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(pydantic_problems(exc), source=str(path)) from None


@dataclass
class TargetResult:
    """The verdict on one target.

    Attributes:
        target: The target checked.
        passed: Whether it holds.
        value: The dataset-level value, or for per-rater/slice targets the worst value judged.
        judged: How many raters/slices were judged (1 for dataset targets).
        failing: The raters/slices that miss the bound (``who``, ``value``, ``n``), worst first.
        note: Why a target could not be evaluated, when it could not.
    """

    target: Target
    passed: bool
    value: float
    judged: int
    failing: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["who", "value", "n"]))
    note: str = ""


def _distance(target: Target, values: pd.Series) -> pd.Series:
    """How far each value is outside the bounds (0 inside), for 'worst first' ordering."""
    below = (target.min - values).clip(lower=0) if target.min is not None else 0 * values
    above = (values - target.max).clip(lower=0) if target.max is not None else 0 * values
    return below + above


def evaluate_targets(targets: TargetsFile | list[Target], audit: Any) -> list[TargetResult]:
    """Check every target against a fitted :class:`~smo_impact.quality.audit.QualityAudit`."""
    results = []
    for target in targets.targets if isinstance(targets, TargetsFile) else targets:
        if target.per == "dataset":
            available = target.metric in audit.summary_
            value = float(audit.summary_[target.metric]) if available else float("nan")
            note = "" if available else f"'{target.metric}' is not available for this dataset"
            results.append(TargetResult(target, target.passes(value), value, int(available), note=note))
            continue
        if target.per == "rater":
            table = audit.raters_
            who = table.index.astype(str).to_series(index=table.index)
            n, floor = table["judgements"], target.min_judgements
        elif target.per == "slice":
            table = audit.slices_
            who = table["kind"].map({"item": "", "rater": "raters: "}) + table["slice"] + "=" + table["value"]
            n = table["items" if target.metric in SHARE_METRICS else "pairable_items"]
            floor = target.min_items
        else:
            table = audit.rater_slices_
            who = table["worker"].astype(str) + " @ " + table["slice"] + "=" + table["value"]
            n, floor = table["judgements"], target.min_judgements
        if target.metric not in table.columns:
            results.append(
                TargetResult(target, False, float("nan"), 0, note=f"'{target.metric}' is not available for this dataset")
            )
            continue
        values = table[target.metric].astype(float)
        judged = (n >= floor) & values.notna()
        if not judged.any():
            results.append(TargetResult(target, False, float("nan"), 0, note="nothing met the judgement/item floor"))
            continue
        distance = _distance(target, values[judged])
        failing_mask = distance > 0
        failing = pd.DataFrame(
            {"who": who[judged][failing_mask], "value": values[judged][failing_mask], "n": n[judged][failing_mask], "_d": distance[failing_mask]}
        ).sort_values(["_d", "who"], ascending=[False, True], kind="stable").drop(columns="_d").reset_index(drop=True)
        worst = values[judged].loc[distance.idxmax()] if failing_mask.any() else (
            values[judged].min() if target.min is not None else values[judged].max()
        )
        results.append(TargetResult(target, not failing_mask.any(), float(worst), int(judged.sum()), failing))
    return results
