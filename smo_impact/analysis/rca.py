"""Root-cause attribution: which of a treatment's changes caused its regression vs control?

For one treatment run (arm, grid point, seed) and the control run of the same seed:

1. re-apply both arms' treatments and retrain both models with the runner's own ``treat``,
   ``train`` and ``score`` (same seeds, params, soft labels and dev labels, so the same numbers as
   the logged runs);
2. group the treatment's change record by each requested dimension: ``step``, ``cause``,
   ``worker`` or an item slice column. The record has a row per changed training label, per
   changed judgement (with its ``worker``) and per removed judgement or item; ``worker`` groups
   the changes to judgements only (a rater moves training labels through the aggregation);
3. for each group, **re-run the arm's steps with that group's changes undone**: right after the
   step that made them, so that the aggregation and every later step (noise on the aggregated
   labels, cleaning) see the data as it would have been without them. Then retrain on cached
   features and score. Undoing a change means:

   * a judgement's new label -> its label before the step. Where the step mapped the answers to
     another label set (a guideline from a severity scale to abusive/not) there is no such label:
     the judgement takes **the control arm's label for it** (the control's judgements as they
     enter its aggregation, e.g. under the correct guideline); a judgement the control does not
     have, or a control in yet another label set, leaves the change in place (``not_reverted``);
   * a removed judgement or item (rater pools, budgets, guideline ``select``/``unmatched: drop``,
     cleaning with ``drop``) -> it comes back as it was when removed, with its item, judgements
     and label: judgements just before the aggregation, items after the last step (so that the
     random draws of the steps in between stay those of the run);
   * a changed training label -> its label before the step (soft label: its row before the step
     where there was one, else one-hot at that label);

4. rank groups by the share of the regression the reversion recovers; revert the top groups
   together to say what fraction of the regression they explain.

Changes the control arm made too (a shared step with the same draws) are no difference between
the two runs and are not attributed. Where the control's step of the same name changed the same
judgement for another reason, the cause names both (``rule 1 (...) | control: rule 0 (...)``): a
guideline rule whose threshold moved hands its judgements to the next rule.

A dimension with more groups than ``max_groups`` (raters: MD-Agreement has 819) is screened first
without training: every group's undo is replayed through the steps (cheap next to training), and
the groups whose undo moves the most training labels back to the control's (``toward_control``)
are retrained: a group recovers the regression through the differences from the control it
removes.

It also lists the top regressed test items with their nearest training items whose label the
treatment changed (cosine similarity of the cached features). Limits: steps that leave no change
record (``simulate_pool`` replaces every judgement; ``aggregate`` with ``tie: drop``) are not
undone; a model without cached features (``finetune``) is too costly to retrain per group:
``attribute_run`` then says so and falls back to ``embedding_logreg`` on the same encoder's frozen
features (``fallback_`` holds the note).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.errors import ConfigError, DataError
from smo_impact.runner.plan import RunSpec
from smo_impact.runner.run import RunContext, apply_steps, score, train, treat
from smo_impact.treatments import LabelState

CHANGE_DIMENSIONS = ("step", "cause", "worker")
METRICS = ("macro_f1", "recall", "f1", "accuracy")
TOO_COSTLY = ("finetune",)  # models that train the encoder: hours per group on a CPU
RANKING_COLUMNS = [
    "dimension", "group", "changes", "score_reverted", "recovered", "fraction", "labels_moved", "toward_control",
    "not_reverted",
]


class RootCauseAttribution:
    """Ranks groups of a treatment run's changes by how much regression their reversion recovers.

    Args:
        by: Dimensions to group changes by: ``step``, ``cause``, ``worker`` or an item column.
        metric: Outcome on the benchmark: ``macro_f1``, ``recall``, ``f1`` or ``accuracy``.
        top_k: Groups reverted together for :attr:`explained_`.
        max_groups: Groups retrained per dimension; a dimension with more is screened first (see
            the module docstring) and its ``max_groups`` most promising groups are retrained.
        neighbours: Nearest changed training items listed per regressed test item.
        benchmark: Namespace of the benchmark to attribute (default: the primary one), e.g. a
            guideline's view of the test split when the dataset's own labels are a severity scale.

    Attributes (after :meth:`fit`):
        ranking_: One row per retrained group: dimension, group, changes (change-record rows),
            score_reverted, recovered, fraction, labels_moved (training labels that differ from
            the treated run's once the group is undone, items brought back or removed included),
            toward_control (how many fewer training labels differ from the control's), not_reverted
            (changes that could not be undone).
        screened_: Every group of every dimension with its changes, labels_moved, toward_control
            and whether it was retrained (screened dimensions only: those with more than
            ``max_groups`` groups).
        control_score_, treated_score_: The outcome of the control and treatment models.
        regression_: ``control_score_ - treated_score_`` (positive = the treatment regressed).
        explained_: Fraction of the regression recovered by reverting the ``top_k`` groups together.
        neighbours_: Regressed test items with their nearest changed training items.
        shared_changes_: Change-record rows the control made too (same step, judgement or item,
            labels): no difference between the runs, so not attributed.
        model_used_: The model retrained per group.
    """

    def __init__(
        self, by: Sequence[str] = ("step", "cause"), metric: str = "macro_f1", top_k: int = 3,
        max_groups: int = 20, neighbours: int = 3, benchmark: str | None = None,
    ) -> None:
        if metric not in METRICS:
            raise ConfigError(f"rca metric must be one of {', '.join(METRICS)}; got '{metric}'")
        self.by = tuple(by)
        self.metric = metric
        self.top_k = top_k
        self.max_groups = max_groups
        self.neighbours = neighbours
        self.benchmark = benchmark

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
        namespaces = [b.namespace for b in ctx.benchmarks]
        namespace = self.benchmark or namespaces[0]
        if namespace not in namespaces:
            raise ConfigError(f"rca benchmark '{namespace}' is not scored by this experiment; benchmarks: {', '.join(namespaces)}")
        self.model_used_ = treated.model.name
        # Scored exactly as the logged runs were (runner.run's treat/train/score), on one benchmark
        # and without bootstrap intervals, which do not change the metric itself.
        bench = ctx.benchmarks[namespaces.index(namespace)]
        ctx = replace(ctx, benchmarks=(bench,), bootstrap=0)
        control_state = treat(control, ctx).state
        state = treat(treated, ctx).state
        self._replay = _Replay(treated, control, ctx, state)
        changes = self._replay.changes(self.by)
        self.shared_changes_ = int(changes["shared"].sum())
        changes = changes[~changes["shared"]].reset_index(drop=True)
        self.control_score_, control_pred = self._score(control, control_state, ctx)
        self.treated_score_, treated_pred = self._score(treated, state, ctx)
        self.regression_ = self.control_score_ - self.treated_score_
        distance = _Distance(state, control_state)

        rows, screened = [], []
        for dimension in self.by:
            members = changes[changes[dimension].notna()]
            groups = dict(tuple(members.groupby(dimension, sort=False)))
            if len(groups) > self.max_groups:
                # Screen: replay each group's undo without training (keeping only how the labels
                # moved: a state per group of 800 would not fit), retrain the most promising.
                table = pd.DataFrame(
                    [{"dimension": dimension, "group": group, "changes": len(group_rows), **self._revert(group_rows, distance)[1]}
                     for group, group_rows in groups.items()]
                ).sort_values(["toward_control", "changes"], ascending=False, kind="stable")
                keep = list(table["group"].head(self.max_groups))
                screened.append(table.assign(retrained=table["group"].isin(keep)))
                groups = {group: groups[group] for group in keep}
            for group, group_rows in groups.items():
                state_reverted, moved = self._revert(group_rows, distance)
                value = self._score_state(treated, state_reverted, ctx)
                recovered = value - self.treated_score_
                rows.append({
                    "dimension": dimension, "group": group, "changes": len(group_rows), "score_reverted": value,
                    "recovered": recovered, "fraction": recovered / self.regression_ if self.regression_ else np.nan,
                    **moved,
                })
        ranking = pd.DataFrame(rows, columns=RANKING_COLUMNS)
        # Equal recoveries (a coarse metric on a small benchmark) go to the group whose undo brings
        # more training labels back to the control's.
        self.ranking_ = ranking.sort_values(
            ["recovered", "toward_control"], ascending=False, kind="stable", na_position="last"
        ).reset_index(drop=True)
        self.screened_ = (
            pd.concat(screened, ignore_index=True) if screened
            else pd.DataFrame(columns=[*RANKING_COLUMNS[:3], *RANKING_COLUMNS[-3:], "retrained"])
        )
        top = self.ranking_.head(self.top_k)
        mask = np.zeros(len(changes), dtype=bool)
        for row in top.itertuples():
            mask |= (changes[row.dimension] == row.group).to_numpy()
        joint = self._score_state(treated, self._revert(changes[mask], distance)[0], ctx) if mask.any() else self.treated_score_
        self.explained_ = (joint - self.treated_score_) / self.regression_ if self.regression_ else np.nan

        reference = np.asarray(bench.reference)
        regressed = bench.items.loc[(control_pred == reference) & (treated_pred != reference), ["task", "text"]]
        self.neighbours_ = _nearest_changed(regressed, changes, state, control_state, ctx, self.neighbours, treated)
        return self

    def _score(self, spec: RunSpec, state: LabelState, ctx: RunContext) -> tuple[float, np.ndarray]:
        """Train the run's model on ``state`` and score the benchmark, as the runner does."""
        model = train(spec, ctx, state)
        namespace = ctx.benchmarks[0].namespace
        result = score(spec, ctx, model)[namespace]
        return float(result.metrics[f"{namespace}/{self.metric}"]), result.predictions["predicted"].to_numpy()

    def _revert(self, rows: pd.DataFrame, distance: _Distance) -> tuple[LabelState | None, dict[str, Any]]:
        """The treated state with ``rows`` undone (None where the steps fail on it), and how its
        training labels moved."""
        try:
            state, not_reverted = self._replay.revert(rows)
        except DataError:  # a step cannot treat the reverted data (e.g. too few items of a class)
            return None, {"labels_moved": np.nan, "toward_control": np.nan, "not_reverted": np.nan}
        return state, {**distance.describe(state), "not_reverted": not_reverted}

    def _score_state(self, spec: RunSpec, state: LabelState | None, ctx: RunContext) -> float:
        """The score of a model trained on ``state``; NaN where there is nothing to train on."""
        if state is None:
            return np.nan
        try:
            return self._score(spec, state, ctx)[0]
        except DataError:  # e.g. the undo leaves a single class
            return np.nan


class _Replay:
    """The treated arm's steps, replayed once with every intermediate state kept, so that any set
    of its changes can be undone by re-running the steps from the first step that made one."""

    def __init__(self, treated: RunSpec, control: RunSpec, ctx: RunContext, logged: LabelState) -> None:
        self.spec = treated
        self.states = _step_states(treated, ctx)
        final = self.states[-1]
        if not (final.labels.index.equals(logged.labels.index) and (final.labels.to_numpy() == logged.labels.to_numpy()).all()):
            raise RuntimeError(
                f"rca: replaying arm '{treated.arm}' step by step does not give the run's training labels; "
                "runner.run.treat and apply_steps have diverged"
            )
        lengths = [len(s.changes) for s in self.states]
        # Change-record row r was made by step i when lengths[i] <= r < lengths[i + 1].
        self.step_of_row = np.searchsorted(lengths, np.arange(lengths[-1]), side="right") - 1
        self.final = final
        # The step that turns judgements into training labels (aggregate).
        self.label_step = next(i for i in range(len(self.states) - 1) if self.states[i + 1].labels is not None)
        # The control's judgements as they enter its aggregation: what a guideline's changes go back to.
        self.control_states = _step_states(control, ctx)
        judged = [s for s in self.control_states if s.labels is None]
        last = judged[-1]
        ann = last.annotations
        self.control_labels_set = tuple(last.labels_set)
        self.control_judgements = pd.Series(ann["label"].to_numpy(), index=_pairs(ann)).groupby(level=[0, 1]).first()

    def changes(self, by: Sequence[str]) -> pd.DataFrame:
        """The change record with the step index of each row and a string column per dimension
        (``worker`` empty on changes to training labels, which no single rater made)."""
        changes = self.final.changes.reset_index(drop=True).copy()
        changes["step_index"] = self.step_of_row
        # A change the control arm made too (a shared step with the same draws) is no difference
        # between the two runs, so it cannot explain the regression: it is not attributed.
        changes["shared"] = _identity(changes).isin(set(_identity(self.control_states[-1].changes)))
        item_cols = [d for d in by if d not in CHANGE_DIMENSIONS]
        if item_cols:
            items = self.states[0].items.drop_duplicates("task").set_index("task")[item_cols]
            for column in item_cols:
                changes[column] = changes["task"].map(items[column]).astype(str)
        for dimension in ("step", "cause"):
            changes[dimension] = changes[dimension].astype(str)
        # Where the control's step of the same name changed the same judgement or item for another
        # reason (another guideline rule), the cause names both: a rule whose threshold moved
        # hands its judgements to the next rule, and the pair says which boundary moved.
        control = self.control_states[-1].changes
        control_cause = pd.Series(control["cause"].astype(str).to_numpy(), index=_judgement_key(control))
        control_cause = control_cause[~control_cause.index.duplicated()]
        other = pd.Series(control_cause.reindex(_judgement_key(changes)).to_numpy(), index=changes.index)
        differs = other.notna() & (other != changes["cause"])
        changes.loc[differs, "cause"] = changes.loc[differs, "cause"] + " | control: " + other[differs]
        judgement = changes["worker"].notna()
        changes["worker"] = changes["worker"].where(~judgement, changes["worker"].astype(str))
        changes.loc[~judgement, "worker"] = None
        return changes

    def revert(self, rows: pd.DataFrame) -> tuple[LabelState, int]:
        """The arm's final state with ``rows`` (of :meth:`changes`) undone, and how many could not be."""
        undo = _Undo(rows, self.control_judgements, self.control_labels_set, self.label_step - 1, len(self.spec.steps) - 1)
        first = int(rows["step_index"].min())
        state, _, _ = apply_steps(self.spec, self.states[first], self.spec.entropy, start=first, after_step=undo)
        return state, undo.not_reverted


def _judgement_key(changes: pd.DataFrame) -> pd.Index:
    """Step name, task and worker (empty for a training label) of each change-record row."""
    worker = changes["worker"].astype(object).where(changes["worker"].notna(), "")
    return pd.Index(changes["step"].astype(str) + "\x1f" + changes["task"].astype(str) + "\x1f" + worker.astype(str))


def _identity(changes: pd.DataFrame) -> pd.Series:
    """One string per change-record row: step, task, worker, label before and after."""
    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)

    columns = ["step", "task", "worker", "label_before", "label_after"]
    if changes.empty:
        return pd.Series([], dtype=object)
    return pd.Series(["\x1f".join(map(text, row)) for row in changes[columns].itertuples(index=False)], index=changes.index)


def _step_states(spec: RunSpec, ctx: RunContext) -> list[LabelState]:
    """The state before each of the arm's steps, then the final one (``treat``'s starting point)."""
    initial = ctx.initial_state
    features = ctx.features_for(spec.model)
    if features is not initial.features:  # as in runner.run.treat: cleaning uses the run's features
        initial = initial.evolve(features=features)
    states = [initial]

    def keep(index: int, before: LabelState, after: LabelState) -> LabelState:
        states.append(after)
        return after

    apply_steps(spec, initial, spec.entropy, after_step=keep)
    return states


def _pairs(frame: pd.DataFrame) -> pd.MultiIndex:
    """(task, worker) of each row: a judgement's identity across steps."""
    return pd.MultiIndex.from_arrays([frame["task"].astype(str).to_numpy(), frame["worker"].astype(str).to_numpy()])


class _Undo:
    """``apply_steps`` hook: right after each step, undo that step's changes that are in the group.

    The group is matched against what the step did in *this* replay (its new change-record rows):
    a judgement by (task, worker), a training label by task. Earlier undone changes can make a
    later step act differently, and only what it did here can be undone.

    Removed judgements come back after the last step on judgements (just before aggregation), and
    removed items after the last step, as they were when removed: inserted earlier, they would
    shift the random draws of every later random step (noise draws one uniform per unit in
    order), and the replay would differ from the run by more than the group.
    """

    def __init__(
        self, rows: pd.DataFrame, control: pd.Series, control_labels_set: tuple, judgements_back_at: int,
        labels_back_at: int,
    ) -> None:
        judgement = rows["worker"].notna()
        self.judgements = {i: _pairs(g) for i, g in rows[judgement].groupby("step_index")}
        self.labels = {i: pd.Index(g["task"].astype(str)) for i, g in rows[~judgement].groupby("step_index")}
        self.control = control
        self.control_labels_set = control_labels_set
        self.judgements_back_at, self.labels_back_at = judgements_back_at, labels_back_at
        self.removed_judgements: list[tuple[pd.DataFrame, pd.DataFrame, tuple]] = []  # judgements, items, label set
        self.removed_items: list[tuple[pd.Series, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]] = []
        self.not_reverted = 0

    def __call__(self, index: int, before: LabelState, after: LabelState) -> LabelState:
        if index in self.judgements or index in self.labels:
            made = after.changes.iloc[len(before.changes):]
            judgement = made["worker"].notna().to_numpy()
            if index in self.judgements:
                rows = made[judgement]
                after = self._judgements(before, after, rows[_pairs(rows).isin(self.judgements[index])])
            if index in self.labels:
                rows = made[~judgement]
                after = self._labels(before, after, rows[rows["task"].astype(str).isin(self.labels[index])])
        if index == self.judgements_back_at and self.removed_judgements:
            after = self._judgements_back(after)
        if index == self.labels_back_at and self.removed_items:
            after = self._items_back(after)
        return after

    def _judgements(self, before: LabelState, after: LabelState, rows: pd.DataFrame) -> LabelState:
        if rows.empty:
            return after
        ann = after.annotations.copy()
        relabelled = rows[rows["label_after"].notna()]
        if tuple(before.labels_set) != tuple(after.labels_set):  # no label of this set to go back to
            values = self._control_values(_pairs(relabelled), after)
        else:
            values = pd.Series(relabelled["label_before"].to_numpy(), dtype=object)
        position = _pairs(ann).get_indexer(_pairs(relabelled))
        ok = (position >= 0) & values.notna().to_numpy()
        self.not_reverted += int((~ok).sum())
        labels = ann["label"].to_numpy(dtype=object).copy()
        labels[position[ok]] = values.to_numpy()[ok]
        ann["label"] = pd.Series(labels, index=ann.index).infer_objects()
        removed = rows[rows["label_after"].isna()]
        if not removed.empty:
            back = before.annotations[_pairs(before.annotations).isin(_pairs(removed))]
            items = before.items[before.items["task"].isin(back["task"])]
            self.removed_judgements.append((back, items, tuple(before.labels_set)))
        return after.evolve(annotations=ann)

    def _judgements_back(self, after: LabelState) -> LabelState:
        backs, items = [after.annotations], [after.items]
        for back, item_rows, labels_set in self.removed_judgements:
            if labels_set != tuple(after.labels_set):  # the raw answer means nothing here: the control's label
                values = self._control_values(_pairs(back), after)
                self.not_reverted += int(values.isna().sum())
                back = back[values.notna().to_numpy()].assign(label=values.dropna().to_numpy())
            backs.append(back)
            items.append(item_rows[item_rows["task"].isin(back["task"])])
        items_all = pd.concat(items)
        return after.evolve(annotations=pd.concat(backs).infer_objects(), items=items_all.drop_duplicates("task"))

    def _control_values(self, keys: pd.MultiIndex, after: LabelState) -> pd.Series:
        """The control's label of each judgement, NaN where it has none in this label set."""
        if self.control_labels_set != tuple(after.labels_set):
            return pd.Series([np.nan] * len(keys), dtype=object)
        return pd.Series(self.control.reindex(keys).to_numpy(), dtype=object)

    def _labels(self, before: LabelState, after: LabelState, rows: pd.DataFrame) -> LabelState:
        if rows.empty or after.labels is None:
            return after
        labels = after.labels.astype(object).copy()
        relabelled = rows[rows["label_after"].notna()]
        labels.loc[relabelled["task"].to_numpy()] = relabelled["label_before"].to_numpy()
        labels = labels.infer_objects().rename(after.labels.name)
        labels.index.name = after.labels.index.name
        removed = rows[rows["label_after"].isna() & ~rows["task"].isin(labels.index)]
        if not removed.empty:
            tasks = removed["task"]
            self.removed_items.append((
                pd.Series(removed["label_before"].to_numpy(), index=tasks.to_numpy(), dtype=object),
                before.items[before.items["task"].isin(tasks)], before.annotations[before.annotations["task"].isin(tasks)],
                None if before.soft_labels is None else before.soft_labels.reindex(tasks.to_numpy()),
            ))
        soft = after.soft_labels
        if soft is not None and not relabelled.empty:
            touched = pd.Index(relabelled["task"].unique())
            previous = None if before.soft_labels is None else before.soft_labels.reindex(touched)
            soft = _with_soft_rows(soft, _soft_rows(labels.reindex(touched), previous, soft.columns))
        return after.evolve(labels=labels, soft_labels=soft)

    def _items_back(self, after: LabelState) -> LabelState:
        labels = pd.concat([after.labels.astype(object), *(label for label, _, _, _ in self.removed_items)])
        labels = labels[~labels.index.duplicated()].infer_objects().rename(after.labels.name)
        labels.index.name = after.labels.index.name
        items = pd.concat([after.items, *(item_rows for _, item_rows, _, _ in self.removed_items)]).drop_duplicates("task")
        ann = pd.concat([after.annotations, *(ann_rows for _, _, ann_rows, _ in self.removed_items)])
        soft = after.soft_labels
        if soft is not None:
            for label, _, _, previous in self.removed_items:
                soft = _with_soft_rows(soft, _soft_rows(label, previous, soft.columns))
            soft = soft.reindex(labels.index)
        return after.evolve(labels=labels, items=items, annotations=ann, soft_labels=soft)


def _soft_rows(labels: pd.Series, previous: pd.DataFrame | None, columns: pd.Index) -> pd.DataFrame:
    """Soft labels of reverted tasks: their row before the step where there was one, else one-hot."""
    rows = pd.DataFrame(0.0, index=labels.index, columns=columns)
    for task, label in labels.items():
        if label in rows.columns:
            rows.loc[task, label] = 1.0
    if previous is not None:
        previous = previous.reindex(index=labels.index, columns=columns)
        known = previous.notna().all(axis=1)
        rows.loc[known] = previous.loc[known].astype(float)
    return rows


def _with_soft_rows(soft: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    merged = pd.concat([soft.drop(index=soft.index.intersection(rows.index)), rows])
    return merged.reindex(soft.index.union(rows.index, sort=False)).rename_axis(soft.index.name)


class _Distance:
    """How far a state's training labels are from the treated run's and from the control's."""

    def __init__(self, treated: LabelState, control: LabelState) -> None:
        self.treated = _positive(treated)
        self.control = _positive(control)
        self.base = _differ(self.treated, self.control)

    def describe(self, state: LabelState) -> dict[str, int]:
        positive = _positive(state)
        return {"labels_moved": _differ(positive, self.treated), "toward_control": self.base - _differ(positive, self.control)}


def _positive(state: LabelState) -> pd.Series:
    """Whether each training label is the state's positive class (comparable across label sets)."""
    return pd.Series(state.labels.to_numpy() == state.positive_label, index=state.labels.index.astype(str))


def _differ(a: pd.Series, b: pd.Series) -> int:
    """Training items labelled differently by ``a`` and ``b``, or present in only one of them."""
    common = a.index.intersection(b.index)
    return int((a[common].to_numpy() != b[common].to_numpy()).sum() + len(a.index.difference(b.index)) + len(b.index.difference(a.index)))


def _nearest_changed(
    regressed: pd.DataFrame, changes: pd.DataFrame, treated: LabelState, control: LabelState, ctx: RunContext,
    k: int, spec: RunSpec,
) -> pd.DataFrame:
    """For each regressed test item, the ``k`` most similar training items (in feature space) whose
    training label the treatment changed: labelled differently from the control's (positive or
    not), or present in only one of the two. ``label_before``/``label_after``: the control's and
    the treated run's training label (empty where absent); ``step``: the last step that changed it."""
    columns = ["task", "text", "neighbour", "neighbour_text", "similarity", "label_before", "label_after", "step"]
    after, before = _positive(treated), _positive(control)
    common = after.index.intersection(before.index)
    flipped = common[after[common].to_numpy() != before[common].to_numpy()]
    differs = after.index.symmetric_difference(before.index).union(flipped)
    changed = changes.drop_duplicates("task", keep="last")
    changed = changed[changed["task"].astype(str).isin(differs)]
    if regressed.empty or changed.empty:
        return pd.DataFrame(columns=columns)
    features = ctx.features_for(spec.model)
    a, b = _unit(features.rows(regressed["task"])), _unit(features.rows(changed["task"]))
    similarity = np.asarray((a @ b.T).todense() if hasattr(a, "todense") else a @ b.T)
    texts = ctx.dataset.items.drop_duplicates("task").set_index("task")["text"]
    label_after = pd.Series(treated.labels.to_numpy(), index=treated.labels.index.astype(str))
    label_before = pd.Series(control.labels.to_numpy(), index=control.labels.index.astype(str))
    rows = []
    for i, (task, text) in enumerate(zip(regressed["task"], regressed["text"])):
        for j in np.argsort(-similarity[i], kind="stable")[:k]:
            change = changed.iloc[j]
            neighbour = change["task"]
            rows.append((task, text, neighbour, texts.get(neighbour, ""), float(similarity[i, j]),
                         label_before.get(str(neighbour)), label_after.get(str(neighbour)), change["step"]))
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
    # Short names (``label_noise rate=0.4 s0``) and the long form of earlier versions both work.
    spec = next((s for s in specs if s.named(run_name)), None)
    if spec is None or spec.is_control:
        # A mistyped name of either form gets the short name it is closest to.
        by_form = {form: s.name for s in specs if not s.is_control for form in (s.name, s.long_name)}
        close = [by_form[c] for c in difflib.get_close_matches(run_name, list(by_form), n=1)]
        hint = f"Did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"no treatment run '{run_name}' in experiment '{config.name}'. {hint}Treatment runs: {', '.join(sorted(names))}")
    control = next(s for s in specs if s.is_control and s.seed == spec.seed)
    rca = RootCauseAttribution(**options).fit(spec, control, ctx)
    rca.fallback_ = fallback
    if tracker is None:
        return rca, None
    stored_spec = next(s for s in plan_runs(stored_config) if s.named(run_name))
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
