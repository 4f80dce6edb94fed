"""Torch training pieces shared by the MLP head and fine-tuning.

Soft-label cross-entropy, seeding that leaves the global RNG as it was, length-grouped batches,
and the epoch loop with early stopping on the dev split. torch is imported by the callers' modules.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Monitor = Literal["dev/loss", "dev/macro_f1"]
# (step, planned steps, epoch, epochs) -> None, called after every optimizer step.
TrainingProgress = Callable[[int, int, int, int], None]
_training_progress: ContextVar[TrainingProgress | None] = ContextVar("training_progress", default=None)


def quiet_training_progress() -> None:
    """Draw no training bar in this process from now on: a pool worker shares the parent's
    terminal, and its bar would be drawn over the parent's run bar."""
    _training_progress.set(lambda *args: None)


def training_progress() -> TrainingProgress | None:
    """Where this context's training progress goes (None: a bar of train_epochs' own)."""
    return _training_progress.get()


@contextlib.contextmanager
def report_training_progress(callback: TrainingProgress) -> Iterator[None]:
    """Send the step/epoch progress of every :func:`train_epochs` in this context to ``callback``.

    The CLI shows it as a row of its own run bar; without a callback, training draws a transient
    bar of its own (a second live display would fight the run bar for the terminal). Runs in
    worker processes (``execution.executor: local``) do not see the callback.
    """
    token = _training_progress.set(callback)
    try:
        yield
    finally:
        _training_progress.reset(token)


def soft_cross_entropy(logits, targets, class_weight=None):
    """Mean cross-entropy of ``logits`` (n x k) against target distributions ``targets`` (n x k).

    With one-hot targets this is the usual cross-entropy; with the human vote distribution it
    trains the model to reproduce the raters' disagreement. ``class_weight`` (k) weighs each
    example by its target's expected class weight, as scikit-learn's sample weights do (a plain
    mean over the batch, so a batch of one class keeps its weight).
    """
    import torch

    per_example = -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    if class_weight is not None:
        per_example = per_example * (targets @ class_weight)
    return per_example.mean()


def balanced_class_weights(targets: np.ndarray) -> np.ndarray:
    """scikit-learn's ``class_weight='balanced'``, ``n / (k * n_c)``, with ``n_c`` the column sums
    of the (one-hot or soft) targets."""
    targets = np.asarray(targets, dtype=np.float64)
    return (len(targets) / (targets.shape[1] * np.maximum(targets.sum(axis=0), 1e-12))).astype(np.float32)


