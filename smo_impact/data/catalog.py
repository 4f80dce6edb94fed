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

from smo_impact.data import convabuse, hatecheck, lewidi
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
    """A built-in dataset's card and loader.

    Attributes:
        labels: The raw label scale, in order from benign to harmful.
        positive_label: The harmful class in metrics (for a non-binary scale: the most harmful).
        label_meaning: One line for tables, e.g. ``1 = offensive, 0 = not offensive``.
        slice_columns: Item columns usable as evaluation slices.
        label_schema: Each raw label's meaning, in ``labels`` order.
        binary_positive: Default binary rule for a non-binary scale: the raw labels counted as
            harmful (``AnnotationSet.binarized``); empty when ``labels`` is binary.
        ordinal: ``labels`` is an ordered scale (a severity scale): K-class runs on the raw scale
            also report ordinal metrics.
        splits: Documented items per split (tests check them against the mirror).
        raters: Documented number of distinct raters.
        item_fields: Items-table columns beyond ``task``/``text``/``split`` and their meaning.
        annotation_fields: Extra per-judgement answer columns and their meaning.
        rater_attributes: Workers-table columns (besides ``worker``) and their meaning.
        leakage: Default leakage policy (``error`` unless the official splits share texts).
        duplicates: Default policy for a repeated (task, worker) judgement (``error`` unless the
            release has such repeats, e.g. MD-Agreement keeps the first).
        upstream: The GitHub repository the files come from.
    """

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
    label_schema: dict[object, str] = field(default_factory=dict)
    binary_positive: tuple = ()
    ordinal: bool = False
    splits: dict[str, int] = field(default_factory=dict)
    raters: int | None = None
    item_fields: dict[str, str] = field(default_factory=dict)
    annotation_fields: dict[str, str] = field(default_factory=dict)
    rater_attributes: dict[str, str] = field(default_factory=dict)
    leakage: str = "error"
    upstream: str = ""
    # Default policy for a second judgement by the same rater on an item (DatasetSpec.duplicates).
    duplicates: str = "error"


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


# -- built-in datasets -----------------------------------------------------------------------
Builder = Callable[[list[Path]], tuple]  # paths -> (items, annotations, workers or None)


def _lewidi_files(prefix: str, folder: str, digests: dict[str, str]) -> tuple[DataFile, ...]:
    return tuple(
        DataFile(
            path=f"lewidi-2023/{prefix}_{split}.json",
            url=f"{_LEWIDI_RAW}/{folder}/{prefix}_{split}.json",
            sha256=digests[split],
        )
        for split in ("train", "dev", "test")
    )


def _github_files(repo: str, digests: dict[str, str], mirror_folder: str) -> tuple[DataFile, ...]:
    """Files of a GitHub repository (branch main), mirrored under ``mirror_folder``."""
    return tuple(
        DataFile(path=f"{mirror_folder}/{path}", url=f"https://raw.githubusercontent.com/{repo}/main/{path}", sha256=digest)
        for path, digest in digests.items()
    )


def register_builtin(builder: Builder, **card: object) -> DatasetInfo:
    """Register a built-in dataset: its card, and a loader assembling the builder's tables."""

    def build(paths: dict[str, Path]) -> AnnotationSet:
        items, annotations, workers = builder(sorted(paths.values()))
        return AnnotationSet(
            name=str(card["name"]),
            items=items,
            annotations=annotations,
            labels=tuple(card["labels"]),  # type: ignore[arg-type]
            positive_label=card["positive_label"],
            workers=workers,
            slice_columns=tuple(card["slice_columns"]),  # type: ignore[arg-type]
            binary_positive=tuple(card.get("binary_positive", ())),  # type: ignore[arg-type]
            ordinal=bool(card.get("ordinal", False)),
        )

    info = DatasetInfo(build=build, **card)  # type: ignore[arg-type]
    DATASETS.register(info.name)(info)
    return info


