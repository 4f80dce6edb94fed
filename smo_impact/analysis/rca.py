"""Root-cause attribution: which of a treatment's label changes caused its regression vs control?

For one treatment run (arm, grid point, seed) and the control run of the same seed:

1. re-apply both arms' treatments and retrain both models with the runner's own ``treat``,
   ``train`` and ``score`` (same seeds, params, soft labels and dev labels, so the same numbers as
   the logged runs);
2. group the treatment's change record (``task, step, label_before, label_after, cause``) by each
   requested dimension: ``step``, ``cause``, ``worker`` (where recorded) or an item slice column;
3. for each group, retrain the model on cached features with that group's changes reverted
   (each changed task gets back its label from before the group's earliest change) and score it;
4. rank groups by the share of the regression each reversion recovers; revert the top groups
   together to say what fraction of the regression they explain.

It also lists the top regressed test items with their nearest changed training items (cosine
similarity of the cached features). Limits: changes that removed an item (``label_after`` empty:
cleaning with ``drop``, budgets, rater pools) are not reverted, nor are a guideline's changes when
it redefined the label space (there is no label of the new space to go back to); a model without cached features
(``finetune``) is too costly to retrain per group: ``attribute_run`` then says so and falls back
to ``embedding_logreg`` on the same encoder's frozen features (``fallback_`` holds the note).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.errors import ConfigError
from smo_impact.runner.plan import RunSpec
from smo_impact.runner.run import RunContext, score, train, treat
from smo_impact.treatments import LabelState

CHANGE_DIMENSIONS = ("step", "cause", "worker")
METRICS = ("macro_f1", "recall", "f1", "accuracy")
TOO_COSTLY = ("finetune",)  # models that train the encoder: hours per group on a CPU


class RootCauseAttribution:
    """Ranks groups of a treatment run's label changes by how much regression their reversion recovers.

    Args:
        by: Dimensions to group changes by: ``step``, ``cause``, ``worker`` or an item column.
        metric: Outcome on the primary benchmark: ``macro_f1``, ``recall``, ``f1`` or ``accuracy``.
        top_k: Groups reverted together for :attr:`explained_`.
        max_groups: Largest groups (by number of changes) retrained per dimension.
        neighbours: Nearest changed training items listed per regressed test item.

    Attributes (after :meth:`fit`):
        ranking_: One row per group: dimension, group, changes, score_reverted, recovered, fraction.
        control_score_, treated_score_: The outcome of the control and treatment models.
        regression_: ``control_score_ - treated_score_`` (positive = the treatment regressed).
        explained_: Fraction of the regression recovered by reverting the ``top_k`` groups together.
        neighbours_: Regressed test items with their nearest changed training items.
        model_used_: The model retrained per group.
    """

    def __init__(
        self, by: Sequence[str] = ("step", "cause"), metric: str = "macro_f1", top_k: int = 3,
        max_groups: int = 20, neighbours: int = 3,
    ) -> None:
        if metric not in METRICS:
            raise ConfigError(f"rca metric must be one of {', '.join(METRICS)}; got '{metric}'")
        self.by = tuple(by)
        self.metric = metric
        self.top_k = top_k
        self.max_groups = max_groups
        self.neighbours = neighbours

    def fit(self, treated: RunSpec, control: RunSpec, ctx: RunContext) -> RootCauseAttribution:
        """Attribute ``treated``'s regression vs ``control`` (both planned from the same config)."""
        unknown = [d for d in self.by if d not in CHANGE_DIMENSIONS and d not in ctx.dataset.items.columns]
        if unknown:
            raise ConfigError(
                f"rca cannot group changes by {unknown}; use {', '.join(CHANGE_DIMENSIONS)} or an item column "
                f"({', '.join(sorted(c for c in ctx.dataset.items.columns if c not in ('task', 'text')))})"
            )
        if treated.model.name in TOO_COSTLY:
            raise ConfigError(
                f"rca retrains the model once per group of changes; model '{treated.model.name}' is too costly "
                "for that: run the attribution with a model on cached features of the same texts "
                "(--set model.name=embedding_logreg or tfidf_logreg)"
            )
        self.model_used_ = treated.model.name
        # Scored exactly as the logged runs were (runner.run's treat/train/score), on the primary
        # benchmark only and without bootstrap intervals, which do not change the metric itself.
        ctx = replace(ctx, benchmarks=ctx.benchmarks[:1], bootstrap=0)
        control_state = treat(control, ctx).state
        state = treat(treated, ctx).state
        labels = state.labels
        changes = _revertible(state, ctx, self.by)
        bench = ctx.benchmarks[0]
        self.control_score_, control_pred = self._score(control, control_state, ctx)
        self.treated_score_, treated_pred = self._score(treated, state, ctx)
        self.regression_ = self.control_score_ - self.treated_score_

        rows = []
        for dimension in self.by:
            sizes = changes[dimension].value_counts().head(self.max_groups)
            for group, n in sizes.items():
                reverted = _revert(state, changes[changes[dimension] == group])
                value, _ = self._score(treated, reverted, ctx)
                recovered = value - self.treated_score_
                rows.append({
                    "dimension": dimension, "group": str(group), "changes": int(n), "score_reverted": value,
                    "recovered": recovered, "fraction": recovered / self.regression_ if self.regression_ else np.nan,
                })
        ranking = pd.DataFrame(rows, columns=["dimension", "group", "changes", "score_reverted", "recovered", "fraction"])
        self.ranking_ = ranking.sort_values("recovered", ascending=False, kind="stable").reset_index(drop=True)
        top = self.ranking_.head(self.top_k)
        mask = np.zeros(len(changes), dtype=bool)
        for row in top.itertuples():
            mask |= (changes[row.dimension].astype(str) == row.group).to_numpy()
        joint, _ = self._score(treated, _revert(state, changes[mask]), ctx)
        self.explained_ = (joint - self.treated_score_) / self.regression_ if self.regression_ else np.nan

        reference = np.asarray(bench.reference)
        regressed = bench.items.loc[(control_pred == reference) & (treated_pred != reference), ["task", "text"]]
        self.neighbours_ = _nearest_changed(regressed, changes, ctx, self.neighbours, treated)
        return self

    def _score(self, spec: RunSpec, state: LabelState, ctx: RunContext) -> tuple[float, np.ndarray]:
        """Train the run's model on ``state`` and score the primary benchmark, as the runner does."""
        model = train(spec, ctx, state)
        namespace = ctx.benchmarks[0].namespace
        result = score(spec, ctx, model)[namespace]
        return float(result.metrics[f"{namespace}/{self.metric}"]), result.predictions["predicted"].to_numpy()


