"""Functional test suites (HateCheck): does the model pass each kind of test case?

A suite is a table of test cases with a gold label, the functionality each case tests (derogation,
threats, negation, counter-speech, ...) and the identity it targets. The report is accuracy per
functionality and per target identity, overall, on hateful vs non-hateful cases, and the list of
failed cases (Röttger et al., 2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smo_impact.errors import DataError
from smo_impact.evaluation.regression import metric_safe

CASE_COLUMNS = ("task", "text", "gold", "functionality", "target_identity")


@dataclass
class FunctionalReport:
    """What a model got right on a functional suite.

    Attributes:
        metrics: ``accuracy``, ``accuracy_hateful``, ``accuracy_non_hateful``,
            ``functionality/<f>/accuracy``, ``target/<t>/accuracy``, ``worst_functionality/accuracy``,
            ``failed_cases``.
        per_functionality: One row per functionality: ``functionality, gold, n, passed, accuracy``,
            worst first.
        failed: The failed cases: the case columns plus ``score`` and ``predicted``.
        worst_functionality: Name of the functionality with the lowest accuracy.
    """

    metrics: dict[str, float]
    per_functionality: pd.DataFrame
    failed: pd.DataFrame
    worst_functionality: str


def check_cases(cases: pd.DataFrame, source: str = "suite") -> None:
    """Raise DataError naming the missing column or bad gold label of a suite's case table."""
    missing = [c for c in CASE_COLUMNS if c not in cases.columns]
    if missing:
        raise DataError(
            f"{source}: functional test cases lack column(s) {', '.join(missing)}; found: "
            f"{', '.join(map(str, cases.columns))}. Expected {', '.join(CASE_COLUMNS)}."
        )
    bad = ~cases["gold"].isin([0, 1])
    if bad.any():
        row = cases.loc[bad].iloc[0]
        raise DataError(f"{source}: case {row['task']!r} has gold label {row['gold']!r}; expected 0 or 1")


def functional_report(cases: pd.DataFrame, score: np.ndarray, threshold: float = 0.5) -> FunctionalReport:
    """Score a model's P(positive) on every case of a functional suite.

    Args:
        cases: :data:`CASE_COLUMNS`, one row per test case; ``gold`` 1 = hateful.
        score: The model's P(positive) per case, in ``cases`` order.
        threshold: Predict hateful when ``score >= threshold``.
    """
    check_cases(cases)
    frame = cases.reset_index(drop=True).copy()
    frame["score"] = np.asarray(score, dtype=float)
    frame["predicted"] = (frame["score"] >= threshold).astype(int)
    frame["passed"] = frame["predicted"] == frame["gold"].astype(int)
    gold = frame["gold"].astype(int)

    per_f = (
        frame.groupby("functionality", sort=True)
        .agg(gold=("gold", "first"), n=("passed", "size"), passed=("passed", "sum"))
        .reset_index()
    )
    per_f["accuracy"] = per_f["passed"] / per_f["n"]
    per_f = per_f.sort_values(["accuracy", "functionality"], kind="stable").reset_index(drop=True)

    metrics = {
        "accuracy": float(frame["passed"].mean()),
        "accuracy_hateful": float(frame.loc[gold == 1, "passed"].mean()) if (gold == 1).any() else float("nan"),
        "accuracy_non_hateful": float(frame.loc[gold == 0, "passed"].mean()) if (gold == 0).any() else float("nan"),
        "failed_cases": float((~frame["passed"]).sum()),
    }
    for _, row in per_f.iterrows():
        metrics[f"functionality/{metric_safe(row['functionality'])}/accuracy"] = float(row["accuracy"])
    targets = frame.dropna(subset=["target_identity"])
    for target, group in targets.groupby(targets["target_identity"].astype(str), sort=True):
        metrics[f"target/{metric_safe(target)}/accuracy"] = float(group["passed"].mean())
    worst = str(per_f.iloc[0]["functionality"]) if len(per_f) else ""
    if len(per_f):
        metrics["worst_functionality/accuracy"] = float(per_f.iloc[0]["accuracy"])
    failed = frame.loc[~frame["passed"]].drop(columns=["passed"]).reset_index(drop=True)
    return FunctionalReport(metrics=metrics, per_functionality=per_f, failed=failed, worst_functionality=worst)
