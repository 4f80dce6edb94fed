"""Inter-annotator agreement: percent agreement, Cohen's, Fleiss' and Krippendorff's coefficients.

Everything starts from the items x labels vote-count matrix (``data.schema.vote_counts``), never
from a raters x items matrix: MD-Agreement has >800 raters who each saw a few dozen of 10k items,
so a dense rater matrix is 99% missing, while the count matrix is 10k x 2 and every coefficient
below is a few numpy operations on it. Values equal those of ``krippendorff``, ``statsmodels`` and
``scikit-learn`` on the same data (the tests compare).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from smo_impact.data.schema import positions_in

Level = Literal["nominal", "ordinal", "interval"]
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval")


def _pairable(counts: np.ndarray) -> np.ndarray:
    """Rows of a vote-count matrix with at least two judgements (the only ones that carry agreement)."""
    counts = np.asarray(counts, dtype=float)
    return counts[counts.sum(axis=1) >= 2]


def pairable_items(counts: np.ndarray) -> int:
    """How many items have at least two judgements: the items every agreement figure rests on."""
    return int((np.asarray(counts).sum(axis=1) >= 2).sum())


def interval_values(labels: tuple | list) -> np.ndarray | None:
    """The labels as numbers for interval alpha, or None when the scale is not numeric or has
    fewer than three labels (on two labels every level of alpha is the nominal one)."""
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in labels)
    return np.asarray(labels, dtype=float) if numeric and len(labels) > 2 else None


def scale_alphas(counts: np.ndarray, labels: tuple | list) -> dict[str, float]:
    """Alpha at the levels a label scale supports beyond nominal: ``ordinal`` on 3+ ordered labels
    (declared order, benign to harmful), ``interval`` when those labels are numbers (their values
    as distances: ConvAbuse's 1 .. -3 severity)."""
    out: dict[str, float] = {}
    if len(labels) > 2:
        out["ordinal"] = krippendorff_alpha(counts, "ordinal")
    values = interval_values(labels)
    if values is not None:
        out["interval"] = krippendorff_alpha(counts, "interval", values)
    return out


def percent_agreement(counts: np.ndarray) -> float:
    """Share of agreeing rater pairs per item, averaged over items with >= 2 judgements.

    For an item with ``m`` judgements and ``n_c`` votes for label ``c`` this is
    ``sum_c n_c (n_c - 1) / (m (m - 1))`` (Fleiss' ``P_i``); NaN when no item has two judgements.
    """
    counts = _pairable(counts)
    if not len(counts):
        return float("nan")
    m = counts.sum(axis=1)
    return float(np.mean((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))))


@dataclass(frozen=True)
class FleissKappa:
    """Fleiss' kappa and the design it was computed on.

    Attributes:
        kappa: The coefficient (NaN when undefined).
        balanced: Whether every item had the same number of judgements.
        raters_per_item: The number of judgements per item used.
        items_used: Items the coefficient was computed on.
        items_total: Items with at least two judgements.
    """

    kappa: float
    balanced: bool
    raters_per_item: int
    items_used: int
    items_total: int

    @property
    def note(self) -> str:
        if self.balanced:
            return f"balanced design: {self.raters_per_item} judgements on each of {self.items_used} items"
        return (
            f"unbalanced design: Fleiss' kappa assumes a fixed number of judgements per item, so it "
            f"was computed on the {self.items_used} of {self.items_total} items with the most common "
            f"count ({self.raters_per_item}); prefer Krippendorff's alpha here"
        )


def fleiss_kappa(counts: np.ndarray) -> FleissKappa:
    """Fleiss' kappa (1971) of an items x labels vote-count matrix.

    Fleiss' kappa needs the same number of judgements on every item. When the design is
    unbalanced it is computed on the items with the most common number of judgements (ties: the
    larger count) and the result says so (``balanced=False``).
    """
    counts = _pairable(counts)
    if not len(counts):
        return FleissKappa(float("nan"), True, 0, 0, 0)
    m = counts.sum(axis=1).astype(int)
    sizes, freq = np.unique(m, return_counts=True)
    balanced = len(sizes) == 1
    n = int(sizes[freq == freq.max()].max())
    table = counts[m == n]
    p_j = table.sum(axis=0) / table.sum()
    p_i = ((table * (table - 1)).sum(axis=1)) / (n * (n - 1))
    p_bar, p_e = p_i.mean(), float((p_j**2).sum())
    kappa = float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else float("nan")
    return FleissKappa(kappa, balanced, n, len(table), len(counts))


