"""Guideline versions: explicit rules that turn raw rater answers into training labels.

A guideline is declared in YAML (``configs/treatments/guidelines/*.yaml``) as an ordered list of
rules; the first rule whose conditions all hold gives a judgement its label::

    guideline:
      version: v2
      labels: [0, 1]
      positive_label: 1
      rules:
        - {name: severe abuse, when: {severity: {le: -2}}, label: 1}
        - {name: mild abuse is allowed, when: {severity: -1}, label: 0}
        - {name: ambiguous, when: {severity: 0}, label: 0}
        - {name: not abuse, when: {}, label: 0}     # empty `when`: always matches

Conditions name annotation columns (``label`` and any extra answer column) and hold a value
(equality) or a mapping of operators: ``eq ne lt le gt ge in not_in``. Missing values match no
comparison. ``select`` keeps only judgements made under given guideline versions when the data has
such a column.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smo_impact.treatments.base import (
    LabelState,
    TreatmentParams,
    change_rows,
    keep_tasks,
    removal_rows,
    require_judgements,
)

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in")


class Rule(BaseModel):
    """One guideline rule: when every condition holds, the judgement's label is ``label``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(None, description="Human-readable rule name, used in the change record.")
    when: dict[str, Any] = Field(default_factory=dict, description="column -> value or {operator: value}.")
    label: Any = Field(description="The label a matching judgement gets.")

    @field_validator("when")
    @classmethod
    def _operators(cls, when: dict[str, Any]) -> dict[str, Any]:
        for column, cond in when.items():
            if isinstance(cond, dict):
                unknown = sorted(set(cond) - set(OPERATORS))
                if unknown:
                    raise ValueError(
                        f"condition on '{column}' uses unknown operator(s) {unknown}; "
                        f"operators: {', '.join(OPERATORS)}"
                    )
                for op in ("in", "not_in"):
                    if op in cond and not isinstance(cond[op], list):
                        raise ValueError(f"condition on '{column}': '{op}' needs a list, got {cond[op]!r}")
        return when

    def describe(self) -> str:
        if not self.when:
            return f"otherwise -> {self.label}"
        parts = []
        for column, cond in self.when.items():
            ops = cond if isinstance(cond, dict) else {"eq": cond}
            parts.extend(f"{column} {op} {val}" for op, val in ops.items())
        return f"{' and '.join(parts)} -> {self.label}"


def _condition_mask(values: pd.Series, cond: Any) -> np.ndarray:
    ops = cond if isinstance(cond, dict) else {"eq": cond}
    present = values.notna().to_numpy()
    mask = present.copy()
    for op, target in ops.items():
        if op == "in":
            hit = values.isin(target).to_numpy()
        elif op == "not_in":
            hit = ~values.isin(target).to_numpy()
        else:
            numeric = pd.to_numeric(values, errors="coerce") if not isinstance(target, str) else values
            compare = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
                       "gt": np.greater, "ge": np.greater_equal}[op]
            arr = numeric.to_numpy(dtype=object)
            hit = np.array([v is not None and not pd.isna(v) and bool(compare(v, target)) for v in arr], dtype=bool)
        mask &= hit
    return mask


