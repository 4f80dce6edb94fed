"""A/A calibration of the gates: how often does each gate fire when nothing differs but chance?

An A/A experiment has a treatment arm with exactly the control's steps on another random stream
(config ``streams``). Every comparison of the two is a null comparison, so the share of them a gate
fails is its false-alarm rate. :func:`aa_comparisons` computes the comparisons (the runner's own
treat/train/score and compare stages, without MLflow), :func:`false_alarms` counts, per gate type,
how often it fires, with a Clopper-Pearson 95% interval. ``benchmarks/bench_aa.py`` stores the
result in ``aa_calibration.json`` beside this module, and run summaries quote it next to each gate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CALIBRATION_FILE = Path(__file__).with_name("aa_calibration.json")


def aa_comparisons(
    config: Any, dataset: Any = None, progress: Callable[[int, int], None] | None = None
) -> pd.DataFrame:
    """One row per seed: the treatment arm's comparison metrics against the control of that seed.

    ``config`` must have exactly one treatment arm (the A/A replica). Runs are computed with
    ``runner.run.execute_run`` and compared with ``evaluation.compare.compare_with_control``, as
    ``smo-impact run`` does; nothing is logged.
    """
    from smo_impact.evaluation.compare import compare_with_control
    from smo_impact.runner.experiment import prepare
    from smo_impact.runner.run import execute_run

    _, ctx, specs, _ = prepare(config, dataset=dataset)
    treated = [s for s in specs if not s.is_control]
    slices = {b.namespace: b.slice_columns for b in ctx.benchmarks}
    rows = []
    for i, spec in enumerate(treated):
        control = spec.control(specs)
        a, b = execute_run(control, ctx), execute_run(spec, ctx)
        comparison = compare_with_control(
            b.metrics, a.metrics, config.evaluation, spec.seed, b.benchmarks, a.benchmarks, slices
        )
        rows.append({"arm": spec.arm, "grid": spec.grid_label, "seed": spec.seed, **comparison.metrics})
        if progress:
            progress(i + 1, len(treated))
    return pd.DataFrame(rows)


def _interval(fired: int, n: int) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(fired, n, alpha=0.05, method="beta")
    return float(low), float(high)


def false_alarms(
    comparisons: pd.DataFrame, metrics: tuple[str, ...], alpha: float = 0.05, tolerances: tuple[float, ...] = (0.005, 0.01),
    arm_seeds: tuple[int, ...] = (3, 5),
) -> pd.DataFrame:
    """Per gate type, how many of the A/A comparisons it fails.

    Gate types (``metric`` is ``<namespace>/<name>``):

    * ``run: significant drop of <metric>`` (``max_drop: 0`` with ``require_significance``): the
      drop is positive and its paired-bootstrap p-value < alpha, per seed;
    * ``run: significant new false negatives`` (``max_new_false_negatives: 0`` with significance):
      new false negatives and McNemar p < alpha, per seed;
    * ``arm (k seeds): t-test drop of <metric>``: disjoint groups of ``k`` seeds, each one arm-level
      verdict (mean drop > 0 and the t-test across the k seeds p < alpha);
    * ``run: drop of <metric> > tol`` and ``arm (k seeds): mean drop > tol``: ``max_drop`` without
      any test.

    Returns one row per gate type: ``gate, fired, n, rate, ci_low, ci_high``.
    """
    from smo_impact.config import GateSpec
    from smo_impact.evaluation.gates import run_verdict

    namespaces = sorted({m.split("/", 1)[0] for m in metrics})
    records = comparisons.to_dict("records")
    rows: list[dict[str, Any]] = []

    def add(gate: str, fired: list[bool]) -> None:
        n, k = len(fired), int(np.sum(fired))
        low, high = _interval(k, n) if n else (float("nan"), float("nan"))
        rows.append({"gate": gate, "fired": k, "n": n, "rate": k / n if n else float("nan"), "ci_low": low, "ci_high": high})

    for metric in metrics:
        gates = GateSpec(max_drop={metric: 0.0}, require_significance=True, alpha=alpha)
        add(f"run: significant drop of {metric}", [not run_verdict(r, gates, namespaces).passed for r in records])
    for ns in namespaces:
        gates = GateSpec(max_new_false_negatives=0, require_significance=True, alpha=alpha)
        add(f"run: significant new false negatives ({ns})", [not run_verdict(r, gates, [ns]).passed for r in records])
    for k in arm_seeds:
        groups = [comparisons.iloc[i : i + k] for i in range(0, len(comparisons) - k + 1, k)]
        for metric in metrics:
            gates = GateSpec(max_drop={metric: 0.0}, require_significance=True, alpha=alpha)
            add(f"arm ({k} seeds): t-test drop of {metric}", [_arm_fails(g, gates, namespaces) for g in groups])
    for tol in tolerances:
        for metric in metrics:
            gates = GateSpec(max_drop={metric: tol})
            add(f"run: drop of {metric} > {tol:g} (no test)", [not run_verdict(r, gates, namespaces).passed for r in records])
            for k in arm_seeds[:1]:
                groups = [comparisons.iloc[i : i + k] for i in range(0, len(comparisons) - k + 1, k)]
                add(f"arm ({k} seeds): mean drop of {metric} > {tol:g} (no test)",
                    [_arm_fails(g, gates, namespaces) for g in groups])
    return pd.DataFrame(rows, columns=["gate", "fired", "n", "rate", "ci_low", "ci_high"])


def _arm_fails(group: pd.DataFrame, gates: Any, namespaces: list[str]) -> bool:
    from smo_impact.evaluation.gates import arm_verdicts

    table = arm_verdicts(group.assign(arm="replica", grid="-"), gates, namespaces, "control")
    return bool((table["gate"] == "failed").any())


def save_calibration(table: pd.DataFrame, label: str, details: dict[str, Any], path: Path = CALIBRATION_FILE) -> None:
    """Store one calibration (``label``, e.g. ``md-agreement/tfidf_logreg``) with today's date."""
    stored = load_calibration(path)
    stored[label] = {"date": date.today().isoformat(), **details, "gates": table.to_dict("records")}
    path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")


