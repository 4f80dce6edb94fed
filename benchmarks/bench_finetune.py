"""Fine-tuning throughput: our loop vs a plain Hugging Face Trainer with dynamic padding.

Same model (MiniLM with a fresh 2-class head from the same seed), same MD-Agreement training
subset (majority labels), same batch size, learning rate, warm-up, weight decay and epochs, in one
process, interleaved (ours, Trainer, ours, Trainer, ...) so a busy machine slows both alike. The
only difference is the loop: ours batches texts of similar length (less padding) and skips the
Trainer's machinery. Dev macro-F1 of both on the same dev subset checks that speed cost nothing.

    python benchmarks/bench_finetune.py [--train 512] [--dev 512] [--batch-size 32] [--repeat 2] [--ablate-grouping]
    (needs the data mirror, SMO_IMPACT_DATA_DIR, and `pip install accelerate` for the Trainer)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from smo_impact.data.catalog import load_dataset  # noqa: E402
from smo_impact.models.device import select_device  # noqa: E402
from smo_impact.models.encoders import load_classifier, load_tokenizer  # noqa: E402
from smo_impact.models.finetune import Finetune  # noqa: E402
from smo_impact.treatments.aggregate import majority_vote  # noqa: E402


def subset(split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random items of a split with their majority label (ties positive, as the runner does)."""
    dataset = load_dataset("md-agreement")
    items = dataset.split(split)
    items = items.iloc[np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))]
    labels = majority_vote(dataset.split_annotations(split), dataset.labels, dataset.positive_label, "positive")
    return items["text"].to_numpy(dtype=object), (labels.reindex(items["task"]).to_numpy() == 1).astype(int)


def quality(y: np.ndarray, proba_positive: np.ndarray) -> tuple[float, float]:
    """Dev macro-F1 at 0.5 and ROC-AUC (threshold-free: informative even when one short epoch
    leaves every prediction on the majority side of 0.5)."""
    return f1_score(y, proba_positive >= 0.5, average="macro"), roc_auc_score(y, proba_positive)


def ours(args, train, dev, seed: int, grouped: bool = True) -> tuple[float, tuple[float, float]]:
    params = Finetune.Params(
        encoder="minilm", max_length=args.max_length, batch_size=args.batch_size, eval_batch_size=128,
        learning_rate=args.lr, warmup_ratio=0.1, weight_decay=0.01, epochs=1, device="cpu",
        group_by_length=grouped,
    )
    model = Finetune(params).fit(train[0], train[1], seed=seed)
    return model.metrics_["train/examples_per_second"], quality(dev[1], model.predict_proba(dev[0])[:, 1])


def hf_trainer(args, train, dev, seed: int) -> tuple[float, tuple[float, float]]:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    tokenizer = load_tokenizer("minilm")
    model = load_classifier("minilm", 2, init_seed=seed)

    def as_dataset(texts, labels):
        enc = tokenizer(list(texts), truncation=True, max_length=args.max_length)
        return [{**{k: enc[k][i] for k in enc}, "labels": int(labels[i])} for i in range(len(texts))]

    steps = int(np.ceil(len(train[0]) / args.batch_size))
    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=128,
            num_train_epochs=1, learning_rate=args.lr, weight_decay=0.01, warmup_steps=int(0.1 * steps),
            lr_scheduler_type="linear", save_strategy="no", eval_strategy="no", logging_strategy="no",
            report_to=[], use_cpu=True, seed=seed, disable_tqdm=True, dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model, args=training_args, train_dataset=as_dataset(*train),
            data_collator=DataCollatorWithPadding(tokenizer),  # dynamic padding, random batches
        )
        runtime = trainer.train().metrics["train_runtime"]
        logits = trainer.predict(as_dataset(*dev)).predictions
    proba = np.exp(logits - logits.max(1, keepdims=True))
    return len(train[0]) / runtime, quality(dev[1], proba[:, 1] / proba.sum(1))


def padding_share(texts: np.ndarray, batch_size: int, max_length: int, grouped: bool) -> float:
    """Share of the token slots in padded batches that are padding, for one shuffled epoch."""
    from smo_impact.models.training import length_grouped_batches

    lengths = np.array([len(x) for x in load_tokenizer("minilm")(list(texts), truncation=True, max_length=max_length)["input_ids"]])
    rng = np.random.default_rng(0)
    if grouped:
        batches = length_grouped_batches(lengths, batch_size, rng)
    else:
        order = rng.permutation(len(lengths))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    slots = sum(len(b) * lengths[b].max() for b in batches)
    return 1 - lengths.sum() / slots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=512, help="training examples")
    parser.add_argument("--dev", type=int, default=512, help="dev examples for macro-F1")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-4, help="high enough that 1 short epoch learns")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--ablate-grouping", action="store_true", help="also run our loop with random batches")
    args = parser.parse_args()

    import torch

    select_device("cpu")  # sets torch threads ($SMO_IMPACT_TORCH_THREADS, else usable cores)
    train, dev = subset("train", args.train), subset("dev", args.dev, seed=1)
    print(f"MD-Agreement: {args.train} train / {args.dev} dev examples, batch {args.batch_size}, "
          f"max_length {args.max_length}, 1 epoch, lr {args.lr}, MiniLM-L6, torch threads {torch.get_num_threads()}")
    print(f"padding share of token slots: random batches {padding_share(train[0], args.batch_size, args.max_length, False):.0%}, "
          f"length-grouped {padding_share(train[0], args.batch_size, args.max_length, True):.0%}")
    # Warm-up (discarded): first-call costs (kernels, allocator, file cache) hit neither side.
    small = (train[0][: args.batch_size], train[1][: args.batch_size])
    ours(args, small, small, seed=0)
    hf_trainer(args, small, small, seed=0)
    results: dict[str, list[tuple[float, tuple[float, float]]]] = {"ours": [], "trainer": []}
    contenders = [("ours", ours), ("trainer", hf_trainer)]
    if args.ablate_grouping:  # our loop with random batches: separates the loop from the batching
        results["ours_random"] = []
        contenders.append(("ours_random", lambda *a, **k: ours(*a, **k, grouped=False)))
    for r in range(args.repeat):
        for name, fn in contenders if r % 2 == 0 else contenders[::-1]:  # alternate who goes first
            speed, (f1, auc) = fn(args, train, dev, seed=r)
            results[name].append((speed, (f1, auc)))
            print(f"  round {r + 1} {name:8s} {speed:6.1f} examples/s   dev macro-F1 {f1:.3f}  ROC-AUC {auc:.3f}", flush=True)
    ours_speed = statistics.median(s for s, _ in results["ours"])
    trainer_speed = statistics.median(s for s, _ in results["trainer"])
    rows = [("ours (length-grouped, dynamic padding)", "ours", ours_speed),
            ("HF Trainer (dynamic padding)", "trainer", trainer_speed)]
    if args.ablate_grouping:
        rows.append(("ours (random batches, dynamic padding)", "ours_random",
                     statistics.median(s for s, _ in results["ours_random"])))
    for label, name, speed in rows:
        f1 = statistics.mean(q[0] for _, q in results[name])
        auc = statistics.mean(q[1] for _, q in results[name])
        print(f"{label:40s} {speed:6.1f} examples/s (median of {args.repeat}), dev macro-F1 {f1:.3f}, ROC-AUC {auc:.3f}")
    print(f"{'speed-up ours/Trainer':40s} {ours_speed / trainer_speed:6.2f}x")


if __name__ == "__main__":
    main()
