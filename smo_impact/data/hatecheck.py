"""Loader for HateCheck (Röttger et al., ACL 2021): functional tests for hate speech models.

``test_suite_cases.csv`` holds the 3,728 cases (text, gold label, functionality, target identity,
template); ``test_suite_annotations.csv`` the validation labels of the ten trained annotators,
five per case (``label_1`` .. ``label_10``, empty when that annotator did not label the case).
HateCheck is an evaluation suite: every case is in the ``test`` split.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from smo_impact.errors import DataError

LABELS = ("non-hateful", "hateful")
# Our item column -> the source column.
CASE_COLUMNS = {
    "case_id": "case_id",
    "text": "test_case",
    "functionality": "functionality",
    "target_identity": "target_ident",
    "direction": "direction",
    "focus_words": "focus_words",
    "focus_lemma": "focus_lemma",
    "ref_case_id": "ref_case_id",
    "ref_template_id": "ref_templ_id",
    "template_id": "templ_id",
    "case_template": "case_templ",
    "gold_label": "label_gold",
}


def build_hatecheck(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    by_name = {Path(p).name: Path(p) for p in paths}
    cases = pd.read_csv(by_name["test_suite_cases.csv"], keep_default_na=True)
    missing = [c for c in CASE_COLUMNS.values() if c not in cases.columns]
    if missing:
        raise DataError(f"{by_name['test_suite_cases.csv']}: HateCheck column(s) {missing} missing")
    items = pd.DataFrame({ours: cases[theirs] for ours, theirs in CASE_COLUMNS.items()})
    items.insert(0, "task", items["case_id"].astype("int64").astype("str"))
    items.insert(2, "split", "test")
    items["gold"] = (items["gold_label"] == "hateful").astype("int64")  # 1 = hateful

    raw = pd.read_csv(by_name["test_suite_annotations.csv"], keep_default_na=True)
    label_columns = [f"label_{k}" for k in range(1, 11)]
    long = raw.melt(id_vars=["case_id"], value_vars=label_columns, var_name="worker", value_name="label")
    long = long.loc[long["label"].notna()]
    annotations = pd.DataFrame(
        {
            "task": long["case_id"].astype("int64").astype("str").to_numpy(),
            "worker": long["worker"].str.replace("label_", "annotator_", regex=False).to_numpy(),
            "label": long["label"].astype("str").to_numpy(),
        }
    ).sort_values(["task", "worker"], kind="stable", key=lambda s: s.str.zfill(8)).reset_index(drop=True)
    return items, annotations, None
