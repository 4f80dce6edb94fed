"""Reference agreement figures for the built-in datasets, computed without smo_impact.

The mirror's files are read here with ``json`` and ``pandas`` directly (not through the package's
loaders) and the figures come from the reference packages (``krippendorff``, ``statsmodels``,
``scikit-learn``) or from their definitions written out as plain loops. The audit tests compare
the package's figures with these, so a bug in a loader or a metric shows as a difference.
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections import Counter
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

SPLITS = ("train", "dev", "test")


def _first_per_rater(rows: list[tuple[str, str, object]]) -> pd.DataFrame:
    """Long judgements; a rater listed twice on one item counts once, with their first answer."""
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    return frame.drop_duplicates(["task", "worker"], keep="first").reset_index(drop=True)


def lewidi(mirror: Path, prefix: str) -> pd.DataFrame:
    """The judgements of one LeWiDi 2023 dataset, its three split files."""
    rows = []
    for split in SPLITS:
        records = json.loads((mirror / "lewidi-2023" / f"{prefix}_{split}.json").read_text(encoding="utf-8"))
        for item_id, record in records.items():
            task = f"{split}/{item_id}"  # ids restart in every split file
            raters, answers = record["annotators"].split(","), str(record["annotations"]).split(",")
            assert len(raters) == len(answers), task
            rows += [(task, r.strip(), int(a)) for r, a in zip(raters, answers)]
    return _first_per_rater(rows)


def lewidi_rater_groups(mirror: Path, prefix: str) -> dict[str, str]:
    """Each rater's group as the release lists it, per item, in ``other_info["annotators group"]``
    (same order as ``annotators``); a rater listed in two groups fails the assertion."""
    groups: dict[str, str] = {}
    for split in SPLITS:
        records = json.loads((mirror / "lewidi-2023" / f"{prefix}_{split}.json").read_text(encoding="utf-8"))
        for record in records.values():
            pairs = zip(record["annotators"].split(","), record["other_info"]["annotators group"].split(","))
            for rater, group in pairs:
                assert groups.setdefault(rater.strip(), group.strip()) == group.strip(), rater
    return groups


def convabuse(mirror: Path) -> pd.DataFrame:
    """Severity judgements of the original ConvAbuse split files: each rater ticks one of the
    ``Annotator<k>_is_abuse.<severity>`` cells; a repeated response (``"1, 0"``) keeps the first."""
    rows = []
    for split in ("train", "valid", "test"):
        frame = pd.read_csv(mirror / "convabuse" / "2_splits" / f"ConvAbuseEMNLP{split}.csv", dtype=str)
        raters = sorted({c.split("_", 1)[0] for c in frame.columns if c.startswith("Annotator")})
        for _, row in frame.iterrows():
            for rater in raters:
                cells = [row[f"{rater}_is_abuse.{sev}"] for sev in (1, 0, -1, -2, -3)]
                ticked = [sev for sev, cell in zip((1, 0, -1, -2, -3), cells) if isinstance(cell, str) and cell.split(",")[0] == "1"]
                if ticked:
                    assert len(ticked) == 1, (split, row["example_id"], rater)
                    rows.append((f"{split}/{row['example_id']}", rater, ticked[0]))
    return _first_per_rater(rows)


def hatecheck(mirror: Path) -> pd.DataFrame:
    """HateCheck validation labels (1 = hateful) with each case's gold label in ``gold``."""
    raw = pd.read_csv(mirror / "hatecheck" / "test_suite_annotations.csv")
    rows = [
        (str(case), column, 1 if row[column] == "hateful" else 0)
        for case, (_, row) in zip(raw["case_id"], raw.iterrows())
        for column in [f"label_{k}" for k in range(1, 11)]
        if isinstance(row[column], str)
    ]
    judgements = _first_per_rater(rows)
    gold = dict(zip(raw["case_id"].astype(str), (raw["label_gold"] == "hateful").astype(int)))
    judgements["gold"] = judgements["task"].map(gold)
    return judgements


