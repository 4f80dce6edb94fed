"""Aggregation: turn several judgements per item into one training label.

Majority vote is ours (explicit tie rules); Dawid-Skene, one-coin Dawid-Skene, GLAD, MACE and Wawa
come from crowd-kit, run inside :func:`isolated_global_rng` because crowd-kit seeds and draws from
numpy's global generator.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from smo_impact.data.schema import isin, vote_counts
from smo_impact.treatments.base import LabelState, TreatmentParams, change_rows, require_judgements

TIE_RULES = ("positive", "negative", "random", "drop")


def majority_vote(
    annotations: pd.DataFrame,
    labels_set: tuple,
    positive_label: object,
    tie: str = "positive",
    rng: np.random.Generator | None = None,
) -> pd.Series:
    """Majority label per task.

    Ties: ``positive`` gives the positive label when it is among the tied labels, else the tied
    label latest in the declared order (labels are declared from benign to harmful); ``negative``
    the earliest tied label other than the positive one; ``random`` a seeded uniform choice among
    the tied labels; ``drop`` leaves the item out.
    """
    counts = vote_counts(annotations, labels_set)
    values = counts.to_numpy()
    is_top = values == values.max(axis=1, keepdims=True)
    n_top = is_top.sum(axis=1)
    labels = np.asarray(labels_set, dtype=object)
    pos_index = list(labels_set).index(positive_label)

    # Preference order among tied labels, as a score per column: highest wins.
    if tie == "positive":
        preference = np.arange(len(labels_set), dtype=float)
        preference[pos_index] = len(labels_set)
    elif tie == "negative":
        preference = -np.arange(len(labels_set), dtype=float)
        preference[pos_index] = -len(labels_set)
    elif tie == "random":
        if rng is None:
            raise ValueError("tie='random' needs a random generator")
        preference = None
    elif tie == "drop":
        preference = np.zeros(len(labels_set))
    else:
        raise ValueError(f"tie must be one of {TIE_RULES}, got {tie!r}")

    if preference is None:
        noise = rng.random(values.shape)
        choice = np.where(is_top, noise, -1.0).argmax(axis=1)
    else:
        choice = np.where(is_top, preference[None, :], -np.inf).argmax(axis=1)
    result = pd.Series(labels[choice], index=counts.index, name="label")
    if tie == "drop":
        result = result[n_top == 1]
    return result.infer_objects()


METHODS = ("majority", "dawid_skene", "one_coin_ds", "glad", "mace", "wawa")


@contextmanager
def isolated_global_rng(rng: np.random.Generator) -> Iterator[None]:
    """Seed numpy's global RNG from ``rng`` for the block, then restore the caller's state.

    crowd-kit calls ``np.random.seed``/``np.random.*`` inside ``fit``; this makes those draws a
    function of the run seed and leaves global state exactly as it was.
    """
    saved = np.random.get_state()
    np.random.seed(int(rng.integers(0, 2**32 - 1)))
    try:
        yield
    finally:
        np.random.set_state(saved)


def crowdkit_aggregate(
    annotations: pd.DataFrame, method: str, n_iter: int, rng: np.random.Generator
) -> tuple[pd.Series, pd.DataFrame, pd.Series]:
    """Fit one crowd-kit aggregator.

    Returns:
        (labels per task, posterior task x label probabilities, estimated skill per worker).
        Skill is method-specific: Dawid-Skene the mean diagonal of the rater's confusion matrix,
        one-coin DS and Wawa the probability of a correct answer, GLAD the ability alpha, MACE the
        posterior probability that the rater is not spamming.
    """
    if method == "dawid_skene":
        # Same model as crowd-kit's DawidSkene (tests compare them), vectorised: crowd-kit needs
        # ~7 s per EM iteration per million judgements, this ~0.1 s. Deterministic, no RNG.
        from smo_impact.treatments.dawid_skene import dawid_skene

        fit = dawid_skene(annotations, tuple(sorted(pd.unique(annotations["label"]))), n_iter=n_iter)
        return fit.labels, fit.probas, fit.skills

    from crowdkit.aggregation import GLAD, MACE, DawidSkene, MajorityVote, OneCoinDawidSkene, Wawa

    data = annotations[["task", "worker", "label"]].copy()
    data["task"] = data["task"].astype(object)
    data["worker"] = data["worker"].astype(object)
    with isolated_global_rng(rng), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # crowd-kit's pandas deprecation warnings, once per EM step
        if method == "dawid_skene":
            model: Any = DawidSkene(n_iter=n_iter).fit(data)
            # errors_: P(observed | true), index (worker, observed), columns true; a label a
            # worker never gave has no row, i.e. probability 0 (always-one-class spammers).
            classes = list(model.errors_.columns)
            full = model.errors_.reindex(
                pd.MultiIndex.from_product([pd.unique(data["worker"]), classes]), fill_value=0.0
            )
            correct = np.stack([full.xs(c, level=1)[c].to_numpy() for c in classes], axis=1)
            skills = pd.Series(correct.mean(axis=1), index=full.index.get_level_values(0).unique())
        elif method == "one_coin_ds":
            model = OneCoinDawidSkene(n_iter=n_iter).fit(data)
            skills = model.skills_
        elif method == "glad":
            model = GLAD(n_iter=n_iter, silent=True).fit(data)
            skills = model.alphas_
        elif method == "mace":
            model = MACE(n_restarts=3, n_iter=n_iter, random_state=int(rng.integers(0, 2**31 - 1))).fit(data)
            # spamming_ columns: [P(spamming), P(not spamming)] per worker, in first-seen order.
            skills = pd.Series(model.spamming_[:, 1], index=pd.unique(data["worker"]))
        elif method == "wawa":
            skills = Wawa().fit(data).skills_
            # Wawa.predict trips over scikit-learn>=1.6's check_is_fitted; its own second stage
            # is exactly this skill-weighted majority vote.
            model = MajorityVote().fit(data, skills=skills)
        else:
            raise ValueError(f"unknown crowd-kit method {method!r}; choose from {sorted(METHODS[1:])}")
    probas = model.probas_
    labels = model.labels_.rename("label")
    labels.index.name = "task"
    skills = skills.rename("skill")
    skills.index.name = "worker"
    return labels, probas, skills


class Aggregate:
    """Aggregate judgements into training labels.

    ``majority`` is a vote with a stated tie rule; ``dawid_skene``, ``one_coin_ds``, ``glad``,
    ``mace`` and ``wawa`` are crowd-kit's aggregators, which also estimate each rater's skill
    (``skills_``, logged as the ``aggregate_skills`` artifact for the quality audit). With
    ``soft: true`` the state also carries soft labels (the vote distribution for ``majority``, the
    posterior for the others) for models that can train on them.

    The change record lists the items whose label differs from a plain majority vote (ties to the
    positive label) of the same judgements, i.e. what the chosen method changed; when the state
    carries reference labels (judgements simulated or noised by an earlier step), it lists the
    items whose label differs from the reference instead (``treatment/aggregate_vs_reference``).

    Metrics: ``treatment/aggregate_ties`` (items whose top labels tied),
    ``treatment/aggregate_ties_broken/<rule>`` (those settled by the tie rule, or by the crowd-kit
    method named) with ``treatment/aggregate_ties_to/<label>`` (the labels they got),
    ``treatment/aggregate_dropped`` (items left out by ``tie: drop``), and
    ``treatment/aggregate_vs_majority`` (labels that differ from plain majority vote).
    """

    name: ClassVar[str] = "aggregate"
    produces_labels: ClassVar[bool] = True  # later steps may work on aggregated labels

    @staticmethod
    def preflight(params: Aggregate.Params) -> bool:
        """Majority vote is cheap enough for the runner to try on the data before any run."""
        return params.method == "majority"

    class Params(TreatmentParams):
        method: Literal["majority", "dawid_skene", "one_coin_ds", "glad", "mace", "wawa"] = Field(
            "majority", description="Aggregation method (all but majority from crowd-kit)."
        )
        tie: Literal["positive", "negative", "random", "drop"] = Field(
            "positive", description="What a tied majority vote becomes; positive = flag when in doubt."
        )
        soft: bool = Field(False, description="Also carry soft labels (vote distribution / posterior).")
        n_iter: int = Field(50, ge=1, le=10_000, description="Max EM iterations for crowd-kit methods.")

    def __init__(self, params: Params) -> None:
        self.params = params

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        require_judgements(state, self.name)
        p = self.params
        counts = vote_counts(state.annotations, state.labels_set)
        values = counts.to_numpy()
        tied = (values == values.max(axis=1, keepdims=True)).sum(axis=1) > 1
        ties = int(tied.sum())
        plain = majority_vote(state.annotations, state.labels_set, state.positive_label, "positive")
        soft: pd.DataFrame | None = None
        if p.method == "majority":
            labels = majority_vote(state.annotations, state.labels_set, state.positive_label, p.tie, rng)
            self.skills_ = None
            if p.soft:
                soft = counts.div(counts.sum(axis=1), axis=0)
        else:
            labels, probas, skills = crowdkit_aggregate(state.annotations, p.method, p.n_iter, rng)
            labels = labels.reindex(counts.index).infer_objects()
            self.skills_ = skills.sort_index()
            if p.soft:
                soft = probas.reindex(index=counts.index, columns=list(state.labels_set), fill_value=0.0).astype(float)
        dropped = int(state.items["task"].nunique() - len(labels))
        self.labels_ = labels
        self.metrics_ = {
            "treatment/aggregate_ties": float(ties),
            "treatment/aggregate_dropped": float(dropped),
        }
        if not (p.method == "majority" and p.tie == "drop"):
            # How the tied items were settled (the tie rule, or the model) and the labels they got.
            self.metrics_[f"treatment/aggregate_ties_broken/{p.tie if p.method == 'majority' else p.method}"] = float(ties)
            settled = labels.reindex(counts.index[tied]).value_counts()
            for label in state.labels_set:
                self.metrics_[f"treatment/aggregate_ties_to/{label}"] = float(settled.get(label, 0))
        differs = labels.ne(plain.reindex(labels.index))
        self.metrics_["treatment/aggregate_vs_majority"] = float(differs.sum())
        if self.skills_ is not None and len(self.skills_):
            self.metrics_["treatment/aggregate_skill_mean"] = float(self.skills_.mean())
            self.artifacts_ = {"aggregate_skills": self.skills_.to_frame()}
        cause = f"aggregate method={p.method}" + (f" tie={p.tie}" if p.method == "majority" else "")
        baseline = plain
        if state.reference is not None:
            # Judgements were simulated or noised: what matters is the distance from the truth.
            baseline = state.reference.reindex(labels.index)
            cause += " vs reference labels (before simulation/noise)"
            differs = labels.ne(baseline)
            self.metrics_["treatment/aggregate_vs_reference"] = float(differs.sum())
        changed = labels.index[differs.to_numpy()]
        changes = change_rows(changed, self.name, baseline.reindex(changed).to_numpy(), labels.reindex(changed).to_numpy(), cause)
        kept = pd.Series(labels.index, dtype=object)
        items = state.items[isin(state.items["task"], kept)]
        annotations = state.annotations[isin(state.annotations["task"], kept)]
        if soft is not None:
            soft = soft.reindex(labels.index)
        return state.evolve(items=items, annotations=annotations, labels=labels, soft_labels=soft).with_changes(changes)