_LEWIDI_LICENSE = "Research use; see the LeWiDi 2023 release and the original paper."
_LEWIDI_CITATION = (
    "Leonardelli, E. et al. (2023). SemEval-2023 Task 11: Learning with Disagreements (LeWiDi). "
    "SemEval-2023."
)
_TASK_ID = "``{split}-{id}`` (LeWiDi ids restart in every split file)"

register_builtin(
    lewidi.build_md_agreement,
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
    label_schema={0: "not offensive", 1: "offensive"},
    slice_columns=("domain",),
    splits={"train": 6592, "dev": 1104, "test": 3057},
    raters=819,
    item_fields={"domain": "BLM, Elections2020 or Covid-19 (LeWiDi other_info.domain)"},
    upstream="Le-Wi-Di/le-wi-di.github.io",
    # The release has one rater listed twice on one item (test-2038, Ann448): keep the first.
    duplicates="first",
)

register_builtin(
    lewidi.build_hs_brexit,
    name="hs-brexit",
    description=(
        "HS-Brexit: 1,120 English tweets on Brexit, hate speech yes/no by the same 6 raters: 3 from "
        "a target group (Muslim immigrants in the UK), 3 control; also each rater's aggressiveness "
        "and offensiveness answers."
    ),
    files=_lewidi_files(
        "HS-Brexit",
        "HS-Brexit_dataset",
        {
            "train": "d204d83c7b1a73f037b3aff36aac61357c08a96f96292a37ac7655eb562d81fb",
            "dev": "77c17f95985cbb6db47ffcda637e717a9074f2660e15b5c0c1f9006f50da60a7",
            "test": "24e5e1615818ff6e3b96e50245cfe10636ef8ec0ea51f2c2a60acb68858fd195",
        },
    ),
    license=_LEWIDI_LICENSE,
    citation=(
        "Akhtar, S., Basile, V., Patti, V. (2021). Whose Opinions Matter? Perspective-aware Models "
        "to Identify Opinions of Hate Speech Victims in Abusive Language Detection. arXiv:2106.15896. "
        + _LEWIDI_CITATION
    ),
    labels=(0, 1),
    positive_label=1,
    label_meaning="1 = hate speech, 0 = not",
    label_schema={0: "no hate speech", 1: "hate speech"},
    slice_columns=(),
    splits={"train": 784, "dev": 168, "test": 168},
    raters=6,
    annotation_fields={
        "aggressive": "the same rater's aggressiveness answer (1 = aggressive)",
        "offensive": "the same rater's offensiveness answer (1 = offensive)",
    },
    rater_attributes={
        "group": "target (Muslim immigrants in the UK; LeWiDi group1) or control (group2)",
        "group_id": "the LeWiDi group name, group1 or group2",
    },
    upstream="Le-Wi-Di/le-wi-di.github.io",
)

_CONVABUSE_ANSWERS = {
    "severity": "abuse severity, the raw label: 1 not abusive, 0 ambiguous, -1 mild, -2 strong, -3 very strong",
    **{f"type_{t}": f"abuse type {t} (0/1; only asked when abusive)" for t in lewidi.CONVABUSE_TYPES},
    **{f"target_{t}": f"target is {t} (0/1)" for t in lewidi.CONVABUSE_TARGETS},
    **{f"directness_{d}": f"abuse is {d} (0/1)" for d in lewidi.CONVABUSE_DIRECTNESS},
    "target": "ticked targets joined by '+' (generalised, individual, system); missing when none",
    "directness": "ticked directness (explicit, implicit); missing when none",
}
_CONVABUSE_SCHEMA = {1: "not abusive", 0: "ambiguous", -1: "mildly abusive", -2: "strongly abusive", -3: "very strongly abusive"}
_CONVABUSE_CITATION = (
    "Cercas Curry, A., Abercrombie, G., Rieser, V. (2021). ConvAbuse: Data, Analysis, and "
    "Benchmarks for Nuanced Abuse Detection in Conversational AI. EMNLP 2021."
)
_CONVABUSE_RULE = "binary default: abusive (1) = severity -1, -2 or -3; else 0"

