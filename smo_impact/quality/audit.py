"""The annotation-quality audit: every agreement, rater and item figure of one dataset, at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.data.schema import SPLITS, AnnotationSet, vote_counts
from smo_impact.errors import ConfigError, DataError
from smo_impact.quality.agreement import (
    FleissKappa,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_ci,
    pairwise_cohen_kappa,
    percent_agreement,
    scale_alphas,
)
from smo_impact.quality.items import agreement_levels, contested_items, item_difficulty
from smo_impact.quality.raters import dawid_skene_skills, judgement_table, rater_slice_rates, rater_table
from smo_impact.quality.slices import same_partitions, slice_agreement

GOLD_COLUMNS = ("gold_label", "gold")
# Worker-table columns with more distinct values than this are identifiers, not groups.
MAX_GROUPS = 20


class QualityAudit:
    """Audit the annotations of a dataset: agreement, raters, items and slices.

    Args:
        split: Audit only one split (``train``, ``dev``, ``test``); ``None`` audits all items.
        min_shared: Rater pairs need this many shared items to get a Cohen's kappa.
        min_judgements: Rater x slice cells need this many judgements to be reported.
        n_boot: Bootstrap replicates for alpha's confidence interval (0: no interval).
        confidence: Level of that interval.
        gold_column: Items column holding a gold label; default: the first of ``GOLD_COLUMNS``
            present whose values are declared labels (HateCheck's ``gold_label``).
        dawid_skene: Estimate rater skills with crowd-kit's Dawid-Skene (a few seconds on 50k
            judgements).
        ds_iter: Most EM iterations of Dawid-Skene (it stops earlier once converged).
        random_state: Seed of the bootstrap.
        by: Rater attributes (workers-table columns) and item columns to report agreement per
            group of; default: the dataset's slice columns and every rater attribute with 2 to
            ``MAX_GROUPS`` values.
        top_contested: How many of the most contested items to keep with their text.

    Attributes (after ``fit``):
        summary_: Headline figures (dataset-level metrics, names as in targets files).
        fleiss_: :class:`FleissKappa` with the design it was computed on.
        raters_: Per-rater table (:func:`raters.rater_table`).
        pairs_: Per-pair Cohen's kappa (:func:`agreement.pairwise_cohen_kappa`).
        items_: Per-item difficulty (:func:`items.item_difficulty`).
        levels_: Share of items per agreement level.
        contested_: The ``top_contested`` items the raters split on most, with their text and votes
            (:func:`items.contested_items`).
        slices_: Agreement per item slice and rater group (:func:`slices.slice_agreement`: a
            group's figures rest on its ``pairable_items``).
        rater_slices_: Flag rates per rater and slice.
        duplicate_slices_: Slice columns left out because they split items (or raters) exactly as
            an earlier column does, ``{left out: kept}`` (HS-Brexit's ``group_id`` and ``group``).
        rater_columns_: The rater attributes agreement was broken down by (duplicates included).
        flag_labels_: Labels counted as flagging (a rating scale's harmful grades, or the positive label).
        gold_column_: The items column used as gold, or None.
    """

    def __init__(
        self,
        split: str | None = None,
        min_shared: int = 20,
        min_judgements: int = 10,
        n_boot: int = 1000,
        confidence: float = 0.95,
        gold_column: str | None = None,
        dawid_skene: bool = True,
        ds_iter: int = 100,
        random_state: int = 0,
        by: list[str] | None = None,
        top_contested: int = 15,
    ) -> None:
        if split is not None and split not in SPLITS:
            raise ConfigError(f"audit split must be one of {', '.join(SPLITS)} or all; got {split!r}")
        if not 0 < confidence < 1:
            raise ConfigError(f"audit confidence must be in (0, 1); got {confidence}")
        self.split = split
        self.min_shared = min_shared
        self.min_judgements = min_judgements
        self.n_boot = n_boot
        self.confidence = confidence
        self.gold_column = gold_column
        self.dawid_skene = dawid_skene
        self.ds_iter = ds_iter
        self.random_state = random_state
        self.by = by
        self.top_contested = top_contested

    def fit(self, data: AnnotationSet, on_step: Callable[[str], None] | None = None) -> QualityAudit:
        """Compute every figure; ``on_step`` is called with the name of each stage (progress)."""
        step = on_step or (lambda name: None)
        items = data.items if self.split is None else data.split(self.split)
        annotations = data.annotations if self.split is None else data.split_annotations(self.split)
        if annotations.empty:
            where = f"split '{self.split}' of " if self.split else ""
            splits = ", ".join(sorted(map(str, data.items["split"].unique())))
            raise DataError(f"nothing to audit: {where}dataset '{data.name}' has no judgements (splits with items: {splits})")
        labels, positive = tuple(data.labels), data.positive_label
        # A rater who labeled an item twice is one coder on that unit: keep their first judgement.
        duplicated = annotations.duplicated(["task", "worker"])
        annotations = annotations[~duplicated.to_numpy()]
        self.dataset_ = data.name
        self.labels_ = labels
        self.positive_label_ = positive

        step("agreement")
        counts = vote_counts(annotations, labels).to_numpy()
        self.fleiss_: FleissKappa = fleiss_kappa(counts)
        alpha = krippendorff_alpha(counts)
        low, high = krippendorff_alpha_ci(
            counts, np.random.default_rng(self.random_state), "nominal", self.n_boot, self.confidence
        )
        self.pairs_ = pairwise_cohen_kappa(annotations, labels, self.min_shared)

        step("raters")
        # Flagging means a harmful label: the dataset's binary rule on a rating scale, else the positive label.
        flag_labels = tuple(data.binary_positive) or (positive,)
        self.flag_labels_ = flag_labels
        judgements = judgement_table(annotations, labels, positive, flag_labels)
        gold = self._gold(items, labels)
        skills = dawid_skene_skills(annotations, labels, self.ds_iter) if self.dawid_skene else None
        self.raters_ = rater_table(judgements, gold=gold, skills=skills)

        step("items and slices")
        self.items_ = item_difficulty(annotations, labels)
        self.levels_ = agreement_levels(self.items_)
        self.contested_ = contested_items(annotations, labels, items, self.top_contested)
        slice_columns, worker_columns = self._groups(data, items)
        self.rater_columns_ = list(worker_columns)
        # Two names for one partition (group / group_id) would report every figure twice: keep the first.
        self.duplicate_slices_ = same_partitions(items, slice_columns)
        if data.workers is not None:
            self.duplicate_slices_.update(same_partitions(data.workers, worker_columns))
        slice_columns = [c for c in slice_columns if c not in self.duplicate_slices_]
        worker_columns = [c for c in worker_columns if c not in self.duplicate_slices_]
        self.slices_ = slice_agreement(
            annotations, labels, flag_labels, items, slice_columns, data.workers, worker_columns
        )
        item_slices = [c for c in data.slice_columns if c not in self.duplicate_slices_]
        self.rater_slices_ = rater_slice_rates(judgements, items, item_slices, self.min_judgements)

        pairs_kappa = self.pairs_["kappa"].dropna()
        summary: dict[str, Any] = {
            "items": int((counts.sum(axis=1) > 0).sum()),
            "judgements": len(annotations),
            "duplicate_judgements": int(duplicated.sum()),
            "raters": int(annotations["worker"].nunique()),
            "judgements_per_item": float(counts.sum(axis=1).mean()) if len(counts) else float("nan"),
            "positive_rate": float(judgements["flagged"].mean()) if len(annotations) else float("nan"),
            "percent_agreement": percent_agreement(counts),
            "fleiss_kappa": self.fleiss_.kappa,
            "fleiss_balanced": self.fleiss_.balanced,
            "krippendorff_alpha": alpha,
            "krippendorff_alpha_low": low,
            "krippendorff_alpha_high": high,
            "cohen_kappa_pairs": len(pairs_kappa),
            "cohen_kappa_median": float(pairs_kappa.median()) if len(pairs_kappa) else float("nan"),
            "unanimous_share": float((self.items_["agreement"] == 1.0)[self.items_["judgements"] >= 2].mean()),
            "rater_agreement_mean": float(self.raters_["rater_agreement"].mean()),
            "loo_agreement": float(judgements["loo_agreement"].mean()),
        }
        for level, value in scale_alphas(counts, labels).items():
            summary[f"krippendorff_alpha_{level}"] = value
        if gold is not None:
            truth = gold.reindex(annotations["task"].to_numpy()).to_numpy()
            known = pd.notna(truth)
            summary["gold_accuracy"] = float((annotations["label"].to_numpy()[known] == truth[known]).mean())
        if skills is not None:
            summary["ds_skill_mean"] = float(skills.mean())
        self.summary_ = summary
        return self

    def _groups(self, data: AnnotationSet, items: pd.DataFrame) -> tuple[list[str], list[str]]:
        """The item columns and rater attributes to report agreement per value of."""
        attributes = [] if data.workers is None else [c for c in data.workers.columns if c != "worker"]
        if self.by is None:
            chosen = [c for c in attributes if 1 < data.workers[c].nunique() <= MAX_GROUPS]  # type: ignore[index]
            return list(data.slice_columns), chosen
        item_columns = [c for c in items.columns if c not in ("task", "text", "split")]
        for column in self.by:
            if column not in attributes and column not in item_columns:
                raise DataError(
                    f"audit --by names {column!r}, which is neither a rater attribute nor an item column of dataset "
                    f"'{data.name}'; rater attributes: {', '.join(sorted(attributes)) or '(none: no workers table)'}; "
                    f"item columns: {', '.join(sorted(item_columns)) or '(none)'}"
                )
        return [c for c in self.by if c not in attributes], [c for c in self.by if c in attributes]

    def _gold(self, items: pd.DataFrame, labels: tuple) -> pd.Series | None:
        """Gold label per task from the first gold column whose values are declared labels."""
        candidates = [self.gold_column] if self.gold_column else list(GOLD_COLUMNS)
        for column in candidates:
            if column not in items.columns or items[column].isna().all():
                if self.gold_column:
                    raise DataError(
                        f"gold column '{column}' is not in the items table of this dataset; "
                        f"items columns: {', '.join(map(str, items.columns))}"
                    )
                continue
            values = items[column].dropna()
            outside = ~values.isin(labels)
            if outside.any():
                if self.gold_column:
                    raise DataError(
                        f"gold column '{column}' holds {values[outside].iloc[0]!r}, which is not a declared "
                        f"label {list(labels)}; name a gold column in the label vocabulary"
                    )
                continue
            self.gold_column_ = column
            return items.set_index("task")[column]
        self.gold_column_ = None
        return None

    def as_metrics(self) -> dict[str, float]:
        """Headline figures as plain floats (for MLflow metrics ``quality/<name>``)."""
        return {k: float(v) for k, v in self.summary_.items() if v is not None and v == v}
