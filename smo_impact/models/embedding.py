"""Frozen-encoder sentence embeddings with a small head: ``embedding_logreg`` and ``embedding_mlp``.

The encoder never trains, so the embeddings of a dataset are computed once per (data digest,
encoder, pooling, max length, normalisation) and reused, through the feature cache, by every arm,
seed and later experiment. Only the head is fit per run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from smo_impact.data.schema import AnnotationSet
from smo_impact.models.base import DevSet
from smo_impact.models.encoders import check_encoder_name, fingerprint
from smo_impact.models.features import Features
from smo_impact.models.training import Monitor


class EmbeddingFeaturizer:
    """Mean- (or CLS-) pooled last hidden states of a frozen encoder, one row per item."""

    def __init__(
        self,
        encoder: str,
        pooling: Literal["mean", "cls"] = "mean",
        max_length: int = 128,
        normalize: bool = True,
        batch_size: int = 64,
        init_seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.encoder = encoder
        self.pooling = pooling
        self.max_length = max_length
        self.normalize = normalize
        self.batch_size = batch_size
        self.init_seed = init_seed
        self.device = device

    def cache_key(self) -> dict[str, Any]:
        # Batch size and device change only float rounding, not the features: not in the key.
        import importlib.metadata as md

        return {
            "featurizer": "embedding",
            **fingerprint(self.encoder, self.init_seed),
            "pooling": self.pooling,
            "max_length": self.max_length,
            "normalize": self.normalize,
            "transformers": md.version("transformers"),
        }

    def featurize(self, dataset: AnnotationSet) -> Features:
        matrix = self.embed(dataset.items["text"].astype(str).tolist())
        return Features(matrix=matrix, tasks=pd.Index(dataset.items["task"]))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings (float32, n x hidden) of ``texts``, in their order."""
        import torch
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from smo_impact.models.device import select_device
        from smo_impact.models.encoders import load_encoder, load_tokenizer, pad_batch, tokenize
        from smo_impact.models.training import length_grouped_batches

        device = select_device(self.device)  # type: ignore[arg-type]
        tokenizer = load_tokenizer(self.encoder)
        model = load_encoder(self.encoder, self.init_seed).to(device)
        ids = tokenize(tokenizer, texts, self.max_length)
        lengths = np.array([len(x) for x in ids])
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=True) as progress, torch.inference_mode():
            bar = progress.add_task(f"embedding texts ({self.encoder})", total=len(texts))
            for batch in length_grouped_batches(lengths, self.batch_size, None):
                inputs = {k: v.to(device) for k, v in pad_batch([ids[i] for i in batch], tokenizer.pad_token_id).items()}
                hidden = model(**inputs).last_hidden_state
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out[batch] = pooled.float().cpu().numpy()
                progress.advance(bar, len(batch))
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