def load_calibration(path: Path = CALIBRATION_FILE) -> dict[str, Any]:
    """Every stored calibration by label (empty when none was run)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def false_alarm_note(gate_kind: str, calibration: dict[str, Any] | None = None) -> str:
    """A short sentence: how often a gate of this kind fired in the stored A/A calibrations.

    ``gate_kind`` is matched against the calibration's gate names by prefix, e.g.
    ``arm (3 seeds): t-test drop of test/macro_f1``.
    """
    calibration = load_calibration() if calibration is None else calibration
    parts = []
    for label, entry in sorted(calibration.items()):
        for row in entry.get("gates", []):
            if row["gate"] == gate_kind:
                parts.append(
                    f"{row['fired']}/{row['n']} ({row['rate']:.1%}, 95% CI {row['ci_low']:.1%}-{row['ci_high']:.1%}) "
                    f"on {label}, {entry.get('date', '?')}"
                )
    return "; ".join(parts)


__all__ = ["CALIBRATION_FILE", "aa_comparisons", "false_alarm_note", "false_alarms", "load_calibration", "save_calibration"]


def gate_false_alarm_note(metric: str, tolerance: float, significance: bool, seeds: int,
                          calibration: dict[str, Any] | None = None) -> str:
    """The stored A/A false-alarm rate of the arm-level gate closest to the one configured: same
    metric, the same kind (t-test, or a tolerance without a test), the nearest seed count."""
    calibration = load_calibration() if calibration is None else calibration
    names = {row["gate"] for entry in calibration.values() for row in entry.get("gates", [])}
    if significance:
        kind = f"t-test drop of {metric}"
    else:
        kind = f"mean drop of {metric} > {tolerance:g} (no test)"
    candidates = [n for n in names if n.startswith("arm (") and n.endswith(kind)]
    if not candidates:
        return ""
    best = min(candidates, key=lambda n: abs(int(n.split("(")[1].split()[0]) - seeds))
    return f"{best}: " + false_alarm_note(best, calibration)
