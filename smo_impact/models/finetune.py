"""``finetune``: full fine-tuning of a pretrained encoder for sequence classification.

Our own short torch loop rather than the HF Trainer: batches grouped by length with dynamic
padding (tweets vary from 5 to 100 tokens, so this pads little), AdamW with linear warm-up and
decay, early stopping on the dev split keeping the best epoch's weights, soft-label cross-entropy.
Seeded and deterministic on CPU; the global RNG is left as it was.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from smo_impact.models.base import DevSet
from smo_impact.models.encoders import check_encoder_name
from smo_impact.models.features import TextFeaturizer
from smo_impact.models.training import Monitor


class Finetune:
    """Fine-tune an encoder (default: the offline MiniLM) end to end on the run's labels."""

    name: ClassVar[str] = "finetune"
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"soft_labels", "dev", "n_classes"})
    multiclass: ClassVar[bool] = True  # a K-output head when the runner passes n_classes
    # Minutes of CPU/GPU per run: the runner samples MLflow's system metrics while one trains.
    log_system_metrics: ClassVar[bool] = True
    cached_features: ClassVar[bool] = False  # its "features" are the texts: no cheap model fits on them
    classes_ = np.array([0, 1])

    class Params(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")

        encoder: str = Field("minilm", description="'minilm' (offline), 'tiny' (CI), a model directory or hub name.")
        max_length: int = Field(128, ge=8, le=512, description="Tokens per text; longer texts are truncated.")
        batch_size: int = Field(32, ge=1, description="Training examples per optimizer step.")
        eval_batch_size: int = Field(128, ge=1, description="Texts per forward pass when predicting.")
        learning_rate: float = Field(5e-5, gt=0.0)
        weight_decay: float = Field(0.01, ge=0.0)
        warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Share of steps with a rising learning rate.")
        epochs: int = Field(3, ge=1)
        patience: int = Field(1, ge=1, description="Stop after this many epochs without dev improvement.")
        monitor: Monitor = "dev/macro_f1"
        dev_labels: Literal["treated", "reference"] = Field(
            "treated",
            description="Dev labels for early stopping: the arm's own steps applied to the dev judgements "
            "(treated: what a team with only its treated labels has), or the untreated majority of all raters.",
        )
        max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (smoke runs).")
        group_by_length: bool = Field(True, description="Batch texts of similar length (less padding).")
        class_weight: Literal["balanced"] | None = Field(None, description="balanced: weigh classes by n / (k * n_class).")
        device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available.")

        @field_validator("encoder")
        @classmethod
        def _known_encoder(cls, value: str) -> str:
            return check_encoder_name(value)

    def __init__(self, params: Params) -> None:
        self.params = params

    def featurizer(self) -> TextFeaturizer:
        return TextFeaturizer()

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        seed: int,
        soft_labels: np.ndarray | None = None,
        dev: DevSet | None = None,
        n_classes: int = 2,
    ) -> Finetune:
        """Fine-tune on texts ``X`` with labels ``y`` (class codes ``0 .. n_classes - 1``), or vote
        shares ``soft_labels`` (P(class 1) for two classes, items x K shares for K)."""
        import torch
        from transformers import get_linear_schedule_with_warmup

        from smo_impact.models.device import select_device
        from smo_impact.models.encoders import load_classifier, load_tokenizer, pad_batch, tokenize
        from smo_impact.models.training import (
            balanced_class_weights,
            dev_scores,
            length_grouped_batches,
            seeded,
            soft_cross_entropy,
            target_distribution,
            train_epochs,
        )

        p = self.params
        self.device_ = select_device(p.device)
        self.tokenizer_ = load_tokenizer(p.encoder)
        self.model_ = load_classifier(p.encoder, n_classes, init_seed=seed).to(self.device_)
        self.classes_ = np.arange(n_classes)
        ids = tokenize(self.tokenizer_, list(X), p.max_length)
        lengths = np.array([len(x) for x in ids])
        target_rows = target_distribution(y, soft_labels, n_classes)
        targets = torch.as_tensor(target_rows)
        weight = None if p.class_weight is None else torch.as_tensor(balanced_class_weights(target_rows)).to(self.device_)
        rng = np.random.default_rng(seed)
        pad_id = self.tokenizer_.pad_token_id

        def batches(epoch: int):
            if p.group_by_length:
                order = length_grouped_batches(lengths, p.batch_size, rng)
            else:
                perm = rng.permutation(len(ids))
                order = [perm[i : i + p.batch_size] for i in range(0, len(perm), p.batch_size)]
            for batch in order:
                inputs = {k: v.to(self.device_) for k, v in pad_batch([ids[i] for i in batch], pad_id).items()}
                yield (inputs, targets[batch].to(self.device_)), len(batch)

        def loss_of(model: Any, batch: tuple[dict[str, Any], Any]):
            inputs, target = batch
            return soft_cross_entropy(model(**inputs).logits, target, weight)

        def evaluate(model: Any) -> dict[str, float]:
            proba = self._proba(dev.X)
            return dev_scores(proba[:, 1], dev.y) if n_classes == 2 else dev_scores(proba, dev.y)

        total_steps = p.epochs * math.ceil(len(ids) / p.batch_size)
        if p.max_steps is not None:
            total_steps = min(total_steps, p.max_steps)
        # No weight decay on biases and LayerNorm weights (the BERT recipe).
        decay = [q for n, q in self.model_.named_parameters() if q.ndim > 1]
        no_decay = [q for n, q in self.model_.named_parameters() if q.ndim <= 1]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": p.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=p.learning_rate,
        )
        scheduler = get_linear_schedule_with_warmup(optimizer, int(p.warmup_ratio * total_steps), total_steps)
        with seeded(seed):  # dropout draws from torch's RNG
            history = train_epochs(
                self.model_,
                batches,
                loss_of,
                optimizer,
                scheduler,
                p.epochs,
                evaluate if dev is not None else None,
                p.monitor,
                p.patience,
                p.max_steps,
                description=f"fine-tuning {p.encoder}",
                total_steps=total_steps,
            )
        self.model_.eval()
        self.metrics_ = {**history.metrics(), "train/soft_labels": float(soft_labels is not None)}
        self.curves_ = history.curves()
        return self

    def _proba(self, texts: np.ndarray) -> np.ndarray:
        return classify_texts(self.model_, self.tokenizer_, texts, self.params.max_length,
                              self.params.eval_batch_size, self.device_)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(class) per text, columns in ``classes_`` order (the best dev epoch's weights)."""
        return self._proba(X)

    def save(self, directory: Path) -> None:
        """``save_pretrained`` (safetensors weights) with the tokenizer, loadable by transformers."""
        from transformers.utils import logging as hf_logging

        directory = Path(directory)
        hf_logging.disable_progress_bar()  # a "Writing model shards" bar per run is noise in a sweep
        try:
            self.model_.save_pretrained(directory, safe_serialization=True)
        finally:
            hf_logging.enable_progress_bar()
        self.tokenizer_.save_pretrained(directory)
        (directory / "smo_model.json").write_text(json.dumps({"name": self.name, "params": self.params.model_dump()}, indent=2))


def classify_texts(model: Any, tokenizer: Any, texts: Any, max_length: int, batch_size: int, device: Any) -> np.ndarray:
    """P(class) per text from a sequence classifier, in length-grouped batches padded per batch."""
    import torch

    from smo_impact.models.encoders import pad_batch, tokenize
    from smo_impact.models.training import length_grouped_batches

    ids = tokenize(tokenizer, [str(t) for t in texts], max_length)
    out = np.zeros((len(ids), model.config.num_labels), dtype=np.float64)
    model.eval()
    with torch.inference_mode():
        for batch in length_grouped_batches(np.array([len(x) for x in ids]), batch_size, None):
            inputs = pad_batch([ids[i] for i in batch], tokenizer.pad_token_id)
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits
            out[batch] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return out