class EncoderParams(BaseModel):
    """Parameters of the frozen encoder (they decide the cached embeddings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    encoder: str = Field("minilm", description="'minilm' (offline), 'tiny' (CI), a model directory or hub name.")
    pooling: Literal["mean", "cls"] = Field("mean", description="How token states become one vector.")
    max_length: int = Field(128, ge=8, le=512, description="Tokens per text; longer texts are truncated.")
    normalize: bool = Field(True, description="L2-normalise embeddings (as sentence-transformers does).")
    embed_batch_size: int = Field(64, ge=1, description="Texts per encoder forward pass.")
    init_seed: int = Field(0, ge=0, description="Seed of the tiny encoder's random weights (tiny only).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available.")

    @field_validator("encoder")
    @classmethod
    def _known_encoder(cls, value: str) -> str:
        return check_encoder_name(value)


class _EmbeddingModel:
    """Shared featurizer wiring for the heads below."""

    params: EncoderParams

    def __init__(self, params: EncoderParams) -> None:
        self.params = params

    def featurizer(self) -> EmbeddingFeaturizer:
        p = self.params
        return EmbeddingFeaturizer(p.encoder, p.pooling, p.max_length, p.normalize, p.embed_batch_size, p.init_seed, p.device)


class EmbeddingLogreg(_EmbeddingModel):
    """Logistic regression on frozen sentence embeddings.

    Soft labels train it by cross-entropy against the vote share: each item appears once as
    negative with weight ``1 - p`` and once as positive with weight ``p`` (K classes: once per
    class, weighted by that class's vote share; multinomial logistic regression).
    """

    name: ClassVar[str] = "embedding_logreg"
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"soft_labels"})
    multiclass: ClassVar[bool] = True

    class Params(EncoderParams):
        C: float = Field(1.0, gt=0.0, description="Inverse regularisation strength.")
        class_weight: Literal["balanced"] | None = None
        max_iter: int = Field(2000, ge=10)

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int, soft_labels: np.ndarray | None = None) -> EmbeddingLogreg:
        from sklearn.linear_model import LogisticRegression

        weights = None
        if soft_labels is not None and np.ndim(soft_labels) == 2:  # K-way vote shares, items x K
            shares = np.asarray(soft_labels, dtype=float)
            k = shares.shape[1]
            X, y, weights = np.vstack([X] * k), np.repeat(np.arange(k), len(shares)), shares.T.ravel()
            keep = weights > 0  # a class no rater chose for an item adds nothing to the loss
            X, y, weights = X[keep], y[keep], weights[keep]
        elif soft_labels is not None:
            p = np.asarray(soft_labels, dtype=float)
            X, y, weights = np.vstack([X, X]), np.r_[np.zeros(len(p), int), np.ones(len(p), int)], np.r_[1 - p, p]
        self.classifier_ = LogisticRegression(
            C=self.params.C, class_weight=self.params.class_weight, max_iter=self.params.max_iter, random_state=seed
        ).fit(X, y, sample_weight=weights)
        self.metrics_ = {"train/soft_labels": float(soft_labels is not None)}
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.classifier_.predict_proba(X)

    @property
    def classes_(self) -> np.ndarray:
        return self.classifier_.classes_

    def save(self, directory: Path) -> None:
        """The head as skops (no pickle) plus the encoder parameters that produced its inputs."""
        import skops.io

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        skops.io.dump(self.classifier_, directory / "head.skops")
        (directory / "model.json").write_text(json.dumps({"name": self.name, "params": self.params.model_dump()}, indent=2))


class EmbeddingMlp(_EmbeddingModel):
    """A one-hidden-layer torch MLP on frozen sentence embeddings, early-stopped on dev."""

    name: ClassVar[str] = "embedding_mlp"
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"soft_labels", "dev", "n_classes"})
    multiclass: ClassVar[bool] = True  # K outputs when the runner passes n_classes

    class Params(EncoderParams):
        hidden: int = Field(256, ge=1, description="Hidden units.")
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        learning_rate: float = Field(1e-3, gt=0.0)
        weight_decay: float = Field(1e-4, ge=0.0)
        batch_size: int = Field(64, ge=1, description="Training examples per optimizer step.")
        epochs: int = Field(30, ge=1)
        patience: int = Field(3, ge=1, description="Stop after this many epochs without dev improvement.")
        monitor: Monitor = "dev/macro_f1"
        dev_labels: Literal["treated", "reference"] = Field(
            "treated",
            description="Dev labels for early stopping: the arm's own steps applied to the dev judgements "
            "(treated: what a team with only its treated labels has), or the untreated majority of all raters.",
        )
        class_weight: Literal["balanced"] | None = Field(None, description="balanced: weigh classes by n / (k * n_class).")

    classes_ = np.array([0, 1])

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        seed: int,
        soft_labels: np.ndarray | None = None,
        dev: DevSet | None = None,
        n_classes: int = 2,
    ) -> EmbeddingMlp:
        import torch

        from smo_impact.models.device import select_device
        from smo_impact.models.training import (
            balanced_class_weights,
            dev_scores,
            seeded,
            soft_cross_entropy,
            target_distribution,
            train_epochs,
        )

        p = self.params
        self.device_ = select_device(p.device)
        features = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device_)
        self.classes_ = np.arange(n_classes)
        target_rows = target_distribution(y, soft_labels, n_classes)
        targets = torch.as_tensor(target_rows, device=self.device_)
        weight = None if p.class_weight is None else torch.as_tensor(balanced_class_weights(target_rows), device=self.device_)
        rng = np.random.default_rng(seed)

        def batches(epoch: int):
            order = rng.permutation(len(features))
            for i in range(0, len(order), p.batch_size):
                idx = torch.as_tensor(order[i : i + p.batch_size], device=self.device_)
                yield idx, len(idx)

        def evaluate(module):
            proba = self._proba(module, dev.X)
            return dev_scores(proba[:, 1], dev.y) if n_classes == 2 else dev_scores(proba, dev.y)

        with seeded(seed):
            self.module_ = _mlp(features.shape[1], p.hidden, p.dropout, n_classes).to(self.device_)
            optimizer = torch.optim.AdamW(self.module_.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
            history = train_epochs(
                self.module_,
                batches,
                lambda m, idx: soft_cross_entropy(m(features[idx]), targets[idx], weight),
                optimizer,
                None,
                p.epochs,
                evaluate if dev is not None else None,
                p.monitor,
                p.patience,
                description="training MLP head",
                total_steps=p.epochs * math.ceil(len(features) / p.batch_size),
            )
        self.metrics_ = {**history.metrics(), "train/soft_labels": float(soft_labels is not None)}
        self.curves_ = history.curves()
        return self

    def _proba(self, module: Any, X: np.ndarray) -> np.ndarray:
        import torch

        module.eval()
        with torch.inference_mode():
            logits = module(torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device_))
            return torch.softmax(logits, dim=-1).cpu().numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._proba(self.module_, X)

    def save(self, directory: Path) -> None:
        """Weights as safetensors plus a JSON description of the architecture and encoder."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous().cpu() for k, v in self.module_.state_dict().items()}, directory / "head.safetensors")
        (directory / "model.json").write_text(json.dumps({"name": self.name, "params": self.params.model_dump()}, indent=2))


def _mlp(inputs: int, hidden: int, dropout: float, outputs: int = 2):
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout), torch.nn.Linear(hidden, outputs)
    )