def target_distribution(y: np.ndarray, soft: np.ndarray | None, n_classes: int = 2) -> np.ndarray:
    """Training targets as n x K rows of class probabilities: one-hot of the class codes ``y``, or the
    raters' vote shares (two classes: ``soft`` is P(class 1) per item, rows ``[1 - p, p]``; K classes:
    ``soft`` is the items x K share matrix)."""
    if soft is not None and np.ndim(soft) == 2:
        shares = np.asarray(soft, dtype=np.float32)
        if shares.shape[1] != n_classes or np.isnan(shares).any() or (shares < 0).any() or (
                np.abs(shares.sum(axis=1) - 1) > 1e-4).any():
            raise ValueError(f"soft labels must be {n_classes}-way distributions (rows of probabilities summing to 1)")
        return shares
    if n_classes != 2:
        return np.eye(n_classes, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    p = np.asarray(y, dtype=np.float32) if soft is None else np.asarray(soft, dtype=np.float32)
    if soft is not None and (np.isnan(p).any() or (p < 0).any() or (p > 1).any()):
        raise ValueError("soft labels must be probabilities in [0, 1] for every training item")
    return np.stack([1.0 - p, p], axis=1)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's RNG seeded, restoring the global RNG state afterwards."""
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Index batches of similar length, so dynamic padding pads little.

    Shuffled items are cut into chunks of 50 batches, each chunk is sorted by length and cut into
    batches, and the batch order is shuffled (the HF ``LengthGroupedSampler`` idea). With
    ``rng=None`` the order is deterministic, longest first (for inference).
    """
    n = len(lengths)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    chunk = n if rng is None else batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, n, chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def dev_scores(proba_positive: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Dev metrics logged per epoch: hard-label log loss, accuracy and macro-F1 at 0.5.

    K classes: ``proba_positive`` is the items x K probability matrix and ``y`` class codes; the
    prediction is the most probable class, macro-F1 and accuracy are the K-class ones.
    """
    from smo_impact.evaluation.metrics import multiclass_confusion, multiclass_confusion_metrics, threshold_metrics

    if np.ndim(proba_positive) == 2:
        proba = np.asarray(proba_positive, dtype=float)
        codes = np.asarray(y, dtype=np.int64)
        counted = multiclass_confusion_metrics(multiclass_confusion(codes, proba.argmax(axis=1), proba.shape[1]))
        return {
            "dev/loss": float(-np.mean(np.log(np.clip(proba[np.arange(len(codes)), codes], 1e-7, 1.0)))),
            "dev/accuracy": float(counted["accuracy"]),
            "dev/macro_f1": float(counted["macro_f1"]),
        }
    p = np.clip(proba_positive, 1e-7, 1 - 1e-7)
    predicted = (proba_positive >= 0.5).astype(int)
    # The same accuracy and macro-F1 as every benchmark (one definition; macro-F1 is NaN when the
    # dev labels hold one class, and early stopping then watches the loss).
    scores = threshold_metrics(y, predicted)
    return {
        "dev/loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "dev/accuracy": scores["accuracy"],
        "dev/macro_f1": scores["macro_f1"],
    }


@dataclass
class History:
    """What a training loop did: loss per step, dev metrics per epoch, the epoch kept."""

    step_loss: list[float] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    epoch_end_steps: list[int] = field(default_factory=list)
    best_epoch: int = 0
    examples: int = 0
    seconds: float = 0.0  # time in training steps only (dev evaluation excluded)

    def curves(self) -> dict[str, list[tuple[int, float]]]:
        """Metric name -> [(step, value)]: ``train/loss`` at every optimizer step; ``dev/*`` and
        ``train/epoch`` at the step that ended each epoch (so both share the MLflow step axis)."""
        out: dict[str, list[tuple[int, float]]] = {"train/loss": list(enumerate(self.step_loss, 1))}
        for epoch, (step, scores) in enumerate(zip(self.epoch_end_steps, self.epochs), 1):
            out.setdefault("train/epoch", []).append((step, float(epoch)))
            for name, value in scores.items():
                out.setdefault(name, []).append((step, value))
        return out

    def metrics(self) -> dict[str, float]:
        """Summary metrics for the run: epochs run, the kept epoch, throughput."""
        return {
            "train/epochs_run": float(len(self.epochs) or (1 if self.step_loss else 0)),
            "train/best_epoch": float(self.best_epoch),
            "train/steps": float(len(self.step_loss)),
            "train/final_loss": self.step_loss[-1] if self.step_loss else float("nan"),
            "train/seconds": self.seconds,
            "train/examples_per_second": self.examples / self.seconds if self.seconds else 0.0,
        }


def train_epochs(
    module: Any,
    batches: Callable[[int], Iterable[tuple[Any, int]]],
    loss_of: Callable[[Any, Any], Any],
    optimizer: Any,
    scheduler: Any | None,
    epochs: int,
    evaluate: Callable[[Any], dict[str, float]] | None = None,
    monitor: Monitor = "dev/macro_f1",
    patience: int = 1,
    max_steps: int | None = None,
    description: str = "training",
    total_steps: int | None = None,
) -> History:
    """Train ``module`` for up to ``epochs``, keep the weights of the best dev epoch.

    Args:
        module: A torch module (put in train mode for steps, eval mode for ``evaluate``).
        batches: ``epoch -> iterable of (batch, batch_size)``.
        loss_of: ``(module, batch) -> scalar loss tensor``.
        evaluate: ``module -> {"dev/loss": ..., "dev/macro_f1": ...}``; ``None`` trains all epochs.
        monitor: The dev metric early stopping watches (loss: lower is better; F1: higher).
        patience: Stop after this many epochs without improvement.
        max_steps: Stop after this many optimizer steps (smoke runs, benchmarks).
        total_steps: The steps planned (epochs x batches, capped by ``max_steps``) for the
            progress bar; early stopping may end before. Default: the bar counts epochs.
    """
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    history = History()
    best_value: float | None = None
    best_state: dict[str, Any] | None = None
    stale = 0
    report = _training_progress.get()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # The caller's bar (the CLI's run bar) when there is one, else a transient bar of our own.
    own = contextlib.nullcontext(None) if report is not None else Progress(*columns, transient=True)
    with own as progress:
        bar = progress.add_task(description, total=total_steps or epochs) if progress is not None else None
        for epoch in range(1, epochs + 1):
            module.train()
            epoch_start = time.perf_counter()
            for batch, size in batches(epoch):
                loss = loss_of(module, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                history.step_loss.append(float(loss.detach()))
                history.examples += size
                steps = len(history.step_loss)
                if report is not None:
                    report(steps, max(total_steps or 0, steps), epoch, epochs)
                elif total_steps:
                    progress.update(bar, completed=steps, description=f"{description}: epoch {epoch}/{epochs}")
                if max_steps is not None and steps >= max_steps:
                    break
            history.seconds += time.perf_counter() - epoch_start
            module.eval()
            if progress is not None and not total_steps:
                progress.advance(bar)
            done = max_steps is not None and len(history.step_loss) >= max_steps
            if evaluate is None:
                history.best_epoch = epoch
                if done:
                    break
                continue
            with torch.inference_mode():
                scores = evaluate(module)
            history.epochs.append(scores)
            history.epoch_end_steps.append(len(history.step_loss))
            # Macro-F1 is undefined (NaN) on single-class dev labels: then the loss decides.
            watched = monitor if not np.isnan(scores[monitor]) else "dev/loss"
            value = scores[watched] if watched == "dev/loss" else -scores[watched]  # lower is better
            improved = best_value is None or value < best_value
            if improved:
                best_value, history.best_epoch, stale = value, epoch, 0
                # Keep the best weights in memory (CPU copies: the live ones keep training).
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
            else:
                stale += 1
            if done or stale >= patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    return history
