"""Dawid-Skene EM in vectorised numpy, for annotation sets of millions of judgements.

crowd-kit's ``DawidSkene`` is the reference implementation (and what tests compare against), but
its pandas group-bys cost ~7 s per EM iteration per million judgements here; this version does an
iteration with a few ``np.bincount`` passes (~0.1 s per million). Same model: class priors, one
full confusion matrix per worker, posteriors initialised from the vote shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smo_impact.data.schema import positions_in


@dataclass
class DawidSkeneResult:
    labels: pd.Series  # task -> most probable label
    probas: pd.DataFrame  # task x label posterior
    errors: np.ndarray  # worker x true label x observed label, P(observed | true)
    priors: pd.Series  # label -> prior
    skills: pd.Series  # worker -> mean diagonal of its confusion matrix
    n_iter: int  # iterations run


def dawid_skene(
    annotations: pd.DataFrame, labels: tuple | list, n_iter: int = 100, tol: float = 1e-5
) -> DawidSkeneResult:
    """Fit Dawid-Skene on long-format ``task, worker, label`` judgements.

    Args:
        annotations: One row per judgement.
        labels: The declared label set (columns of the posterior, in this order).
        n_iter: Maximum EM iterations.
        tol: Stop when no posterior moves by more than this.
    """
    label_index = pd.Index(list(labels))
    l_codes = positions_in(annotations["label"], label_index)
    if (l_codes < 0).any():
        raise ValueError("dawid_skene: a label is outside the declared label set")
    t_codes, tasks = pd.factorize(annotations["task"], sort=True)
    w_codes, workers = pd.factorize(annotations["worker"], sort=True)
    n_t, n_w, k = len(tasks), len(workers), len(label_index)

    # Arrays are label-major (k x tasks, k x cells) so that every gather and bincount below reads
    # and writes one contiguous 1-D array: ~3x faster per iteration at 10M judgements than
    # task-major rows.
    # Initialise the posteriors with the vote shares (majority vote, soft).
    posterior = np.empty((k, n_t))
    for c in range(k):
        posterior[c] = np.bincount(t_codes, weights=(l_codes == c).astype(float), minlength=n_t)
    posterior /= posterior.sum(axis=0, keepdims=True)

    obs = w_codes * k + l_codes  # (worker, observed label) cell of each judgement
    iterations = 0
    for iterations in range(1, n_iter + 1):
        # M-step: priors and each worker's confusion matrix from the current posteriors.
        priors = posterior.mean(axis=1)
        counts = np.empty((k, n_w * k))  # true x (worker, observed)
        for true in range(k):
            counts[true] = np.bincount(obs, weights=posterior[true][t_codes], minlength=n_w * k)
        errors = counts.reshape(k, n_w, k).transpose(1, 0, 2)  # worker x true x observed
        errors = errors / np.maximum(errors.sum(axis=2, keepdims=True), 1e-12)
        # E-step: posterior over the true label of each task.
        log_err = np.log(np.clip(errors, 1e-12, None)).transpose(1, 0, 2).reshape(k, n_w * k)
        log_post = np.empty((k, n_t))
        for true in range(k):
            log_post[true] = np.bincount(t_codes, weights=log_err[true][obs], minlength=n_t)
            log_post[true] += np.log(max(priors[true], 1e-12))
        log_post -= log_post.max(axis=0, keepdims=True)
        new = np.exp(log_post)
        new /= new.sum(axis=0, keepdims=True)
        shift = np.abs(new - posterior).max()
        posterior = new
        if shift < tol:
            break
    posterior = posterior.T  # tasks x labels

    probas = pd.DataFrame(posterior, index=pd.Index(tasks, name="task"), columns=list(label_index))
    best = pd.Series(np.asarray(label_index, dtype=object)[posterior.argmax(axis=1)], index=probas.index, name="label")
    skills = pd.Series(np.diagonal(errors, axis1=1, axis2=2).mean(axis=1), index=pd.Index(workers, name="worker"), name="skill")
    return DawidSkeneResult(best.infer_objects(), probas, errors, pd.Series(priors, index=list(label_index)), skills, iterations)
