"""Reference definitions the metric tests check against. Nothing here calls smo_impact: these are
scikit-learn calls and brute-force loops written from the definitions."""

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)


def threshold_metrics(y, pred):
    """accuracy ... positive_rate by scikit-learn, with the undefined cases (NaN) spelled out."""
    y, pred = np.asarray(y).astype(int), np.asarray(pred).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    both = 0 < y.sum() < len(y)
    return {
        "accuracy": accuracy_score(y, pred),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0) if y.any() else np.nan,
        "f1": f1_score(y, pred, zero_division=0),
        "macro_f1": f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0) if both else np.nan,
        "fpr": fp / (fp + tn) if fp + tn else np.nan,
        "fnr": fn / (fn + tp) if fn + tp else np.nan,
        "positive_rate": pred.mean(),
    }


def ece_by_loops(y, s, bins=10):
    """ECE written out: bin b holds scores in [b/10, (b+1)/10), the last bin also 1.0."""
    total = 0.0
    for b in range(bins):
        members = [i for i in range(len(s)) if b / bins <= s[i] < (b + 1) / bins or (b == bins - 1 and s[i] == 1.0)]
        if members:
            positive_share = sum(y[i] for i in members) / len(members)
            mean_score = sum(s[i] for i in members) / len(members)
            total += abs(positive_share - mean_score) * len(members) / len(s)
    return total


def all_metrics(y, s, threshold):
    """Every bootstrappable metric of one set of items (NaN where undefined)."""
    y, s = np.asarray(y).astype(int), np.asarray(s, dtype=float)
    out = threshold_metrics(y, (s >= threshold).astype(int))
    out["roc_auc"] = roc_auc_score(y, s) if 0 < y.sum() < len(y) else np.nan
    out["brier"] = brier_score_loss(y, s)
    out["ece"] = ece_by_loops(y, s)
    return out


def roc_scan(y, s):
    """Brute force: (FPR, TPR) of every threshold t in {distinct scores} + {inf}, positive when s >= t."""
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    points = []
    for t in [*sorted(set(s.tolist())), np.inf]:
        flagged = s >= t
        fpr = sum(f for f, yi in zip(flagged, y) if yi == 0) / sum(1 for yi in y if yi == 0)
        tpr = sum(f for f, yi in zip(flagged, y) if yi == 1) / sum(1 for yi in y if yi == 1)
        points.append((fpr, tpr))
    return points


def same(a, b, tol=1e-9):
    """Equal to ``tol``, NaN matching NaN."""
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    return abs(a - b) <= tol


# -- K classes ----------------------------------------------------------------------------------
def multiclass_threshold_metrics(y, pred, k):
    """K-class metrics by scikit-learn over the declared classes 0..k-1, the undefined cases spelled
    out: recall of an absent class is NaN (sklearn says 0), macro-F1 averages the classes present in
    the reference and is NaN with fewer than two of them."""
    from sklearn.metrics import cohen_kappa_score, mean_absolute_error, precision_recall_fscore_support

    y, pred = np.asarray(y).astype(int), np.asarray(pred).astype(int)
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    present = sorted(set(y.tolist()))
    recall = np.array([r if s > 0 else np.nan for r, s in zip(recall, support)])
    return {
        "accuracy": accuracy_score(y, pred),
        "macro_f1": f1_score(y, pred, labels=present, average="macro", zero_division=0) if len(present) >= 2 else np.nan,
        "weighted_f1": f1_score(y, pred, labels=labels, average="weighted", zero_division=0),
        "worst_class_recall": min(recall[c] for c in present),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(float),
        "mae": mean_absolute_error(y, pred),
        "qwk": cohen_kappa_score(y, pred, weights="quadratic", labels=labels, replace_undefined_by=np.nan),
        "confusion": confusion_matrix(y, pred, labels=labels),
    }


def ovr_roc_auc(y, proba):
    """One-vs-rest macro ROC-AUC: sklearn's when every class is present, else the mean over the
    classes whose one-vs-rest AUC exists (brute force over the classes); NaN with fewer than two."""
    y, proba = np.asarray(y).astype(int), np.asarray(proba, dtype=float)
    k = proba.shape[1]
    if len(set(y.tolist())) == k and k > 2:
        return roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=list(range(k)))
    values = [roc_auc_score(y == c, proba[:, c]) for c in range(k) if 0 < (y == c).sum() < len(y)]
    return float(np.mean(values)) if len(values) >= 2 else np.nan


def top_label_ece_by_loops(y, proba, bins=10):
    """Top-label ECE written out: each item's confidence is its largest probability (first on ties)
    and it counts as 1 when that class is the reference."""
    confidence = [max(row) for row in proba]
    correct = [1.0 if list(row).index(max(row)) == yi else 0.0 for row, yi in zip(proba, y)]
    return ece_by_loops(correct, confidence, bins)
