"""Root-cause attribution: which of a treatment's label changes caused its regression vs control?

For one treatment run (arm, grid point, seed) and the control run of the same seed:

1. re-apply both arms' treatments (same seeds, so the same labels as the logged runs);
2. group the treatment's change record (``task, step, label_before, label_after, cause``) by each
   requested dimension: ``step``, ``cause``, ``worker`` (where recorded) or an item slice column;
3. for each group, retrain the model on cached features with that group's changes reverted
   (each changed task gets back its label from before the group's earliest change) and score it;
4. rank groups by the share of the regression each reversion recovers; revert the top groups
   together to say what fraction of the regression they explain.

It also lists the top regressed test items with their nearest changed training items (cosine
similarity of the cached features). Limits: changes that removed an item (``label_after`` empty:
cleaning with ``drop``, budgets, rater pools) are not reverted; a model without cached features
(``finetune``) is too costly to retrain per group: ``attribute_run`` then says so and falls back
to ``embedding_logreg`` on the same encoder's frozen features (``fallback_`` holds the note).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.errors import ConfigError
from smo_impact.models import MODELS
from smo_impact.runner.plan import RunSpec
from smo_impact.runner.run import RunContext
from smo_impact.treatments import TREATMENTS

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
        control_labels, _ = treat(control, ctx)
        labels, changes = treat(treated, ctx)
        changes = _revertible(changes, labels.index, ctx, self.by)
        bench = ctx.benchmarks[0]
        self.control_score_, control_pred = self._score(treated, control_labels, ctx)
        self.treated_score_, treated_pred = self._score(treated, labels, ctx)
        self.regression_ = self.control_score_ - self.treated_score_

        rows = []
        for dimension in self.by:
            sizes = changes[dimension].value_counts().head(self.max_groups)
            for group, n in sizes.items():
                reverted = _revert(labels, changes[changes[dimension] == group])
                score, _ = self._score(treated, reverted, ctx)
                recovered = score - self.treated_score_
                rows.append({
                    "dimension": dimension, "group": str(group), "changes": int(n), "score_reverted": score,
                    "recovered": recovered, "fraction": recovered / self.regression_ if self.regression_ else np.nan,
                })
        ranking = pd.DataFrame(rows, columns=["dimension", "group", "changes", "score_reverted", "recovered", "fraction"])
        self.ranking_ = ranking.sort_values("recovered", ascending=False, kind="stable").reset_index(drop=True)
        top = self.ranking_.head(self.top_k)
        mask = np.zeros(len(changes), dtype=bool)
        for row in top.itertuples():
            mask |= (changes[row.dimension].astype(str) == row.group).to_numpy()
        joint, _ = self._score(treated, _revert(labels, changes[mask]), ctx)
        self.explained_ = (joint - self.treated_score_) / self.regression_ if self.regression_ else np.nan

        reference = np.asarray(bench.reference)
        regressed = bench.items.loc[(control_pred == reference) & (treated_pred != reference), ["task", "text"]]
        self.neighbours_ = _nearest_changed(regressed, changes, ctx, self.neighbours)
        return self

    def _score(self, spec: RunSpec, labels: pd.Series, ctx: RunContext) -> tuple[float, np.ndarray]:
        """Train the (cheap) model on ``labels`` and score the primary benchmark at the threshold."""
        from sklearn import metrics as skm

        model_cls = MODELS.get(self.model_used_)
        params = spec.model.params if self.model_used_ == spec.model.name else {}
        model = model_cls(model_cls.Params.model_validate(params))
        y = (labels.to_numpy() == ctx.initial_state.positive_label).astype(int)
        model.fit(ctx.features.rows(labels.index), y, seed=spec.seed)
        bench = ctx.benchmarks[0]
        proba = model.predict_proba(ctx.features.rows(bench.items["task"]))[:, list(model.classes_).index(1)]
        pred = (proba >= ctx.threshold).astype(int)
        reference = np.asarray(bench.reference).astype(int)
        score = {
            "macro_f1": lambda: skm.f1_score(reference, pred, average="macro", zero_division=0),
            "f1": lambda: skm.f1_score(reference, pred, zero_division=0),
            "recall": lambda: skm.recall_score(reference, pred, zero_division=0),
            "accuracy": lambda: skm.accuracy_score(reference, pred),
        }[self.metric]()
        return float(score), pred


def treat(spec: RunSpec, ctx: RunContext) -> tuple[pd.Series, pd.DataFrame]:
    """The training labels and change record of a run, re-applied exactly as ``runner.run`` does.

    (Same per-step generators from the run seed, so the labels equal the logged run's.)
    """
    state = ctx.initial_state
    for step, seed_seq in zip(spec.steps, np.random.SeedSequence(spec.seed).spawn(len(spec.steps))):
        treatment_cls = TREATMENTS.get(step.name)
        state = treatment_cls(treatment_cls.Params.model_validate(step.params)).apply(state, np.random.default_rng(seed_seq))
    if state.labels is None:
        raise ConfigError(f"arm '{spec.arm}' produced no training labels: add an 'aggregate' step")
    return state.labels, state.changes


def _revertible(changes: pd.DataFrame, kept: pd.Index, ctx: RunContext, by: Sequence[str]) -> pd.DataFrame:
    """Label changes of tasks still trained on, with the item columns used for grouping."""
    changes = changes[changes["task"].isin(kept) & changes["label_before"].notna() & changes["label_after"].notna()]
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


def _revert(labels: pd.Series, group: pd.DataFrame) -> pd.Series:
    """``labels`` with each task of ``group`` set back to its label before the group's earliest change."""
    before = group.drop_duplicates("task", keep="first").set_index("task")["label_before"]
    reverted = labels.copy()
    reverted.loc[before.index] = before.astype(labels.dtype).to_numpy()
    return reverted


def _nearest_changed(regressed: pd.DataFrame, changes: pd.DataFrame, ctx: RunContext, k: int) -> pd.DataFrame:
    """For each regressed test item, the ``k`` changed training items most similar in feature space."""
    columns = ["task", "text", "neighbour", "neighbour_text", "similarity", "label_before", "label_after", "step"]
    changed = changes.drop_duplicates("task", keep="last")
    if regressed.empty or changed.empty:
        return pd.DataFrame(columns=columns)
    a, b = _unit(ctx.features.rows(regressed["task"])), _unit(ctx.features.rows(changed["task"]))
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


__all__ = ["RootCauseAttribution", "attribute_run", "treat"]