register_builtin(
    lewidi.build_convabuse_lewidi,
    name="convabuse-lewidi",
    description=(
        "ConvAbuse in its LeWiDi 2023 form: ~4k user turns in conversations with two chatbots, abuse "
        "severity 1..-3 by 3-8 of 8 expert raters, with type, target and directness per rater."
    ),
    files=_lewidi_files(
        "ConvAbuse",
        "ConvAbuse_dataset",
        {
            "train": "f68d9c1e234afaf7e582103daac4e0f362da6418be3ff38e6cce76cfa3b674fc",
            "dev": "d95f9e740b07076e070ed47a8e010894d7cdbacb3246c89a000c26a17c61a04e",
            "test": "4a88c6cf2530eb3610bd1e9e7291916ad7fdaedc01dca4e68bcc3e846310afd9",
        },
    ),
    license="CC BY 4.0",
    citation=_CONVABUSE_CITATION + " " + _LEWIDI_CITATION,
    labels=(1, 0, -1, -2, -3),
    positive_label=-3,
    label_meaning="severity 1 (not abusive) .. -3 (very strongly abusive); " + _CONVABUSE_RULE,
    label_schema=_CONVABUSE_SCHEMA,
    binary_positive=(-1, -2, -3),
    ordinal=True,
    slice_columns=("bot",),
    splits={"train": 2398, "dev": 812, "test": 840},
    raters=8,
    item_fields={
        "text": "the rated user turn",
        "prev_agent": "the agent's previous turn",
        "prev_user": "the user's previous turn",
        "agent": "the agent's last turn",
        "bot": "E.L.I.Z.A. or CarbonBot",
        "conversation_ids": "conversations the snippet occurs in (comma-separated)",
    },
    annotation_fields=_CONVABUSE_ANSWERS,
    # The rated user turn is short ("yes", "hi"): the same turn recurs across the official splits.
    leakage="warn",
    upstream="Le-Wi-Di/le-wi-di.github.io",
)

register_builtin(
    lewidi.build_armis,
    name="armis",
    description=(
        "ArMIS: 943 Arabic tweets, misogyny/sexism yes/no by 3 raters of different background "
        "(moderate female, liberal female, conservative male)."
    ),
    files=_lewidi_files(
        "ArMIS",
        "ArMIS_dataset",
        {
            "train": "549dcd92484fa916e4b8076476fba451cda09b8dca0ba501e70cf5a72c1397f7",
            "dev": "482112222496c64a704ea22f710bf184196beee848f5109406e3ca6196502526",
            "test": "95498bb854fe476ee33a88cfecb3b05f26e0e1baef6c1083072a56b61586c06a",
        },
    ),
    license=_LEWIDI_LICENSE,
    citation=(
        "Almanea, D., Poesio, M. (2022). ArMIS - The Arabic Misogyny and Sexism Corpus with "
        "Annotator Subjective Disagreements. LREC 2022. " + _LEWIDI_CITATION
    ),
    labels=(0, 1),
    positive_label=1,
    label_meaning="1 = misogynistic/sexist, 0 = not",
    label_schema={0: "not misogynistic/sexist", 1: "misogynistic/sexist"},
    slice_columns=(),
    splits={"train": 657, "dev": 141, "test": 145},
    raters=3,
    rater_attributes={
        "group": "Moderate_Female, Liberal_Female or Conservative_Male",
        "ideology": "moderate, liberal or conservative",
        "gender": "female or male",
    },
    upstream="Le-Wi-Di/le-wi-di.github.io",
)

