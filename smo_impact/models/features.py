"""Text features, computed once per (data digest, featurizer params) and reused.

Every arm, grid point and seed of an experiment trains on the same texts; only the labels
differ. So features are computed once for all items of a dataset, held in memory for the rest of
the process, and stored on disk (with a checksum) for later runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from smo_impact.data.catalog import cache_dir, sha256_file
from smo_impact.data.schema import AnnotationSet


@dataclass(frozen=True)
class Features:
    """A feature matrix with one row per item, addressable by task id."""

    matrix: Any  # scipy.sparse.csr_matrix or np.ndarray
    tasks: pd.Index

    def rows(self, tasks: pd.Index | list | np.ndarray) -> Any:
        positions = self.tasks.get_indexer(pd.Index(tasks))
        if (positions < 0).any():
            missing = pd.Index(tasks)[positions < 0][:3].tolist()
            raise KeyError(f"no features for task(s) {missing}")
        return self.matrix[positions]


class Featurizer(Protocol):
    """Turns item texts into a feature matrix. Unsupervised: labels are never seen."""

    def cache_key(self) -> dict[str, Any]:
        """Everything that changes the features (name, parameters, versions)."""
        ...

    def featurize(self, dataset: AnnotationSet) -> Features: ...


class TextFeaturizer:
    """The item texts themselves, for models that tokenize inside ``fit`` (fine-tuning).

    Nothing to compute, so nothing is written to disk (``persist = False``).
    """

    persist = False

    def cache_key(self) -> dict[str, Any]:
        return {"featurizer": "text"}

    def featurize(self, dataset: AnnotationSet) -> Features:
        texts = dataset.items["text"].astype(str).to_numpy(dtype=object)
        return Features(matrix=texts, tasks=pd.Index(dataset.items["task"]))


@dataclass
class CacheStats:
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    rebuilt_corrupt: int = 0
    featurize_seconds: float = 0.0

    def as_metrics(self) -> dict[str, float]:
        return {f"features/{k}": float(v) for k, v in self.__dict__.items()}


@dataclass
class FeatureCache:
    """In-memory and on-disk feature cache keyed by data digest and featurizer key.

    The disk directory defaults to ``$SMO_IMPACT_CACHE_DIR/features``; ``disk=False`` keeps
    everything in memory. Files carry a sha256 in a sidecar; a corrupt or truncated file is
    detected, counted in ``stats.rebuilt_corrupt`` and rebuilt, never used. A featurizer with
    ``persist = False`` (e.g. raw texts) is kept in memory only.
    """

    directory: Path | None = None
    disk: bool = True
    stats: CacheStats = field(default_factory=CacheStats)
    _memory: dict[str, Features] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.directory is None:
            self.directory = cache_dir() / "features"

    @staticmethod
    def key(dataset: AnnotationSet, featurizer: Featurizer) -> str:
        text = json.dumps({"data": dataset.digest(), **featurizer.cache_key()}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def get(self, dataset: AnnotationSet, featurizer: Featurizer) -> Features:
        key = self.key(dataset, featurizer)
        if key in self._memory:
            self.stats.memory_hits += 1
            return self._memory[key]
        disk = self.disk and getattr(featurizer, "persist", True)
        features = self._load(key) if disk else None
        if features is not None:
            self.stats.disk_hits += 1
        else:
            self.stats.misses += 1
            start = time.perf_counter()
            features = featurizer.featurize(dataset)
            self.stats.featurize_seconds += time.perf_counter() - start
            if disk:
                self._store(key, features)
        self._memory[key] = features
        return features

    # -- disk format: <key>.npz (matrix) + <key>.json (tasks, kind, sha256 of the npz) ----------
    def _paths(self, key: str) -> tuple[Path, Path]:
        assert self.directory is not None
        return self.directory / f"{key}.npz", self.directory / f"{key}.json"

    def _load(self, key: str) -> Features | None:
        import scipy.sparse as sp

        data_path, meta_path = self._paths(key)
        if not (data_path.is_file() and meta_path.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if sha256_file(data_path) != meta["sha256"]:
                raise ValueError("checksum mismatch")
            if meta["kind"] == "sparse":
                matrix = sp.load_npz(data_path).tocsr()
            else:
                with np.load(data_path, allow_pickle=False) as npz:
                    matrix = npz["matrix"]
            tasks = pd.Index(meta["tasks"])
            if matrix.shape[0] != len(tasks):
                raise ValueError("row count mismatch")
        except Exception:  # noqa: BLE001 - any unreadable cache entry is rebuilt
            self.stats.rebuilt_corrupt += 1
            return None
        return Features(matrix=matrix, tasks=tasks)

    def _store(self, key: str, features: Features) -> None:
        import scipy.sparse as sp

        data_path, meta_path = self._paths(key)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        # Write to temporary names then rename, so a killed process never leaves a half file.
        tmp_data = data_path.with_name(f".{key}.{os.getpid()}.npz")
        if sp.issparse(features.matrix):
            sp.save_npz(tmp_data, sp.csr_matrix(features.matrix), compressed=False)
            kind = "sparse"
        else:
            np.savez(tmp_data, matrix=np.asarray(features.matrix))
            kind = "dense"
        meta = {"kind": kind, "tasks": list(map(str, features.tasks)), "sha256": sha256_file(tmp_data)}
        tmp_meta = meta_path.with_name(f".{key}.{os.getpid()}.json")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_data, data_path)
        os.replace(tmp_meta, meta_path)