class Guideline:
    """Relabel every judgement by the first matching rule of a guideline version.

    Runs before ``aggregate``. The state's label set and positive label become the guideline's,
    so a guideline that maps a severity scale to binary labels trains a binary classifier, and one
    that maps it to K labels (e.g. not abusive / mild / strong) a K-class one; its
    ``positive_labels`` are then the harmful labels of the binary view and ``ordinal`` says whether
    its labels are an ordered scale. The raw answer is kept in ``raw_label``. Judgements no rule matches are an error (``unmatched:
    error``, naming the first one) or dropped (``unmatched: drop``).

    Change record: one row per judgement whose label changed (every judgement when the guideline
    maps the answers to another label set), with the rule that fired as ``cause`` and the rater as
    ``worker``; one row per judgement dropped by ``select`` or ``unmatched: drop``. Metrics: ``treatment/guideline_rule_<i>_matches``, ``treatment/guideline_unmatched``,
    ``treatment/guideline_judgements_relabelled``, ``treatment/guideline_judgements_selected``.
    """

    name: ClassVar[str] = "guideline"
    requires_judgements: ClassVar[bool] = True  # checked at validation: comes before 'aggregate'
    preflight: ClassVar[bool] = True  # cheap: the runner tries it on the data before any run

    class Params(TreatmentParams):
        version: str = Field(description="Guideline version name, e.g. v2.")
        description: str = ""
        quiet_defaults: ClassVar[tuple[str, ...]] = ("positive_labels", "ordinal")

        labels: list[Any] = Field([0, 1], min_length=2, description="Label set after the guideline, benign to harmful.")
        positive_label: Any = Field(1, description="The harmful class after the guideline.")
        positive_labels: list[Any] | None = Field(
            None,
            description="K labels: the labels the binary view counts as harmful (binary metrics, recall@FPR, "
            "HateCheck); default [positive_label].",
        )
        ordinal: bool = Field(False, description="The labels are an ordered scale (adds MAE and quadratic-weighted kappa).")
        rules: list[Rule] = Field(min_length=1, description="Ordered rules; the first match wins.")
        unmatched: Literal["error", "drop"] = "error"
        select: list[str] | None = Field(
            None, description="Keep only judgements whose version column has one of these values."
        )
        version_column: str = Field("guideline", description="Annotations column naming the guideline version.")

        @model_validator(mode="after")
        def _labels_known(self) -> Guideline.Params:
            if self.positive_label not in self.labels:
                raise ValueError(f"positive_label {self.positive_label!r} is not in labels {self.labels}")
            for i, rule in enumerate(self.rules):
                if rule.label not in self.labels:
                    raise ValueError(f"rules[{i}].label {rule.label!r} is not in labels {self.labels}")
            outside = [v for v in self.positive_labels or [] if v not in self.labels]
            if outside:
                raise ValueError(f"positive_labels {outside} are not in labels {self.labels}; list harmful labels of the guideline's set")
            if self.ordinal and len(self.labels) < 3:
                raise ValueError(
                    f"ordinal: a {len(self.labels)}-label set {self.labels} has no order beyond harmful/benign; drop ordinal: true"
                )
            return self

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        require_judgements(state, self.name)
        p = self.params
        ann = state.annotations
        removed = []  # change rows of the judgements this step drops
        if p.select is not None:
            if p.version_column not in ann.columns:
                raise ValueError(
                    f"guideline.select: annotations have no '{p.version_column}' column; "
                    f"found: {', '.join(map(str, ann.columns))} (set guideline.version_column)"
                )
            selected = ann[p.version_column].astype(str).isin(p.select).to_numpy()
            removed.append(removal_rows(ann[~selected], self.name, f"guideline {p.version}: not made under {', '.join(p.select)}"))
            ann = ann[selected]
        columns = {c for rule in p.rules for c in rule.when}
        missing = sorted(columns - set(ann.columns))
        if missing:
            raise ValueError(
                f"guideline {p.version}: rule column(s) {', '.join(missing)} not in the annotations; "
                f"found: {', '.join(map(str, ann.columns))}"
            )
        fired = np.full(len(ann), -1)
        new = np.empty(len(ann), dtype=object)
        self.metrics_ = {}
        for i, rule in enumerate(p.rules):
            match = np.ones(len(ann), dtype=bool)
            for column, cond in rule.when.items():
                match &= _condition_mask(ann[column], cond)
            take = match & (fired < 0)
            fired[take] = i
            new[take] = rule.label
            self.metrics_[f"treatment/guideline_rule_{i}_matches"] = float(take.sum())
        unmatched = fired < 0
        if unmatched.any() and p.unmatched == "error":
            row = ann.iloc[int(np.argmax(unmatched))]
            shown = {c: row[c] for c in sorted(columns | {"label"})}
            raise ValueError(
                f"guideline {p.version}: no rule matches {int(unmatched.sum())} judgement(s), e.g. task "
                f"'{row['task']}' worker '{row['worker']}' with {shown}; add a rule (an empty `when` "
                "matches everything) or set unmatched: drop"
            )
        removed.append(removal_rows(ann.loc[unmatched], self.name, f"guideline {p.version}: no rule matches"))
        kept = ann.loc[~unmatched].copy()
        kept["raw_label"] = kept["label"]
        kept["label"] = pd.Series(new[~unmatched], index=kept.index).infer_objects()
        rule_of = fired[~unmatched]
        changed = (kept["label"].astype(str) != kept["raw_label"].astype(str)).to_numpy()
        # A guideline that maps the answers to another label set (a severity scale to binary)
        # redefines every judgement's label, even one whose value reads the same (severity 1 ->
        # label 1): all of them are recorded, so a wrong rule's judgements can be found by rule.
        recorded = np.ones(len(kept), dtype=bool) if tuple(p.labels) != tuple(state.labels_set) else changed
        causes = [f"guideline {p.version} rule {r} ({p.rules[r].name or p.rules[r].describe()})" for r in rule_of[recorded]]
        changes = change_rows(
            kept["task"].to_numpy()[recorded], self.name, kept["raw_label"].to_numpy()[recorded],
            kept["label"].to_numpy()[recorded], causes, kept["worker"].to_numpy()[recorded],
        )
        changes = pd.concat([*[r for r in removed if not r.empty], changes], ignore_index=True)
        self.metrics_.update(
            {
                "treatment/guideline_unmatched": float(unmatched.sum()),
                "treatment/guideline_judgements_relabelled": float(changed.sum()),
                "treatment/guideline_judgements_selected": float(len(ann)),
            }
        )
        if kept.empty:
            raise ValueError(f"guideline {p.version} keeps no judgements")
        return keep_tasks(
            state, kept["task"].unique(), annotations=kept,
            labels_set=tuple(p.labels), positive_label=p.positive_label,
            harmful_labels=tuple(p.positive_labels or ()), ordinal=p.ordinal,
        ).with_changes(changes)
