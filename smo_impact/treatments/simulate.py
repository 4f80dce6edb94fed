"""Simulated rater pools: "what if our pool looked like this?"

Given reference labels (the state's training labels when an earlier step produced them, else the
majority vote of the real judgements, ties to the positive label), replace the real judgements by
judgements from a pool of simulated raters, each with its own confusion matrix. A following
``aggregate`` step turns them back into training labels; its change record lists the items whose
label now differs from the reference.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from smo_impact.treatments.aggregate import majority_vote
from smo_impact.treatments.base import LabelState, TreatmentParams


class SliceBias(BaseModel):
    """Extra false-flag probability on items of one slice (e.g. over-flagging one target group)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = Field(description="Items column, e.g. domain or target.")
    values: list[Any] = Field(description="Slice values the bias applies to.")
    false_positive: float = Field(0.2, ge=0.0, le=1.0, description="Added P(flag | benign) on the slice.")


class SimulatePool:
    """Generate judgements from simulated raters with known confusion matrices (binary labels).

    Each rater is a spammer with probability ``spammer_fraction`` (answering uniformly at random,
    or always one class, per ``spammer``); otherwise their accuracy is drawn from
    N(``accuracy``, ``accuracy_sd``) clipped to [0.5, 1], and their errors split between false
    flags and misses by ``bias`` (+1: all errors are false flags, -1: all are misses). ``drift``
    changes accuracy linearly over the rater's judgements in task order (e.g. -0.1: 10 points
    worse by the end: fatigue); ``slice_bias`` adds false flags on one slice. Every item gets
    ``per_item`` judgements from distinct raters.

    Attributes after ``apply``: ``raters_`` (one row per simulated rater with its type and
    parameters), ``confusions_`` (realised per-rater confusion counts and rates, logged as the
    ``simulated_confusions`` artifact).

    Metrics: ``treatment/sim_raters``, ``treatment/sim_spammers``, ``treatment/sim_judgements``,
    ``treatment/sim_judgement_accuracy``, ``treatment/sim_realized_fpr`` / ``fnr``, and
    ``treatment/cost`` when ``cost_per_judgement`` is set.
    """

    name: ClassVar[str] = "simulate_pool"

    class Params(TreatmentParams):
        n_raters: int = Field(50, ge=1, description="Raters in the simulated pool.")
        per_item: int = Field(3, ge=1, description="Judgements per item (distinct raters).")
        accuracy: float = Field(0.85, ge=0.5, le=1.0, description="Mean accuracy of honest raters.")
        accuracy_sd: float = Field(0.05, ge=0.0, le=0.5, description="Spread of accuracy across raters.")
        bias: float = Field(0.0, ge=-1.0, le=1.0, description="+1 errors are all false flags, -1 all misses.")
        spammer_fraction: float = Field(0.0, ge=0.0, le=1.0, description="Share of raters who are spammers.")
        spammer: Literal["random", "always_positive", "always_negative"] = Field(
            "random", description="How spammers answer."
        )
        slice_bias: SliceBias | None = None
        drift: float = Field(0.0, ge=-0.5, le=0.5, description="Accuracy change from first to last judgement.")
        cost_per_judgement: float = Field(0.0, ge=0.0, description="Cost of one simulated judgement.")

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        p = self.params
        truth = state.labels
        if truth is None:
            truth = majority_vote(state.annotations, state.labels_set, state.positive_label, "positive")
        truth = truth.sort_index()
        if len(state.labels_set) != 2:
            raise ValueError(f"simulate_pool needs a binary label set, got {list(state.labels_set)}")
        if p.per_item > p.n_raters:
            raise ValueError(f"simulate_pool per_item={p.per_item} exceeds n_raters={p.n_raters}")
        neg, pos = [lab for lab in state.labels_set if lab != state.positive_label][0], state.positive_label
        raters = self._draw_raters(rng)

        n_items = len(truth)
        # per_item distinct raters per item: the first per_item of a random permutation.
        keys = rng.random((n_items, p.n_raters))
        assigned = np.argsort(keys, axis=1)[:, : p.per_item]
        task_idx = np.repeat(np.arange(n_items), p.per_item)
        rater_idx = assigned.ravel()
        is_pos = (truth.to_numpy() == pos)[task_idx]
        # Time runs with task order: position in [0, 1] of each judgement.
        t = task_idx / max(n_items - 1, 1)
        acc = np.clip(raters["accuracy"].to_numpy()[rater_idx] + p.drift * t, 0.0, 1.0)
        err = 1 - acc
        fpr = np.clip(err * (1 + p.bias), 0, 1)
        fnr = np.clip(err * (1 - p.bias), 0, 1)
        if p.slice_bias is not None:
            sb = p.slice_bias
            items = state.items.set_index("task")
            if sb.column not in items.columns:
                raise ValueError(
                    f"simulate_pool.slice_bias: column '{sb.column}' is not an item column; "
                    f"found: {', '.join(sorted(map(str, items.columns)))}"
                )
            in_slice = items[sb.column].isin(sb.values).reindex(truth.index).fillna(False).to_numpy(dtype=bool)
            fpr = np.clip(fpr + sb.false_positive * in_slice[task_idx], 0, 1)
        u = rng.random(len(task_idx))
        says_pos = np.where(is_pos, u >= fnr, u < fpr)
        spam = raters["type"].to_numpy()[rater_idx] == "spammer"
        if p.spammer == "random":
            says_pos = np.where(spam, rng.random(len(task_idx)) < 0.5, says_pos)
        else:
            says_pos = np.where(spam, p.spammer == "always_positive", says_pos)

        worker_names = raters["worker"].to_numpy()
        annotations = pd.DataFrame(
            {
                "task": truth.index.to_numpy()[task_idx],
                "worker": worker_names[rater_idx],
                "label": np.where(says_pos, pos, neg),
                "timestamp": task_idx,
            }
        ).infer_objects()
        self.raters_ = raters
        planted = raters.set_index("worker").rename(columns={"type": "planted_type", "accuracy": "planted_accuracy"})
        self.confusions_ = planted.join(self._confusions(annotations, truth, pos, worker_names))
        correct = (annotations["label"].to_numpy() == truth.to_numpy()[task_idx])
        self.metrics_ = {
            "treatment/sim_raters": float(p.n_raters),
            "treatment/sim_spammers": float((raters["type"] == "spammer").sum()),
            "treatment/sim_judgements": float(len(annotations)),
            "treatment/sim_judgement_accuracy": float(correct.mean()),
            "treatment/sim_realized_fpr": float(says_pos[~is_pos].mean()) if (~is_pos).any() else 0.0,
            "treatment/sim_realized_fnr": float((~says_pos[is_pos]).mean()) if is_pos.any() else 0.0,
        }
        if p.cost_per_judgement > 0:  # no cost model given: report none rather than a cost of 0
            self.metrics_["treatment/cost"] = float(len(annotations) * p.cost_per_judgement)
        self.artifacts_ = {"simulated_confusions": self.confusions_}
        workers = raters.copy()
        return state.evolve(annotations=annotations, labels=None, soft_labels=None, reference=truth, workers=workers)

    def _draw_raters(self, rng: np.random.Generator) -> pd.DataFrame:
        p = self.params
        n_spam = int(round(p.spammer_fraction * p.n_raters))
        types = np.array(["spammer"] * n_spam + ["honest"] * (p.n_raters - n_spam), dtype=object)
        rng.shuffle(types)
        accuracy = np.clip(rng.normal(p.accuracy, p.accuracy_sd, p.n_raters), 0.5, 1.0)
        accuracy = np.where(types == "spammer", np.nan, accuracy)
        width = len(str(p.n_raters - 1))
        return pd.DataFrame(
            {"worker": [f"sim{i:0{width}d}" for i in range(p.n_raters)], "type": types, "accuracy": accuracy}
        )

    @staticmethod
    def _confusions(annotations: pd.DataFrame, truth: pd.Series, pos: Any, workers: np.ndarray) -> pd.DataFrame:
        """Realised per-rater counts (tp, fp, tn, fn) and rates (fpr, fnr, accuracy)."""
        true_pos = annotations["task"].map(truth).to_numpy() == pos
        said_pos = annotations["label"].to_numpy() == pos
        frame = pd.DataFrame(
            {
                "worker": annotations["worker"].to_numpy(),
                "tp": true_pos & said_pos,
                "fp": ~true_pos & said_pos,
                "tn": ~true_pos & ~said_pos,
                "fn": true_pos & ~said_pos,
            }
        )
        counts = frame.groupby("worker")[["tp", "fp", "tn", "fn"]].sum().reindex(workers, fill_value=0)
        counts.index.name = "worker"
        out = counts.astype(int)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["fpr"] = counts["fp"] / (counts["fp"] + counts["tn"])
            out["fnr"] = counts["fn"] / (counts["fn"] + counts["tp"])
            out["accuracy"] = (counts["tp"] + counts["tn"]) / counts.sum(axis=1)
        return out
