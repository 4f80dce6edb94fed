"""Acquisition: start from a cheap design, then buy more of the real judgements, in rounds, where a
policy says they help most.

Simulated honestly on multi-rater data: every judgement bought exists; the design just holds it
back until a policy spends budget on it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from smo_impact.data.schema import vote_counts
from smo_impact.treatments.aggregate import majority_vote
from smo_impact.treatments.base import LabelState, TreatmentParams, keep_tasks, removal_rows, require_judgements
from smo_impact.treatments.costs import DEFAULT_COSTS, judgement_costs

POLICIES = ("disagreement", "label_quality", "new_items", "random", "uncertainty")
MODEL_POLICIES = ("label_quality", "uncertainty")  # rank items by a cheap model retrained each round
EPS = 1e-9  # float slack when adding up costs against the budget


class Acquire:
    """Buy extra real judgements in rounds from the ones held back by a cheap start design.

    Start design: a seeded share ``start_items`` of the items, each with ``start`` of its real
    judgements (a seeded random queue per item; the first ``start`` are the start design, the rest
    are held back in queue order). Then ``rounds`` rounds each spend an equal share of what is left
    of ``budget`` (cost units, priced by the experiment's ``costs``; 1 per judgement without), so
    what one round cannot spend carries over. A round ranks the candidates by ``policy`` and buys
    down the ranking while the round's share lasts (a candidate it cannot afford is skipped):

    * ``random``: labelled items with a judgement left, in a seeded random order; one more judgement each.
    * ``disagreement``: the same items, most split current votes first (1 - the top label's vote
      share); ties in a seeded random order. Items with one vote have no split.
    * ``uncertainty``: the same items, the current model's P(harmful) nearest ``threshold`` first;
      the model is a logistic regression on the run's cached features, fit out-of-fold (``folds``)
      on the current majority labels each round, so no item is scored by a model that saw its label.
    * ``label_quality``: the same items, lowest ActiveLab score first (cleanlab's
      ``get_active_learning_scores`` on the current judgements and the same out-of-fold model).
    * ``new_items``: items not in the start design, in a seeded random order, ``start`` judgements each.

    Within a round an item gets at most one more judgement. Runs before ``aggregate``; the change
    record has one row per judgement never bought. ``rounds_`` is the number of buying rounds
    (each adds ``costs.per_round``).

    Metrics: ``treatment/acquire_spend``, ``treatment/acquire_judgements`` (bought),
    ``treatment/acquire_items`` (items that got any), ``treatment/acquire_agreement`` (share of the
    training items whose majority equals the majority of all their real judgements),
    ``treatment/cost`` (start design + spend + round costs); per round (step = round, 0 = start):
    ``acquire/items_bought``, ``acquire/judgements_used``, ``acquire/cost``, ``acquire/agreement``;
    the same as the table artifact ``acquire_rounds``.
    """

    name: ClassVar[str] = "acquire"
    requires_judgements: ClassVar[bool] = True  # checked at validation: comes before 'aggregate'

    class Params(TreatmentParams):
        budget: float = Field(gt=0.0, description="Extra spend after the start design, in cost units.")
        policy: Literal["random", "disagreement", "uncertainty", "label_quality", "new_items"] = Field(
            description="Where the budget goes; see the class docstring."
        )
        start: int = Field(1, ge=1, description="Judgements per item in the start design.")
        start_items: float = Field(1.0, gt=0.0, le=1.0, description="Share of the items in the start design.")
        rounds: int = Field(5, ge=1, le=1000, description="Buying rounds; the budget is spread over them.")
        threshold: float = Field(0.5, gt=0.0, lt=1.0, description="uncertainty: the decision threshold on P(harmful).")
        folds: int = Field(3, ge=2, le=20, description="uncertainty, label_quality: folds of the out-of-fold model.")

    @staticmethod
    def preflight(params: Params) -> bool:
        """Cheap enough to try on the data before any run unless a model is fit each round."""
        return params.policy not in MODEL_POLICIES

    @staticmethod
    def config_problems(params: Params, config: Any, models: Any = None) -> list[str]:
        """Rules across the step and the rest of the config: a budget that buys no judgement at
        any price the config sets; a model policy with a model that has no cached features."""
        problems = []
        costs = config.costs or DEFAULT_COSTS
        prices = list(costs.pools.values()) if costs.pools else [costs.per_judgement]
        cheapest = min(prices) if prices else 0.0
        if params.budget < cheapest:
            problems.append(
                f"budget: {params.budget:g} is less than one judgement's cost ({cheapest:g}, the cheapest in "
                f"costs), so no judgement can be bought; raise acquire.budget to at least {cheapest:g}"
            )
        if params.policy == "new_items" and params.start_items >= 1.0:
            problems.append(
                "start_items: policy 'new_items' buys items outside the start design, but start_items is 1.0 (every "
                "item starts labelled); set acquire.start_items below 1, e.g. 0.5"
            )
        if params.policy in MODEL_POLICIES and models is not None and config.model.name in models:
            if not getattr(models.get(config.model.name), "cached_features", True):
                problems.append(
                    f"policy: '{params.policy}' ranks items with a cheap model retrained each round on the run's "
                    f"cached features, but model '{config.model.name}' trains on raw text and caches none; use a "
                    "features model (tfidf_logreg, embedding_logreg) or policy random, disagreement or new_items"
                )
        return problems

    def __init__(self, params: Params) -> None:
        self.params = params

    def check(self, state: LabelState) -> None:
        """What ``apply`` would refuse before it fits anything: a pool without a price, a budget
        below the cheapest judgement (for the runner's preflight of model policies)."""
        price = judgement_costs(state.annotations, state.workers, state.costs or DEFAULT_COSTS, state.items)
        if len(price) and self.params.budget + EPS < float(price.min()):
            raise ValueError(
                f"acquire.budget {self.params.budget:g} is less than the cheapest judgement ({float(price.min()):g}); "
                f"raise acquire.budget to at least {float(price.min()):g}"
            )

    def apply(self, state: LabelState, rng: np.random.Generator) -> LabelState:
        require_judgements(state, self.name)
        p = self.params
        ann = state.annotations.reset_index(drop=True)
        price = judgement_costs(ann, state.workers, state.costs or DEFAULT_COSTS, state.items).to_numpy()
        full = majority_vote(ann, state.labels_set, state.positive_label, "positive")

        # The design: a seeded queue of judgements per item, and which items start labelled.
        queue = pd.Series(rng.random(len(ann))).groupby(ann["task"].to_numpy()).rank(method="first").to_numpy() - 1
        tasks = pd.Index(np.sort(ann["task"].unique()))
        n_start = max(1, int(round(p.start_items * len(tasks))))
        started = np.zeros(len(tasks), dtype=bool)
        started[rng.permutation(len(tasks))[:n_start]] = True
        size = ann.groupby("task").size().reindex(tasks).to_numpy()
        # Judgements in the design per item: a prefix of its queue.
        held = pd.Series(np.where(started, np.minimum(p.start, size), 0), index=tasks)
        position = pd.Series(np.arange(len(ann)))
        # The judgement at queue position q of each task, for pricing the next purchase.
        by_slot = pd.Series(position.to_numpy(), index=pd.MultiIndex.from_arrays([ann["task"].to_numpy(), queue.astype(int)]))

        def in_design() -> np.ndarray:
            return queue < held.reindex(ann["task"]).to_numpy()

        held_back = ~in_design()
        if not held_back.any():
            raise ValueError(
                f"acquire: the start design (start={p.start}) already holds every judgement; nothing is left to buy; "
                "lower acquire.start"
            )
        cheapest = float(price[held_back].min())
        if p.budget + EPS < cheapest:
            raise ValueError(
                f"acquire.budget {p.budget:g} is less than the cheapest held-back judgement ({cheapest:g}); "
                f"raise acquire.budget to at least {cheapest:g}"
            )
        self.start_ = ann.loc[in_design()].copy()  # the start design, before any purchase
        start_cost = float(price[in_design()].sum())
        rows = [self._round_row(0, ann, in_design(), full, state, 0, 0, 0.0, start_cost)]
        spent, bought_items = 0.0, set()
        self.purchases_ = []  # (round, task) per judgement bought, in order
        for r in range(1, p.rounds + 1):
            share = (p.budget - spent) / (p.rounds - r + 1)
            candidates, unit = self._candidates(ann, tasks, held, size, by_slot, price)
            order = self._rank(candidates, ann, in_design(), state, rng)
            round_spent, n_items, n_judgements = 0.0, 0, 0
            for task in order:
                cost = unit[task]
                if round_spent + cost > share + EPS:
                    continue
                round_spent += cost
                step = min(p.start, int(size[tasks.get_loc(task)])) if p.policy == "new_items" else 1
                held[task] += step
                n_items += 1
                n_judgements += step
                bought_items.add(task)
                self.purchases_.extend([(r, task)] * step)
            spent += round_spent
            rows.append(self._round_row(r, ann, in_design(), full, state, n_items, n_judgements, spent, start_cost))
        keep = in_design()
        self.rounds_ = p.rounds
        table = pd.DataFrame(rows)
        per_round = (state.costs or DEFAULT_COSTS).per_round
        table["cost"] = table["cost"] + (table["round"] + 1) * per_round
        self.artifacts_ = {"acquire_rounds": table}
        self.curves_ = {
            f"acquire/{name}": list(zip(table["round"].astype(int).tolist(), table[name].astype(float).tolist()))
            for name in ("items_bought", "judgements_used", "cost", "agreement")
        }
        last = table.iloc[-1]
        self.metrics_ = {
            "treatment/acquire_spend": float(spent),
            "treatment/acquire_judgements": float(len(self.purchases_)),
            "treatment/acquire_items": float(len(bought_items)),
            "treatment/acquire_agreement": float(last["agreement"]),
            "treatment/cost": float(last["cost"]),
        }
        kept = ann.loc[keep]
        changes = removal_rows(ann.loc[~keep], self.name, f"acquire policy={p.policy}: held back, not bought")
        return keep_tasks(state, kept["task"].unique(), annotations=kept).with_changes(changes)

    def _candidates(
        self, ann: pd.DataFrame, tasks: pd.Index, held: pd.Series, size: np.ndarray, by_slot: pd.Series, price: np.ndarray
    ) -> tuple[pd.Index, pd.Series]:
        """Items a purchase can go to this round, and what one purchase of each costs."""
        p = self.params
        h = held.to_numpy()
        if p.policy == "new_items":
            open_ = tasks[(h == 0) & (size >= 1)]
            unit = {t: float(sum(price[by_slot[(t, q)]] for q in range(min(p.start, n))))
                    for t, n in zip(open_, size[tasks.get_indexer(open_)])}
        else:
            open_ = tasks[(h > 0) & (h < size)]
            unit = {t: float(price[by_slot[(t, q)]]) for t, q in zip(open_, h[tasks.get_indexer(open_)])}
        return open_, pd.Series(unit, dtype=float)

    def _rank(
        self, candidates: pd.Index, ann: pd.DataFrame, design: np.ndarray, state: LabelState, rng: np.random.Generator
    ) -> list:
        """Candidates in buying order: highest policy score first, ties in a seeded random order."""
        tie = rng.random(len(candidates))  # drawn every round, whatever the policy: same stream for all
        if len(candidates) == 0:
            return []
        p = self.params
        if p.policy in ("random", "new_items"):
            score = np.zeros(len(candidates))
        else:
            current = ann.loc[design]
            if p.policy == "disagreement":
                counts = vote_counts(current, state.labels_set).reindex(candidates).to_numpy()
                score = 1.0 - counts.max(axis=1) / counts.sum(axis=1)
            else:
                score = self._model_scores(current, candidates, state, rng)
        return list(candidates[np.lexsort((tie, -score))])

    def _model_scores(
        self, current: pd.DataFrame, candidates: pd.Index, state: LabelState, rng: np.random.Generator
    ) -> np.ndarray:
        """uncertainty: -|P(harmful) - threshold|; label_quality: -ActiveLab score (higher = buy first)."""
        from smo_impact.treatments.oof import out_of_fold_proba

        p = self.params
        labels = majority_vote(current, state.labels_set, state.positive_label, "positive")
        proba = out_of_fold_proba(state, labels, rng, folds=p.folds)  # rows in labels' (sorted task) order
        rows = labels.index.get_indexer(candidates)
        if p.policy == "uncertainty":
            harmful = [list(state.labels_set).index(h) for h in state.harmful]
            return -np.abs(proba[rows][:, harmful].sum(axis=1) - p.threshold)
        from cleanlab.multiannotator import get_active_learning_scores

        codes = pd.Index(list(state.labels_set)).get_indexer(current["label"].to_numpy())
        wide = (
            pd.DataFrame({"task": current["task"].to_numpy(), "worker": current["worker"].to_numpy(), "code": codes})
            .pivot(index="task", columns="worker", values="code")
            .reindex(labels.index)
        )
        # cleanlab prints (and warns) "annotator ... did not annotate any examples that overlap": expected
        # while most items have one vote; it would flood the terminal once per round.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            scores, _ = get_active_learning_scores(wide, proba)
        return -np.asarray(scores)[rows]

    def _round_row(
        self, r: int, ann: pd.DataFrame, design: np.ndarray, full: pd.Series, state: LabelState,
        items_bought: int, judgements_bought: int, spent: float, start_cost: float,
    ) -> dict[str, float]:
        current = ann.loc[design]
        labels = majority_vote(current, state.labels_set, state.positive_label, "positive")
        agreement = float(labels.eq(full.reindex(labels.index)).mean()) if len(labels) else 0.0
        return {
            "round": r, "items_bought": items_bought, "judgements_bought": judgements_bought,
            "judgements_used": int(design.sum()), "items_labelled": int(len(labels)), "spend": spent,
            "cost": start_cost + spent, "agreement": agreement,
        }