def _revertible(state: LabelState, ctx: RunContext, by: Sequence[str]) -> pd.DataFrame:
    """Label changes of tasks still trained on, with the item columns used for grouping.

    A change made in another label space (before a guideline step that redefined the labels, e.g.
    a severity answer mapped to abusive/not) has no label of this space to go back to: left out.
    """
    changes = state.changes
    changes = changes[
        changes["task"].isin(state.labels.index) & changes["label_before"].notna() & changes["label_after"].notna()
    ]
    if tuple(state.labels_set) != tuple(ctx.dataset.labels):
        changes = changes[changes["step"] != "guideline"]
    changes = changes.reset_index(drop=True).copy()
    item_cols = [d for d in by if d not in CHANGE_DIMENSIONS]
    if item_cols:
        items = ctx.dataset.items.drop_duplicates("task").set_index("task")[item_cols]
        changes = changes.join(items, on="task")
    for dimension in by:
        if dimension not in changes.columns:  # e.g. no worker recorded by label-level steps
            changes[dimension] = "(not recorded)"
        changes[dimension] = changes[dimension].astype(str)
    return changes


def _revert(state: LabelState, group: pd.DataFrame) -> LabelState:
    """``state`` with each task of ``group`` set back to its label before the group's earliest change.

    A reverted task's soft label (if the arm trains on vote shares) becomes one-hot at that label:
    the vote share before the change is not recorded.
    """
    before = group.drop_duplicates("task", keep="first").set_index("task")["label_before"]
    labels = state.labels.copy()
    labels.loc[before.index] = before.astype(labels.dtype).to_numpy()
    soft = state.soft_labels
    if soft is not None and len(before):
        soft = soft.copy()
        rows = soft.index.intersection(before.index)
        soft.loc[rows] = 0.0
        for task in rows:
            if labels[task] in soft.columns:
                soft.loc[task, labels[task]] = 1.0
    return state.evolve(labels=labels, soft_labels=soft)


