"""Label noise injection: what if a share of our training labels were wrong?

Symmetric or class-conditional (a transition matrix), optionally instance-dependent (flip
probability rising with the item's human disagreement or a model's uncertainty) and restricted to
a slice, applied to the aggregated training labels or to individual judgements.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from smo_impact.data.schema import vote_counts
from smo_impact.treatments.aggregate import majority_vote
from smo_impact.treatments.base import LabelState, TreatmentParams, change_rows, require_judgements


def flip_matrix(before: pd.Series, after: pd.Series, labels_set: tuple) -> pd.DataFrame:
    """Row-normalised transition matrix P(after | before) over the declared labels."""
    index = pd.Index(list(labels_set))
    k = len(index)
    flat = index.get_indexer(before.to_numpy()) * k + index.get_indexer(after.to_numpy())
    counts = np.bincount(flat, minlength=k * k).reshape(k, k).astype(float)
    rows = counts.sum(axis=1, keepdims=True)
    matrix = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    return pd.DataFrame(matrix, index=list(labels_set), columns=list(labels_set))


def transition_matrix(labels_set: tuple, rate: float, transitions: dict | list | None) -> np.ndarray:
    """Requested P(after | before): symmetric at ``rate`` (uniform over the other labels), the
    off-diagonal ``transitions`` ``{from: {to: p}}``, or ``transitions`` as the full K x K matrix
    (rows and columns in the declared label order, rows summing to 1).

    Raises:
        ValueError: naming the unknown label, the row whose flip probabilities exceed 1, or a matrix
            whose size is not the label set's.
    """
    k = len(labels_set)
    if transitions is None:
        return np.full((k, k), rate / (k - 1)) * (1 - np.eye(k)) + np.eye(k) * (1 - rate)
    if isinstance(transitions, list):
        matrix = np.asarray(transitions, dtype=float)
        if matrix.shape != (k, k):
            raise ValueError(
                f"noise.transitions: a {len(transitions)} x {len(transitions)} matrix for the {k} labels "
                f"{list(labels_set)}; give one row and one column per label, in that order"
            )
        return matrix
    names = {str(lab): i for i, lab in enumerate(labels_set)}
    matrix = np.zeros((k, k))
    for src, row in transitions.items():
        for dst, prob in row.items():
            for lab in (src, dst):
                if str(lab) not in names:
                    raise ValueError(
                        f"noise.transitions: label {lab!r} is not in the label set {list(labels_set)}; "
                        "name labels of that set (the one after any guideline step)"
                    )
            if str(src) == str(dst):
                raise ValueError(
                    f"noise.transitions: give only flip probabilities (from != to), got {src!r} -> {dst!r}"
                )
            matrix[names[str(src)], names[str(dst)]] = prob
    for i, lab in enumerate(labels_set):
        if matrix[i].sum() > 1 + 1e-9:
            raise ValueError(f"noise.transitions: flip probabilities from {lab!r} sum to {matrix[i].sum():.3f} > 1")
        matrix[i, i] = 1 - matrix[i].sum()
    return matrix


def flip_probabilities(weights: np.ndarray, rate: float) -> tuple[np.ndarray, bool]:
    """Per-unit flip probabilities in proportion to ``weights``, capped at 1, with mean ``rate``.

    Water-filling: ``p_i = min(1, lambda * w_i)`` with ``lambda`` solved exactly so that
    ``mean(p) == rate``. Sorting the weights, capping the ``k`` largest leaves ``rate * n - k``
    expected flips for the rest, shared in proportion to weight: ``lambda = (rate * n - k) / S_k``
    (``S_k`` the sum of the uncapped weights); the smallest ``k`` whose largest uncapped unit stays
    at or below 1 is the solution. When fewer units have a positive weight than ``rate * n``, all of
    them get 1 and the remaining expectation is spread evenly over the zero-weight units.

    ``p`` is non-decreasing in each weight and in ``rate`` (so a higher rate flips a superset at a
    fixed seed), and the weights' scale does not matter.

    Args:
        weights: non-negative instance weights of the units of one class.
        rate: the requested expected share of these units that flip, in [0, 1].

    Returns:
        The probabilities, and whether the weights saturated (the zero-weight units had to take
        part of the flips).
    """
    w = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    n = len(w)
    p = np.zeros(n)
    target = rate * n  # expected flips
    if n == 0 or target <= 0:
        return p, False
    positive = w > 0
    m = int(positive.sum())
    if m <= target:
        p[positive] = 1.0
        if m < n:
            p[~positive] = min(1.0, (target - m) / (n - m))
        return p, m < target
    ascending = np.sort(w[positive])
    prefix = np.cumsum(ascending)  # prefix[j]: sum of the j + 1 smallest weights
    k = np.arange(m)  # the k largest capped; k = m - 1 always fits, since target < m
    rest_sum, rest_max = prefix[m - 1 - k], ascending[m - 1 - k]
    k0 = int(np.argmax((target - k) * (rest_max / rest_sum) <= 1.0))
    # (target - k0) * (w / S) rather than lambda * w: w / S cannot overflow to inf * 0 for tiny S.
    with np.errstate(over="ignore"):
        p[positive] = np.minimum(1.0, (target - k0) * (w[positive] / rest_sum[k0]))
    return p, False


class Noise:
    """Label noise with a known, reported transition matrix.

    Each unit (an aggregated training label with ``level: aggregated``, a single judgement with
    ``level: judgement``) in ``slice`` (and, for judgements, by one of ``workers``: "what if rater X
    were careless?") leaves its label ``c`` with probability ``q_c`` = the
    off-diagonal mass of row ``c`` of the requested matrix (symmetric: ``rate``; class-conditional:
    ``transitions``). Instance-dependent noise keeps that expectation per class and moves the flips
    towards units with a higher instance weight: ``p_i = min(1, lambda_c * w_i)`` with ``lambda_c``
    chosen so that the eligible units of class ``c`` average exactly ``q_c`` (see
    :func:`flip_probabilities`; where too few units have a positive weight, the rest of the
    expectation is spread over the zero-weight ones and ``treatment/noise_weight_saturated`` is 1).
    ``disagreement`` weighs an item by its minority vote share, ``uncertainty`` by ``1 - max P`` of
    out-of-fold probabilities from a cheap model (see :mod:`.oof`). Where a flip happens, the new
    label is drawn from the row's off-diagonal distribution.

    One uniform per unit in task order decides the flip (``uniform < p_i``), so at a fixed seed a
    higher rate flips a superset of what a lower rate flips (common random numbers keep a sweep
    smooth).

    Metrics (over eligible units): ``treatment/requested_flip_rate`` (expected share flipped) and
    ``treatment/realized_flip_rate``, ``treatment/labels_flipped``, ``treatment/noise_units_eligible``,
    ``treatment/noise_weight_saturated``, the requested ``treatment/requested_flip_matrix/<from>_to_<to>``
    and the realised ``treatment/flip_matrix/<from>_to_<to>``. Attributes: ``requested_matrix_``,
    ``flip_matrix_``, ``flip_probability_`` (per unit, indexed like the units), ``flipped_``.
    """

    name: ClassVar[str] = "noise"

    @staticmethod
    def requires_labels(params: Noise.Params) -> bool:
        """Aggregated-level noise needs an 'aggregate' step before it (checked at validation)."""
        return params.level == "aggregated"

    @staticmethod
    def preflight(params: Noise.Params) -> bool:
        """Cheap to try before any run, unless the flips depend on a model's uncertainty."""
        return params.instance != "uncertainty"

    @staticmethod
    def requires_judgements(params: Noise.Params) -> bool:
        """Judgement-level noise goes before the 'aggregate' step (checked at validation)."""
        return params.level == "judgement"

    class Params(TreatmentParams):
        rate: float | None = Field(
            None, ge=0.0, le=1.0, description="Probability that a label flips (symmetric); 0.1 without transitions."
        )
        transitions: dict[Any, dict[Any, float]] | list[list[float]] | None = Field(
            None,
            description="Class-conditional noise: {from: {to: probability}}, off-diagonal only, or the full matrix "
            "P(new | label) as a list of rows in the declared label order (rows sum to 1); replaces rate.",
        )
        instance: Literal["none", "disagreement", "uncertainty"] = Field(
            "none", description="Scale each unit's flip probability by human disagreement or model uncertainty."
        )
        slice: dict[str, list[Any]] | None = Field(
            None, description="Only items whose column has one of these values, e.g. {domain: [BLM]}."
        )
        level: Literal["aggregated", "judgement"] = Field(
            "aggregated", description="Flip aggregated training labels, or individual judgements (before aggregate)."
        )
        workers: list[Any] | None = Field(
            None, description="level judgement: only these raters' judgements, e.g. [Ann3] (what if rater X were careless?)."
        )

        @model_validator(mode="before")
        @classmethod
        def _default_rate(cls, data: Any) -> Any:
            # Symmetric 10% when neither is given. A resolved config (every field written out) has
            # rate: null next to its transitions, so it validates again as it did the first time.
            if isinstance(data, dict) and data.get("rate") is None and data.get("transitions") is None:
                return {**data, "rate": 0.1}
            return data

        @model_validator(mode="after")
        def _rate_or_transitions(self) -> Noise.Params:
            if self.transitions is not None and self.rate is not None:
                raise ValueError("give either rate (symmetric) or transitions (class-conditional), not both")
            if isinstance(self.transitions, list):
                self._check_matrix(self.transitions)
            for src, row in (self.transitions if isinstance(self.transitions, dict) else {}).items():
                for dst, prob in row.items():
                    if not 0.0 <= prob <= 1.0:
                        raise ValueError(f"transitions[{src!r}][{dst!r}] must be in [0, 1], got {prob}")
                if sum(row.values()) > 1 + 1e-9:
                    raise ValueError(
                        f"transitions: flip probabilities from {src!r} sum to {sum(row.values()):.3g} > 1; "
                        "give only the off-diagonal flips, at most 1 in all per label"
                    )
            if self.workers is not None and self.level != "judgement":
                raise ValueError("workers selects raters' judgements: it needs level: judgement")
            return self

        @staticmethod
        def _check_matrix(rows: list[list[float]]) -> None:
            for i, row in enumerate(rows):
                if len(row) != len(rows):
                    raise ValueError(
                        f"transitions must be a square matrix (one row per label); row {i} has {len(row)} values, "
                        f"not {len(rows)}"
                    )
                if any(not 0.0 <= p <= 1.0 for p in row):
                    raise ValueError(f"transitions row {i} has a value outside [0, 1]: {row}")
                if abs(sum(row) - 1.0) > 1e-6:
                    raise ValueError(
                        f"transitions row {i} sums to {sum(row):.6g}; each row of a full transition matrix is "
                        "P(new label | label) and must sum to 1 (or give {from: {to: p}} with the flips only)"
                    )

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        p = self.params
        if p.level == "aggregated":
            if state.labels is None:
                raise ValueError("noise needs aggregated labels: put an 'aggregate' step before it")
            units = state.labels.sort_index()
            tasks = units.index.to_numpy()
            before_values = units.to_numpy()
        else:
            require_judgements(state, "noise (level: judgement)")
            units = state.annotations.sort_values(["task", "worker"], kind="stable")
            tasks = units["task"].to_numpy()
            before_values = units["label"].to_numpy()

        requested = transition_matrix(state.labels_set, p.rate, p.transitions)
        labels = np.asarray(state.labels_set, dtype=object)
        index_of = {lab: i for i, lab in enumerate(state.labels_set)}
        current = np.array([index_of[v] for v in before_values], dtype=int)
        eligible = self._eligible(state, tasks, units)
        weight = self._instance_weights(state, tasks, rng)
        probability, saturated = self._flip_probabilities(current, eligible, weight, 1 - np.diag(requested))

        uniforms = rng.random(len(current))
        flip = uniforms < probability
        # Destination: the row's off-diagonal distribution (binary: the other class).
        k = len(labels)
        new_index = current.copy()
        if k == 2:
            new_index[flip] = 1 - current[flip]
        elif flip.any():
            off = requested * (1 - np.eye(k))
            rows = off[current[flip]]
            rows = rows / rows.sum(axis=1, keepdims=True)
            draws = rng.random(int(flip.sum()))
            new_index[flip] = (draws[:, None] > np.cumsum(rows, axis=1)).sum(axis=1)
        after_values = labels[new_index]

        before = pd.Series(before_values)
        after = pd.Series(after_values).infer_objects()
        matrix = flip_matrix(before[eligible], after[eligible], state.labels_set)
        self.requested_matrix_ = pd.DataFrame(requested, index=list(state.labels_set), columns=list(state.labels_set))
        self.flip_matrix_ = matrix
        self.flip_probability_ = pd.Series(probability, index=units.index, name="flip_probability")
        self.flipped_ = pd.Index(tasks[flip])
        n_eligible = int(eligible.sum())
        self.metrics_ = {
            "treatment/requested_flip_rate": float(probability[eligible].sum() / n_eligible) if n_eligible else 0.0,
            "treatment/realized_flip_rate": float(flip.sum() / n_eligible) if n_eligible else 0.0,
            "treatment/labels_flipped": float(flip.sum()),
            "treatment/noise_units_eligible": float(n_eligible),
            "treatment/noise_weight_saturated": float(saturated),
        }
        for a in state.labels_set:
            for b in state.labels_set:
                self.metrics_[f"treatment/requested_flip_matrix/{a}_to_{b}"] = float(self.requested_matrix_.loc[a, b])
                self.metrics_[f"treatment/flip_matrix/{a}_to_{b}"] = float(matrix.loc[a, b])

        kind = "class-conditional" if p.transitions is not None else f"symmetric rate={p.rate}"
        if p.instance != "none":
            kind += f", {p.instance}-dependent"
        if p.level == "aggregated":
            reference = state.reference if state.reference is not None else units
            new_labels = pd.Series(after_values, index=units.index, name="label").infer_objects()
            changes = change_rows(tasks[flip], self.name, before_values[flip], after_values[flip], f"{kind} noise")
            soft = state.soft_labels
            if soft is not None and flip.any():
                # A flipped item's vote distribution no longer backs its label: the noise replaced
                # the humans' answer, so its soft label becomes one-hot at the new label.
                soft = soft.copy()
                flipped_tasks = pd.Index(tasks[flip])
                soft.loc[soft.index.intersection(flipped_tasks)] = 0.0
                for task, label in zip(flipped_tasks, after_values[flip]):
                    if task in soft.index and label in soft.columns:
                        soft.loc[task, label] = 1.0
            return state.evolve(labels=new_labels, reference=reference, soft_labels=soft).with_changes(changes)

        reference = state.reference
        if reference is None:
            reference = majority_vote(state.annotations, state.labels_set, state.positive_label, "positive")
        annotations = units.copy()
        annotations["label"] = pd.Series(after_values, index=units.index).infer_objects()
        changes = change_rows(
            tasks[flip], self.name, before_values[flip], after_values[flip], f"{kind} noise on judgements" + (f" of rater(s) {', '.join(map(str, p.workers))}" if p.workers else ""),
            units["worker"].to_numpy()[flip],
        )
        return state.evolve(annotations=annotations, reference=reference).with_changes(changes)

    def _eligible(self, state: LabelState, tasks: np.ndarray, units: pd.DataFrame | pd.Series) -> np.ndarray:
        """Units whose item is in the requested slice and, for judgements, whose rater is selected."""
        selected = np.ones(len(tasks), dtype=bool)
        if self.params.workers is not None:
            selected = units["worker"].isin(self.params.workers).to_numpy()
            if not selected.any():
                raters = sorted(map(str, pd.unique(units["worker"])))
                shown = ", ".join(raters[:10]) + (f", ... ({len(raters)} in all)" if len(raters) > 10 else "")
                raise ValueError(
                    f"noise.workers: no judgement by rater(s) {list(self.params.workers)}; raters: {shown}"
                )
        if not self.params.slice:
            return selected
        items = state.items.set_index("task")
        keep = pd.Series(True, index=items.index)
        for column, values in self.params.slice.items():
            if column not in items.columns:
                raise ValueError(
                    f"noise.slice: column '{column}' is not an item column; "
                    f"found: {', '.join(sorted(map(str, items.columns)))}"
                )
            keep &= items[column].isin(values)
        return selected & keep.reindex(tasks).fillna(False).to_numpy(dtype=bool)

    @staticmethod
    def _flip_probabilities(
        current: np.ndarray, eligible: np.ndarray, weight: np.ndarray | None, row_mass: np.ndarray
    ) -> tuple[np.ndarray, bool]:
        """Per-unit flip probability: the class row's mass ``q_c``, or water-filled instance weights
        with mean ``q_c`` over each class's eligible units; 0 outside the slice."""
        if weight is None:  # uniform: exactly q_c, as before instance weights existed
            return np.where(eligible, row_mass[current], 0.0), False
        probability = np.zeros(len(current))
        saturated = False
        for c, q in enumerate(row_mass):
            members = eligible & (current == c)
            probability[members], class_saturated = flip_probabilities(weight[members], float(q))
            saturated |= class_saturated
        return probability, saturated

    def _instance_weights(self, state: LabelState, tasks: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """Per-unit instance weight (any scale; only ratios within a class matter), None for uniform."""
        if self.params.instance == "none":
            return None
        if self.params.instance == "disagreement":
            counts = vote_counts(state.annotations, state.labels_set)
            raw = 1 - counts.max(axis=1) / counts.sum(axis=1).clip(lower=1)
        else:
            from smo_impact.treatments.oof import out_of_fold_proba

            labels = state.labels
            if labels is None:
                labels = majority_vote(state.annotations, state.labels_set, state.positive_label, "positive")
            proba = out_of_fold_proba(state, labels, rng)
            raw = pd.Series(1 - proba.max(axis=1), index=labels.index)
        return raw.reindex(tasks).fillna(0.0).to_numpy(dtype=float)
