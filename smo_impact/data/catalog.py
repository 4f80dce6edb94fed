"""Built-in datasets: where each file lives upstream, its checksum, and how to load it.

Files are read from a local mirror when ``SMO_IMPACT_DATA_DIR`` names one, else from the user
cache (``SMO_IMPACT_CACHE_DIR``, default ``~/.cache/smo-impact``) where ``fetch`` downloads them.
Every file's sha256 is checked before use: a mismatch is an error, never a silent use.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from smo_impact.data.lewidi import load_lewidi
from smo_impact.data.schema import AnnotationSet
from smo_impact.errors import DataError
from smo_impact.registry import Registry, unknown_name_message

DATA_DIR_ENV = "SMO_IMPACT_DATA_DIR"
CACHE_DIR_ENV = "SMO_IMPACT_CACHE_DIR"

_LEWIDI_RAW = "https://raw.githubusercontent.com/Le-Wi-Di/le-wi-di.github.io/main/LeWiDi_2-2023"


@dataclass(frozen=True)
class DataFile:
    """One upstream file: its path inside the mirror, its URL and its sha256."""

    path: str
    url: str
    sha256: str


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in dataset's card and loader."""

    name: str
    description: str
    files: tuple[DataFile, ...]
    license: str
    citation: str
    labels: tuple
    positive_label: object
    label_meaning: str
    slice_columns: tuple[str, ...]
    build: Callable[[dict[str, Path]], AnnotationSet] = field(repr=False)


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV, Path.home() / ".cache" / "smo-impact"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _locate(info: DatasetInfo) -> dict[str, Path]:
    """Find every file of a dataset (mirror first, then cache) and verify its checksum."""
    mirror = os.environ.get(DATA_DIR_ENV)
    root = Path(mirror) if mirror else cache_dir() / "data"
    found: dict[str, Path] = {}
    for f in info.files:
        path = (root / f.path).resolve()
        if not path.is_file():
            how = (
                f"{DATA_DIR_ENV}={mirror} has no such file"
                if mirror
                else f"run `smo-impact datasets fetch {info.name}` or set {DATA_DIR_ENV} to a mirror"
            )
            raise DataError(f"Dataset '{info.name}': file {path} not found ({how}).")
        actual = sha256_file(path)
        if actual != f.sha256:
            raise DataError(
                f"Dataset '{info.name}': checksum mismatch for {path}: expected sha256 "
                f"{f.sha256}, got {actual}. The file is corrupt or not the upstream release."
            )
        found[f.path] = path
    return found


def get_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DataError(unknown_name_message("dataset", name, DATASETS.names()))
    return DATASETS.get(name)


def load_dataset(name: str) -> AnnotationSet:
    """Load a built-in dataset by name from the mirror or cache, checksums verified."""
    info = get_info(name)
    return info.build(_locate(info))


def fetch_dataset(name: str, timeout: float = 60.0) -> list[Path]:
    """Download a dataset's files into the cache and verify them (never used by tests)."""
    info = get_info(name)
    target_root = cache_dir() / "data"
    paths = []
    for f in info.files:
        target = (target_root / f.path).resolve()
        if not str(target).startswith(str(target_root.resolve())):
            raise DataError(f"Dataset '{name}': file path {f.path!r} escapes the cache directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.is_file() and sha256_file(target) == f.sha256):
            tmp = target.with_suffix(target.suffix + ".part")
            with urllib.request.urlopen(f.url, timeout=timeout) as response, open(tmp, "wb") as out:
                out.write(response.read())
            actual = sha256_file(tmp)
            if actual != f.sha256:
                tmp.unlink()
                raise DataError(
                    f"Dataset '{name}': download of {f.url} has sha256 {actual}, expected {f.sha256}"
                )
            tmp.replace(target)
        paths.append(target)
    return paths


# -- MD-Agreement --------------------------------------------------------------------------
def _lewidi_files(prefix: str, folder: str, digests: dict[str, str]) -> tuple[DataFile, ...]:
    return tuple(
        DataFile(
            path=f"lewidi-2023/{prefix}_{split}.json",
            url=f"{_LEWIDI_RAW}/{folder}/{prefix}_{split}.json",
            sha256=digests[split],
        )
        for split in ("train", "dev", "test")
    )


def _build_md_agreement(paths: dict[str, Path]) -> AnnotationSet:
    items, annotations = load_lewidi(sorted(paths.values()))
    return AnnotationSet(
        name="md-agreement",
        items=items,
        annotations=annotations,
        labels=(0, 1),
        positive_label=1,
        slice_columns=("domain",),
    )


DATASETS.register("md-agreement")(
    DatasetInfo(
        name="md-agreement",
        description=(
            "MultiDomain Agreement: ~10.7k English tweets (BLM, Election 2020, Covid-19) rated "
            "offensive / not offensive by 5 crowd raters each (>800 raters)."
        ),
        files=_lewidi_files(
            "MD-Agreement",
            "MD-Agreement_dataset",
            {
                "train": "0b100595f7d10fd9b4624c647af2888597472b2dea90643dc788278714f57a6d",
                "dev": "b42b6b54015589504de259241e14c17ff605baab4eb146effcb17a95fbfd69f5",
                "test": "a30f185ece8bc99a45ce50e0311593ee1a6882a816c93f6915cabd368f3fad53",
            },
        ),
        license="Research use; see Leonardelli et al. (2021) and the LeWiDi 2023 release.",
        citation=(
            "Leonardelli, E. et al. (2021). Agreeing to Disagree: Annotating Offensive Language "
            "Datasets with Annotators' Disagreement. EMNLP 2021."
        ),
        labels=(0, 1),
        positive_label=1,
        label_meaning="1 = offensive, 0 = not offensive",
        slice_columns=("domain",),
        build=_build_md_agreement,
    )
)
