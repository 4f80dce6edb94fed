"""Quality of one run's training labels after its treatments, logged as ``quality/*`` metrics.

Runs in every run, so it sticks to vectorised figures (about 0.1 s on MD-Agreement's 33k
training judgements); the full audit (bootstrap, Dawid-Skene, pairs) is ``smo-impact audit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from smo_impact.data.schema import vote_counts
from smo_impact.quality.agreement import krippendorff_alpha, percent_agreement
from smo_impact.quality.raters import judgement_table

if TYPE_CHECKING:
    from smo_impact.runner.run import RunContext
    from smo_impact.treatments.base import LabelState


def training_label_quality(state: LabelState, ctx: RunContext) -> dict[str, float]:
    """``quality/*`` metrics of a treated training state.

    Args:
        state: The run's training data after its treatment steps (labels aggregated).
        ctx: The run context; ``ctx.untreated_labels`` (majority of all raters on the untreated
            training data) is the reference for realized label noise.

    Returns:
        ``quality/krippendorff_alpha`` and ``quality/percent_agreement`` of the remaining
        judgements, ``quality/judgements_per_item``, ``quality/rater_agreement_mean`` (mean over
        raters of leave-one-out majority agreement) and ``quality/rater_accuracy`` (share of
        judgements equal to the run's training label of their item); with training labels,
        ``quality/label_noise`` (share of labels that differ from the reference) and its two
        directions for binary data, ``quality/false_positive_noise`` (P(label positive | reference
        negative)) and ``quality/false_negative_noise``.
    """
    annotations = state.annotations
    labels_set, positive = tuple(state.labels_set), state.positive_label
    counts = vote_counts(annotations, labels_set).to_numpy()
    metrics: dict[str, float] = {
        "quality/krippendorff_alpha": krippendorff_alpha(counts),
        "quality/percent_agreement": percent_agreement(counts),
        "quality/judgements_per_item": float(counts.sum(axis=1).mean()) if len(counts) else float("nan"),
    }
    judgements = judgement_table(annotations, labels_set, positive)
    per_rater = judgements.groupby("worker", sort=False)["loo_agreement"].mean()
    metrics["quality/rater_agreement_mean"] = float(per_rater.mean()) if per_rater.notna().any() else float("nan")

    labels = state.labels
    if labels is None:
        return metrics
    per_judgement = labels.reindex(judgements["task"].to_numpy())
    training, known = per_judgement.to_numpy(), per_judgement.notna().to_numpy()
    metrics["quality/rater_accuracy"] = (
        float((judgements["label"].to_numpy()[known] == training[known]).mean()) if known.any() else float("nan")
    )
    reference = ctx.untreated_labels.reindex(labels.index)
    compared = reference.notna().to_numpy()
    ref, got = reference.to_numpy()[compared], labels.to_numpy()[compared]
    metrics["quality/label_noise"] = float(np.mean(ref != got)) if compared.any() else float("nan")
    if len(labels_set) == 2:
        neg = ref != positive
        metrics["quality/false_positive_noise"] = float(np.mean(got[neg] == positive)) if neg.any() else float("nan")
        metrics["quality/false_negative_noise"] = float(np.mean(got[~neg] != positive)) if (~neg).any() else float("nan")
    return metrics