LEWIDI = {"md-agreement": "MD-Agreement", "hs-brexit": "HS-Brexit", "armis": "ArMIS", "convabuse-lewidi": "ConvAbuse"}


def judgements(mirror: Path, name: str) -> pd.DataFrame:
    """The raw judgements of a built-in dataset, by its registered name."""
    if name in LEWIDI:
        return lewidi(mirror, LEWIDI[name])
    return {"convabuse": convabuse, "hatecheck": hatecheck}[name](mirror)


def split_sizes(mirror: Path, name: str) -> dict[str, int]:
    """Items per split as the release files hold them (ConvAbuse's ``valid`` is our ``dev``)."""
    if name in LEWIDI:
        return {s: len(json.loads((mirror / "lewidi-2023" / f"{LEWIDI[name]}_{s}.json").read_text(encoding="utf-8"))) for s in SPLITS}
    if name == "convabuse":
        files = {"train": "train", "dev": "valid", "test": "test"}
        return {s: len(pd.read_csv(mirror / "convabuse" / "2_splits" / f"ConvAbuseEMNLP{f}.csv")) for s, f in files.items()}
    assert name == "hatecheck", name
    return {"test": len(pd.read_csv(mirror / "hatecheck" / "test_suite_cases.csv"))}


def reliability_matrix(judgements: pd.DataFrame) -> np.ndarray:
    """raters x items, NaN where a rater did not label an item (krippendorff's input)."""
    return judgements.pivot(index="worker", columns="task", values="label").to_numpy(float)


def alpha(judgements: pd.DataFrame, level: str = "nominal", domain: list | None = None) -> float:
    return float(krippendorff.alpha(reliability_data=reliability_matrix(judgements), level_of_measurement=level,
                                     value_domain=domain))


def figures(judgements: pd.DataFrame, labels: list, min_shared: int = 20) -> dict[str, object]:
    """The audit's headline figures by their definitions, item by item and pair by pair."""
    per_item = judgements.groupby("task")["label"].apply(list)
    pairable = per_item[per_item.map(len) >= 2]
    sizes = set(pairable.map(len))
    out: dict[str, object] = {
        "items": len(per_item),
        "judgements": len(judgements),
        "raters": judgements["worker"].nunique(),
        "krippendorff_alpha": alpha(judgements),
        # Share of agreeing pairs of judgements on an item, averaged over items.
        "percent_agreement": float(np.mean([np.mean([a == b for a, b in itertools.combinations(v, 2)]) for v in pairable])),
        "unanimous_share": float(np.mean([len(set(v)) == 1 for v in pairable])),
        "fleiss_balanced": len(sizes) == 1,
    }
    if len(sizes) == 1:  # Fleiss' kappa is defined for a fixed number of raters per item
        counts = np.array([[v.count(c) for c in labels] for v in pairable])
        out["fleiss_kappa"] = float(fleiss_kappa(counts))
    # Rater pairs with >= min_shared common items and a defined Cohen's kappa.
    by_item = judgements.groupby("task")["worker"].apply(sorted)
    shared = Counter(pair for raters in by_item for pair in itertools.combinations(raters, 2))
    label = dict(zip(zip(judgements["task"], judgements["worker"]), judgements["label"]))
    tasks_of = judgements.groupby("worker")["task"].apply(set)
    defined = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns where kappa is 0/0
        for (a, b), n in shared.items():
            if n < min_shared:
                continue
            common = sorted(tasks_of[a] & tasks_of[b])
            kappa = cohen_kappa_score([label[t, a] for t in common], [label[t, b] for t in common])
            defined += not np.isnan(kappa)
    out["cohen_kappa_pairs"] = defined
    if "gold" in judgements:
        out["gold_accuracy"] = float((judgements["label"] == judgements["gold"]).mean())
    return out
