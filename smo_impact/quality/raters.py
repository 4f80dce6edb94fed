"""Rater performance: volume, agreement with peers, accuracy against gold, skill, and flagging bias.

Every per-rater figure compares a rater with the *other* raters of the same items (leave-one-out),
so a rater is neither judged against a majority they are part of nor against items they never saw.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from smo_impact.data.schema import positions_in, vote_counts


def judgement_table(
    annotations: pd.DataFrame,
    labels: tuple | list,
    positive_label: object,
    flag_labels: tuple | list | None = None,
) -> pd.DataFrame:
    """Each judgement compared with the other judgements on the same item.

    Args:
        annotations: Judgements (``task``, ``worker``, ``label``).
        labels: The declared label set, in order.
        positive_label: The label that counts as flagging an item.
        flag_labels: Labels that count as flagging when there are several (a rating scale's
            harmful grades, e.g. ConvAbuse's -1..-3); default: ``positive_label`` alone.

    Returns:
        ``task``, ``worker``, ``label`` plus ``others`` (judgements by the other raters of the
        item), ``loo_agreement`` (1 when the label is the others' majority, ``1/t`` when it is one
        of ``t`` tied top labels, 0 otherwise; NaN when nobody else labeled the item),
        ``flagged`` (label is the positive label) and ``others_flag_rate`` (share of the others'
        judgements that flag the item; NaN without others).
    """
    frame = annotations[["task", "worker", "label"]].reset_index(drop=True)
    counts = vote_counts(frame, labels)
    task_row = counts.index.get_indexer(frame["task"].to_numpy())
    label_col = positions_in(frame["label"], labels)
    others = counts.to_numpy()[task_row].astype(float)
    others[np.arange(len(frame)), label_col] -= 1.0
    n_others = others.sum(axis=1)
    is_top = others == others.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        credit = is_top[np.arange(len(frame)), label_col] / is_top.sum(axis=1)
        flag_cols = pd.Index(list(labels)).get_indexer(list(flag_labels or [positive_label]))
        others_flag = others[:, flag_cols].sum(axis=1) / n_others
    has_others = n_others > 0
    frame["others"] = n_others.astype(int)
    frame["loo_agreement"] = np.where(has_others, credit, np.nan)
    frame["flagged"] = np.isin(label_col, flag_cols).astype(float)
    frame["others_flag_rate"] = np.where(has_others, others_flag, np.nan)
    return frame


def dawid_skene_skills(annotations: pd.DataFrame, labels: tuple | list, n_iter: int = 100) -> pd.Series:
    """Each rater's skill under crowd-kit's Dawid-Skene model.

    Skill is the estimated probability that the rater gives the true label, averaging their
    confusion-matrix diagonal ``P(says c | truth c)`` over the estimated class priors. Dawid-Skene
    starts from majority vote and is deterministic (no random state).

    Returns:
        Skill per worker (index ``worker``), in [0, 1].
    """
    from crowdkit.aggregation import DawidSkene

    data = annotations[["task", "worker", "label"]]
    if data.empty:
        return pd.Series(dtype=float, name="ds_skill")
    with warnings.catch_warnings():  # crowd-kit uses pandas keywords pandas 3 deprecates
        warnings.simplefilter("ignore")
        model = DawidSkene(n_iter=n_iter).fit(data)
    # errors_ rows are (worker, observed label), columns the true label; absent rows mean 0.
    cells = model.errors_.stack()
    cells.index = cells.index.set_names(["worker", "observed", "truth"])
    truth = cells.index.get_level_values("truth")
    diagonal = cells[cells.index.get_level_values("observed") == truth]
    weighted = diagonal * model.priors_.reindex(diagonal.index.get_level_values("truth")).to_numpy()
    workers = pd.Index(sorted(data["worker"].unique()), name="worker")
    skill = weighted.groupby(level="worker").sum().reindex(workers, fill_value=0.0)
    return skill.rename("ds_skill")


def rater_table(
    judgements: pd.DataFrame,
    gold: pd.Series | None = None,
    skills: pd.Series | None = None,
) -> pd.DataFrame:
    """Per-rater performance.

    Args:
        judgements: Output of :func:`judgement_table`.
        gold: Optional gold label per task; items without gold (NaN) are ignored.
        skills: Optional Dawid-Skene skill per worker (:func:`dawid_skene_skills`).

    Returns:
        One row per worker (index ``worker``), sorted by judgements descending: ``judgements``,
        ``rater_agreement`` (mean leave-one-out agreement), ``flag_rate``, ``others_flag_rate``
        (how often the other raters of the same items flagged them), ``flag_bias``
        (``flag_rate - others_flag_rate``: positive = flags more than peers on the same items),
        and, when given, ``gold_judgements``, ``gold_accuracy`` and ``ds_skill``.
    """
    frame = judgements.copy()
    if gold is not None:
        truth = gold.reindex(frame["task"].to_numpy()).to_numpy()
        known = pd.notna(truth)
        frame["gold_known"] = known.astype(float)
        frame["gold_correct"] = np.where(known, frame["label"].to_numpy() == truth, np.nan)
    grouped = frame.groupby("worker", sort=True)
    table = pd.DataFrame(
        {
            "judgements": grouped.size(),
            "rater_agreement": grouped["loo_agreement"].mean(),
            "flag_rate": grouped["flagged"].mean(),
            "others_flag_rate": grouped["others_flag_rate"].mean(),
        }
    )
    table["flag_bias"] = table["flag_rate"] - table["others_flag_rate"]
    if gold is not None:
        table["gold_judgements"] = grouped["gold_known"].sum().astype(int)
        table["gold_accuracy"] = grouped["gold_correct"].mean()
    if skills is not None:
        table["ds_skill"] = skills.reindex(table.index)
    table.index.name = "worker"
    return table.sort_values(["judgements"], ascending=False, kind="stable")


def rater_slice_rates(
    judgements: pd.DataFrame,
    items: pd.DataFrame,
    slice_columns: tuple[str, ...] | list[str],
    min_judgements: int = 10,
) -> pd.DataFrame:
    """Does a rater over-flag one slice (domain, target group)? Flag rates per rater and slice.

    Args:
        judgements: Output of :func:`judgement_table`.
        items: Items table with ``task`` and the slice columns.
        slice_columns: Item columns to slice by.
        min_judgements: Rater-slice cells with fewer judgements are left out (too noisy to read).

    Returns:
        ``worker``, ``slice``, ``value``, ``judgements``, ``flag_rate``, ``others_flag_rate`` and
        ``flag_bias`` (rate minus the other raters' rate on the same items), largest bias first.
    """
    columns = ["worker", "slice", "value", "judgements", "flag_rate", "others_flag_rate", "flag_bias"]
    parts = []
    for column in slice_columns:
        if column not in items.columns:
            continue
        values = items.set_index("task")[column].reindex(judgements["task"].to_numpy())
        frame = judgements.assign(value=values.astype(str).fillna("(none)").to_numpy())
        grouped = frame.groupby(["worker", "value"], sort=True)
        part = pd.DataFrame(
            {
                "judgements": grouped.size(),
                "flag_rate": grouped["flagged"].mean(),
                "others_flag_rate": grouped["others_flag_rate"].mean(),
            }
        ).reset_index()
        part.insert(1, "slice", column)
        parts.append(part[part["judgements"] >= min_judgements])
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat(parts, ignore_index=True)
    table["flag_bias"] = table["flag_rate"] - table["others_flag_rate"]
    return table[columns].sort_values("flag_bias", ascending=False, ignore_index=True, kind="stable")