def _nearest_changed(
    regressed: pd.DataFrame, changes: pd.DataFrame, ctx: RunContext, k: int, spec: RunSpec
) -> pd.DataFrame:
    """For each regressed test item, the ``k`` changed training items most similar in feature space."""
    columns = ["task", "text", "neighbour", "neighbour_text", "similarity", "label_before", "label_after", "step"]
    changed = changes.drop_duplicates("task", keep="last")
    if regressed.empty or changed.empty:
        return pd.DataFrame(columns=columns)
    features = ctx.features_for(spec.model)
    a, b = _unit(features.rows(regressed["task"])), _unit(features.rows(changed["task"]))
    similarity = np.asarray((a @ b.T).todense() if hasattr(a, "todense") else a @ b.T)
    texts = ctx.dataset.items.drop_duplicates("task").set_index("task")["text"]
    rows = []
    for i, (task, text) in enumerate(zip(regressed["task"], regressed["text"])):
        for j in np.argsort(-similarity[i], kind="stable")[:k]:
            change = changed.iloc[j]
            rows.append((task, text, change["task"], texts.get(change["task"], ""), float(similarity[i, j]),
                         change["label_before"], change["label_after"], change["step"]))
    return pd.DataFrame(rows, columns=columns)


def _unit(matrix: Any) -> Any:
    from sklearn.preprocessing import normalize

    return normalize(matrix)


def attribute_run(
    config: Any, run_name: str, tracker: Any | None = None, dataset: Any | None = None, **options: Any
) -> tuple[RootCauseAttribution, str | None]:
    """Attribute the regression of the planned run ``run_name`` of ``config`` vs its seed's control.

    With a ``tracker``, the result is logged on the stored run of the same key (same spec and data):
    ``rca/ranking.csv``, ``rca/neighbours.parquet``, metrics ``rca/regression``, ``rca/explained``.
    Returns the fitted attribution and the id of the run it was logged on (None when not logged).

    Raises:
        ConfigError: when the config plans no run of that name, or it is a control run.
    """
    import difflib

    from smo_impact.config import ModelSpec
    from smo_impact.runner.experiment import prepare
    from smo_impact.runner.plan import plan_runs

    stored_config = config
    fallback = None
    if config.model.name in TOO_COSTLY:
        # Retraining a fine-tuned encoder once per group would take hours on a CPU: attribute with
        # the cheap model on the same encoder's frozen features, and say so.
        params = config.model.params
        cheap = {"encoder": params.get("encoder", "minilm"), "max_length": params.get("max_length", 128)}
        config = config.model_copy(update={"model": ModelSpec(name="embedding_logreg", params=cheap)})
        fallback = (
            f"model '{stored_config.model.name}' is too costly to retrain per group; attributed with "
            f"embedding_logreg on the frozen '{cheap['encoder']}' encoder (max_length {cheap['max_length']})"
        )
    data, ctx, specs, _ = prepare(config, dataset=dataset)
    names = [s.name for s in specs if not s.is_control]
    spec = next((s for s in specs if s.name == run_name), None)
    if spec is None or spec.is_control:
        close = difflib.get_close_matches(run_name, names, n=1)
        hint = f"Did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"no treatment run '{run_name}' in experiment '{config.name}'. {hint}Treatment runs: {', '.join(sorted(names))}")
    control = next(s for s in specs if s.is_control and s.seed == spec.seed)
    rca = RootCauseAttribution(**options).fit(spec, control, ctx)
    rca.fallback_ = fallback
    if tracker is None:
        return rca, None
    stored_spec = next(s for s in plan_runs(stored_config) if s.name == run_name)
    stored = tracker.find_runs({"smo.run_key": stored_spec.key(stored_config, data.digest())}, statuses=("FINISHED",))
    if not stored:
        return rca, None
    run_id = stored[0].run_id
    tracker.log_frame(run_id, rca.ranking_.assign(model=rca.model_used_, metric=rca.metric), "rca/ranking.csv")
    if not rca.neighbours_.empty:
        tracker.log_frame(run_id, rca.neighbours_.astype({"label_before": str, "label_after": str}), "rca/neighbours.parquet")
    tracker.log_metrics(run_id, {"rca/regression": rca.regression_, "rca/explained": rca.explained_})
    return rca, run_id


__all__ = ["RootCauseAttribution", "attribute_run"]
