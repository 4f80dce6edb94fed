"""A treatment run against the control run of the same seed, on every benchmark they share.

Joins the pieces the runner logs: metric deltas, paired regressions (new false negatives and
positives, McNemar, paired-bootstrap intervals of the deltas, per-slice counts), the regressed
items, and the run's gate verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smo_impact.evaluation.benchmarks import BenchmarkResult
from smo_impact.evaluation.bootstrap import BOOTSTRAP_METRICS, MULTICLASS_BOOTSTRAP_METRICS
from smo_impact.evaluation.gates import GateVerdict, run_verdict
from smo_impact.evaluation.metrics import HEADLINE_METRICS, MULTICLASS_HEADLINE_METRICS
from smo_impact.evaluation.regression import paired_regression

if TYPE_CHECKING:
    from smo_impact.config import EvaluationSpec

_CI_SUFFIXES = ("_ci_low", "_ci_high", "_p")
# Paired-bootstrap randomness: its own stream of the run seed.
REGRESSION_STREAM = 7


@dataclass
class Comparison:
    """What changed vs the control run.

    Attributes:
        metrics: ``delta/<ns>/<metric>`` (treatment - control; per-slice and functional metrics
            included), ``delta/<ns>/<metric>_ci_low|high`` (paired-bootstrap interval) and
            ``delta/<ns>/<metric>_p`` (paired-bootstrap p-value of "no change") for the headline
            metrics and every metric a gate reads,
            ``regression/<ns>/...`` (see :class:`~smo_impact.evaluation.regression.PairedRegression`).
        regressed: Regressed items of every benchmark (column ``benchmark``), see
            :func:`~smo_impact.evaluation.regression.paired_regression`.
        verdict: The run's gate verdict (None when no gate is configured).
    """

    metrics: dict[str, float]
    regressed: pd.DataFrame
    verdict: GateVerdict | None


def metric_deltas(treatment: Mapping[str, float], control: Mapping[str, float], namespaces: list[str]) -> dict[str, float]:
    """``delta/<name>`` = treatment - control for every benchmark metric both runs have."""
    out = {}
    for name, value in treatment.items():
        if name.split("/", 1)[0] in namespaces and name in control and not name.endswith(_CI_SUFFIXES):
            out[f"delta/{name}"] = value - control[name]
    return out


def interval_metrics(evaluation: EvaluationSpec, namespace: str) -> tuple[str, ...]:
    """Metrics of ``namespace`` whose paired delta gets a bootstrap interval and p-value: the
    headline ones (binary and K-class: each benchmark keeps those of its kind) and every
    bootstrappable metric a ``max_drop`` gate reads (gates take their significance from it)."""
    gated = [m.split("/", 1)[1] for m in evaluation.gates.max_drop if m.split("/", 1)[0] == namespace]
    testable = {*BOOTSTRAP_METRICS, *MULTICLASS_BOOTSTRAP_METRICS, *(f"binary/{m}" for m in BOOTSTRAP_METRICS)}
    names = [*HEADLINE_METRICS, *MULTICLASS_HEADLINE_METRICS, *(m for m in gated if m in testable)]
    return tuple(dict.fromkeys(names))


def compare_with_control(
    treatment_metrics: Mapping[str, float],
    control_metrics: Mapping[str, float],
    evaluation: EvaluationSpec,
    seed: int,
    treatment: Mapping[str, BenchmarkResult] | None = None,
    control: Mapping[str, BenchmarkResult] | None = None,
    slice_columns: Mapping[str, tuple[str, ...]] | None = None,
) -> Comparison:
    """Deltas from the metrics; paired regressions where both runs' predictions are at hand.

    Args:
        treatment_metrics: The treatment run's metrics.
        control_metrics: The control run's metrics (same seed).
        evaluation: The evaluation spec (namespaces, threshold, bootstrap, gates).
        seed: The run seed (seeds the paired bootstrap).
        treatment: The treatment run's per-benchmark results (predictions).
        control: The control run's per-benchmark results; None when it was not computed in this
            process (a resumed sweep): then only deltas are compared.
        slice_columns: Per namespace, the columns to count regressions by.
    """
    namespaces = evaluation.namespaces
    metrics = metric_deltas(treatment_metrics, control_metrics, namespaces)
    frames = []
    if treatment is not None and control is not None:
        for i, ns in enumerate(namespaces):
            if ns not in treatment or ns not in control:
                continue
            rng = np.random.default_rng([seed, REGRESSION_STREAM, i])
            paired = paired_regression(
                control[ns].predictions,
                treatment[ns].predictions,
                evaluation.threshold,
                rng,
                tuple((slice_columns or {}).get(ns, ())),
                evaluation.bootstrap,
                evaluation.confidence,
                interval_metrics(evaluation, ns),
            )
            for name, value in paired.metrics.items():
                key = f"delta/{ns}/{name}" if name.endswith(_CI_SUFFIXES) else f"regression/{ns}/{name}"
                metrics[key] = value
            frames.append(paired.items.assign(benchmark=ns))
    regressed = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    verdict = run_verdict(metrics, evaluation.gates, namespaces) if evaluation.gates.active else None
    return Comparison(metrics, regressed, verdict)