def _delta(level: str, marginals: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """Squared difference function of Krippendorff's alpha for each pair of label positions."""
    k = len(marginals)
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "ordinal":
        # delta_ck = (sum of marginals from c to k) - (n_c + n_k) / 2, squared.
        cum = np.concatenate([[0.0], np.cumsum(marginals)])
        lo, hi = np.minimum.outer(np.arange(k), np.arange(k)), np.maximum.outer(np.arange(k), np.arange(k))
        between = cum[hi + 1] - cum[lo]
        return (between - (marginals[:, None] + marginals[None, :]) / 2.0) ** 2
    if level == "interval":
        v = np.arange(k, dtype=float) if values is None else np.asarray(values, dtype=float)
        return np.subtract.outer(v, v) ** 2
    raise ValueError(f"level must be one of {', '.join(LEVELS)}; got {level!r}")


def _unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """Each item's contribution to the coincidence matrix, shape (items, labels, labels)."""
    m = counts.sum(axis=1)
    outer = counts[:, :, None] * counts[:, None, :]
    idx = np.arange(counts.shape[1])
    outer[:, idx, idx] -= counts
    return outer / (m - 1)[:, None, None]


def _alpha_from_coincidences(o: np.ndarray, level: str, values: np.ndarray | None) -> float:
    marginals = o.sum(axis=1)
    n = marginals.sum()
    delta = _delta(level, marginals, values)
    expected = (np.outer(marginals, marginals) * delta).sum()
    if n <= 1 or expected <= 0:
        return float("nan")
    return float(1.0 - (n - 1) * (o * delta).sum() / expected)


def krippendorff_alpha(counts: np.ndarray, level: Level = "nominal", values: np.ndarray | None = None) -> float:
    """Krippendorff's alpha of an items x labels vote-count matrix (missing judgements allowed).

    Args:
        counts: Votes per item (rows) and label (columns, in the declared label order).
        level: ``nominal``, ``ordinal`` (columns are ordered labels) or ``interval``.
        values: Numeric label values for ``interval`` (default: 0, 1, 2, ...).

    Returns:
        Alpha, or NaN when undefined (fewer than two pairable judgements or a single label used).
    """
    counts = _pairable(counts)
    if not len(counts):
        return float("nan")
    return _alpha_from_coincidences(_unit_coincidences(counts).sum(axis=0), level, values)


def krippendorff_alpha_ci(
    counts: np.ndarray,
    rng: np.random.Generator,
    level: Level = "nominal",
    n_boot: int = 1000,
    confidence: float = 0.95,
    values: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of alpha, resampling items with replacement.

    Items (not single judgements) are resampled because judgements on one item are dependent. Each
    replicate reweights the per-item coincidence contributions, so 1000 replicates on 10k items
    take well under a second.
    """
    counts = _pairable(counts)
    if len(counts) < 2 or n_boot < 1:
        return float("nan"), float("nan")
    contributions = _unit_coincidences(counts).reshape(len(counts), -1)
    k = counts.shape[1]
    estimates = np.empty(n_boot)
    chunk = max(1, 2_000_000 // len(counts))  # bounds the weight matrix to ~16 MB
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = rng.integers(0, len(counts), size=(size, len(counts)))
        weights = np.stack([np.bincount(d, minlength=len(counts)) for d in draws]).astype(float)
        for b, o in enumerate(weights @ contributions):
            estimates[start + b] = _alpha_from_coincidences(o.reshape(k, k), level, values)
    tail = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(estimates, [tail, 1.0 - tail])
    return float(low), float(high)


def pairwise_cohen_kappa(
    annotations: pd.DataFrame, labels: tuple | list, min_shared: int = 20
) -> pd.DataFrame:
    """Cohen's kappa for every pair of raters who labeled at least ``min_shared`` common items.

    Pairs are found from the items (each item's raters, pairwise), so the cost grows with
    judgements per item, not with the square of the number of raters.

    Returns:
        One row per pair: ``worker_a``, ``worker_b`` (sorted), ``shared_items``, ``agreement``
        (observed share of equal labels) and ``kappa`` (NaN when chance agreement is 1), sorted
        by ``shared_items`` descending.
    """
    columns = ["worker_a", "worker_b", "shared_items", "agreement", "kappa"]
    k = len(labels)
    frame = annotations[["task", "worker", "label"]].drop_duplicates(["task", "worker"])
    worker_code, workers = pd.factorize(frame["worker"], sort=True)
    workers = np.asarray(workers, dtype=object)
    label_code = positions_in(frame["label"], labels)
    coded = pd.DataFrame({"task": frame["task"].to_numpy(), "w": worker_code, "y": label_code})
    coded = coded[coded["y"] >= 0]
    pairs = coded.merge(coded, on="task", suffixes=("_a", "_b"))
    pairs = pairs[pairs["w_a"] < pairs["w_b"]]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    key = pairs["w_a"].to_numpy(np.int64) * len(workers) + pairs["w_b"].to_numpy(np.int64)
    keys, pair_index = np.unique(key, return_inverse=True)
    confusion = np.bincount(
        pair_index * k * k + pairs["y_a"].to_numpy() * k + pairs["y_b"].to_numpy(),
        minlength=len(keys) * k * k,
    ).reshape(len(keys), k, k).astype(float)
    shared = confusion.sum(axis=(1, 2))
    keep = shared >= min_shared
    confusion, shared, keys = confusion[keep], shared[keep], keys[keep]
    observed = np.trace(confusion, axis1=1, axis2=2) / shared
    chance = (confusion.sum(axis=2) * confusion.sum(axis=1)).sum(axis=1) / shared**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(chance < 1, (observed - chance) / (1 - chance), np.nan)
    result = pd.DataFrame(
        {
            "worker_a": workers[keys // len(workers)],
            "worker_b": workers[keys % len(workers)],
            "shared_items": shared.astype(int),
            "agreement": observed,
            "kappa": kappa,
        },
        columns=columns,
    )
    return result.sort_values(["shared_items", "worker_a", "worker_b"], ascending=[False, True, True], ignore_index=True)