register_builtin(
    convabuse.build_convabuse,
    name="convabuse",
    description=(
        "ConvAbuse, original release: ~4.2k user turns with CarbonBot and E.L.I.Z.A., the full "
        "answer of each of 8 expert raters (severity, abuse types, target, directness); official "
        "train/valid/test splits (valid = our dev)."
    ),
    files=_github_files(
        "amandacurry/convabuse",
        {
            "2_splits/ConvAbuseEMNLPtrain.csv": "23abab3eff791d0e8cac681cec15a5ef299ed052699e4fca762d1d4640c36936",
            "2_splits/ConvAbuseEMNLPvalid.csv": "a28bc3083fe3ea305b8c417539a20fda7e68057dc06365507b85c46b60e65443",
            "2_splits/ConvAbuseEMNLPtest.csv": "8387d70332cd2245a095240534629152dd5729e8e9556e91b6b20dabdc0bb9d0",
        },
        "convabuse",
    ),
    license="CC BY 4.0",
    citation=_CONVABUSE_CITATION,
    labels=convabuse.SEVERITIES,
    positive_label=-3,
    label_meaning="severity 1 (not abusive) .. -3 (very strongly abusive); " + _CONVABUSE_RULE,
    label_schema=_CONVABUSE_SCHEMA,
    binary_positive=(-1, -2, -3),
    ordinal=True,
    slice_columns=("bot",),
    splits={"train": 2501, "dev": 831, "test": 853},
    raters=8,
    item_fields={
        "text": "the rated user turn",
        "conv_id": "conversation id",
        "prev_agent": "the agent's previous turn",
        "prev_user": "the user's previous turn",
        "agent": "the agent's last turn",
        "bot": "E.L.I.Z.A. or CarbonBot",
    },
    annotation_fields={
        **_CONVABUSE_ANSWERS,
        "responses": "how many times this rater labelled this example (repeats for intra-rater agreement; first kept)",
    },
    leakage="warn",
    upstream="amandacurry/convabuse",
)

register_builtin(
    hatecheck.build_hatecheck,
    name="hatecheck",
    description=(
        "HateCheck: 3,728 functional test cases for hate speech models in 29 functionalities, with "
        "gold label, target identity and template, plus 5 validation labels per case from 10 "
        "trained annotators. An evaluation suite: every case is in the test split."
    ),
    files=_github_files(
        "paul-rottger/hatecheck-data",
        {
            "test_suite_cases.csv": "ecf0dc1e93fccc90b6f880e632b19e635c0f0a68b3157915a9e20b6938f121cf",
            "test_suite_annotations.csv": "93aa6f760f2d311cfbce26881f0e5eea3ad8b4e095e1916f9f14a6c749f15231",
        },
        "hatecheck",
    ),
    license="CC BY 4.0",
    citation=(
        "Röttger, P. et al. (2021). HateCheck: Functional Tests for Hate Speech Detection Models. "
        "ACL 2021."
    ),
    labels=hatecheck.LABELS,
    positive_label="hateful",
    label_meaning="hateful / non-hateful (annotators' validation labels; gold in items.gold)",
    label_schema={"non-hateful": "not hateful", "hateful": "hateful"},
    slice_columns=("functionality", "target_identity", "direction"),
    splits={"test": 3728},
    raters=10,
    item_fields={
        "case_id": "HateCheck case id (also the task id)",
        "functionality": "the functional test, e.g. derog_neg_emote_h, counter_quote_nh",
        "target_identity": "protected group targeted or referenced (missing when none)",
        "direction": "general or directed (hateful cases); '-' otherwise",
        "focus_words": "key word or phrase",
        "focus_lemma": "its lemma",
        "ref_case_id": "the case this one perturbs or contrasts",
        "ref_template_id": "the template of that case",
        "template_id": "the template this case was generated from",
        "case_template": "the template text",
        "gold_label": "gold label as released: hateful or non-hateful",
        "gold": "gold label as 0/1 (1 = hateful)",
    },
    upstream="paul-rottger/hatecheck-data",
)
