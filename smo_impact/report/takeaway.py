"""What an experiment found, in one plain sentence, and the parent run's description around it.

Generated from the same tables the runner logs on the parent run (the summary over seeds, the OLS
fits of ``impact/fits.csv``, the gate verdicts of ``summary/gates.csv``), so the run page in the
MLflow UI, the terminal and the report all open with the same words:

    "Each +0.1 of rate (label_noise) costs 3.7 points of macro-F1 (95% CI 3.1 to 4.3, R² 0.95);
    every arm passed its gates."
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.report.summary import to_display_frame, to_markdown
from smo_impact.report.tables import slice_table

MEASURED = ("quality/", "treatment/")  # fits against measured quality, not a swept parameter
MAX_NAMED = 3  # arms or runs named in one clause; the rest are counted


def arm_label(arm: str, grid: object) -> str:
    """``label_noise rate=0.2`` (as in run names), or the arm alone when it has no grid point."""
    if not isinstance(grid, str) or grid in ("-", ""):
        return str(arm)
    parts = []
    for item in grid.split(","):
        key, sep, value = item.partition("=")
        parts.append(f"{key.rsplit('.', 1)[-1]}={value}" if sep else item)
    return " ".join([str(arm), *parts])


def takeaway(
    summary: pd.DataFrame,
    split: str,
    control: str,
    fits: pd.DataFrame | None = None,
    gates: pd.DataFrame | None = None,
    degenerate: Sequence[str] = (),
    dose: pd.DataFrame | None = None,
) -> str:
    """One sentence (clauses joined by ``;``): the effect of the swept parameters on macro-F1 (the
    OLS slopes), else each arm's change vs the control; the gate verdicts; runs whose predictions
    are constant.

    Args:
        summary: The runner's summary (``arm``, ``grid``, ``<metric>_mean``/``_std``, ``seeds``).
        split: The primary benchmark's namespace.
        control: The control arm.
        fits: ``impact/fits.csv`` (outcome, x_label, x_name, arm, slope, slope_ci_low/high, r2).
        gates: ``summary/gates.csv`` (arm, grid, gate, reasons).
        degenerate: Names of runs that predict one class for every item.
        dose: ``impact/dose_response.csv``, for the step of each swept parameter.
    """
    clauses = _dose_clauses(fits, split, dose) or _arm_clauses(summary, split, control)
    clauses += _gate_clauses(gates)
    if degenerate:
        named = ", ".join(list(degenerate)[:MAX_NAMED]) + (" ..." if len(degenerate) > MAX_NAMED else "")
        clauses.append(f"{len(degenerate)} run(s) predict a single class for every item ({named}): "
                       "their scores say nothing about the treatments")
    if not clauses:
        return "No finished runs to summarize."
    text = "; ".join(clauses)
    return text[0].upper() + text[1:] + "."


def _step(x_name: str, dose: pd.DataFrame | None) -> float:
    """The swept parameter's grid step (smallest gap between its values), 0.1 for a rate."""
    if dose is not None and not dose.empty and "x_name" in dose:
        xs = np.unique(pd.to_numeric(dose.loc[dose["x_name"] == x_name, "x"], errors="coerce").dropna())
        gaps = np.diff(xs)
        if len(gaps) and gaps.min() > 0:
            return float(gaps.min())
    return 0.1


def _dose_clauses(fits: pd.DataFrame | None, split: str, dose: pd.DataFrame | None) -> list[str]:
    if fits is None or fits.empty:
        return []
    rows = fits[(fits["outcome"] == f"{split}/macro_f1") & ~fits["x_label"].astype(str).str.startswith(MEASURED)]
    clauses = []
    for row in rows.head(MAX_NAMED).itertuples():
        step = _step(row.x_name, dose)
        name = str(row.x_name).rsplit(".", 1)[-1]
        # Points of macro-F1 (hundredths) per grid step, with the slope's 95% CI written out: a bare
        # "±" would read as the std over seeds, which is what "±" means in the summary table.
        effect, low, high = (v * step * 100 for v in (row.slope, row.slope_ci_low, row.slope_ci_high))
        where = f"{name} ({row.arm})"
        if row.slope_ci_low <= 0 <= row.slope_ci_high:
            clauses.append(f"macro-F1 shows no clear trend with {where} ({effect:+.1f} points per +{step:g}; "
                           f"95% CI {low:+.1f} to {high:+.1f} includes 0)")
            continue
        verb = "costs" if effect < 0 else "adds"
        near, far = sorted((abs(low), abs(high)))
        r2 = f", R² {row.r2:.2f}" if pd.notna(row.r2) else ""
        clauses.append(f"each +{step:g} of {where} {verb} {abs(effect):.1f} points of macro-F1 "
                       f"(95% CI {near:.1f} to {far:.1f}{r2})")
    return clauses


def _arm_clauses(summary: pd.DataFrame, split: str, control: str) -> list[str]:
    column = f"delta/{split}/macro_f1_mean"
    if summary.empty or column not in summary:
        if not summary.empty and f"{split}/macro_f1_mean" in summary:
            best = summary.loc[summary[f"{split}/macro_f1_mean"].idxmax()]
            return [f"{arm_label(best['arm'], best['grid'])} scores macro-F1 {best[f'{split}/macro_f1_mean']:.3f}"]
        return []
    base = summary.loc[summary["arm"] == control, f"{split}/macro_f1_mean"]
    treated = summary[(summary["arm"] != control) & summary[column].notna()]
    if treated.empty:
        return []
    against = f"control (macro-F1 {base.iloc[0]:.3f})" if len(base) else "control"
    if len(treated) == 1:
        row = treated.iloc[0]
        return [f"{arm_label(row['arm'], row['grid'])} changes macro-F1 by {row[column]:+.3f} vs {against}"]
    worst, best = treated.loc[treated[column].idxmin()], treated.loc[treated[column].idxmax()]
    low, high = f"{arm_label(worst['arm'], worst['grid'])}", f"{arm_label(best['arm'], best['grid'])}"
    if round(worst[column], 3) == round(best[column], 3):
        return [f"every arm scores macro-F1 like {against} (Δ {worst[column]:+.3f})"]
    if worst[column] < 0 < best[column]:
        return [f"against {against}, {low} loses most ({worst[column]:+.3f} macro-F1) and {high} gains most ({best[column]:+.3f})"]
    if best[column] <= 0:
        return [f"every arm loses macro-F1 against {against}: {low} most ({worst[column]:+.3f}), {high} least ({best[column]:+.3f})"]
    return [f"every arm gains macro-F1 over {against}: {high} most ({best[column]:+.3f}), {low} least ({worst[column]:+.3f})"]


def _gate_clauses(gates: pd.DataFrame | None) -> list[str]:
    if gates is None or gates.empty or "gate" not in gates:
        return []
    failed = gates[gates["gate"] == "failed"]
    if failed.empty:
        return [f"every arm passed its gates ({len(gates)} checked)"]
    named = [f"{arm_label(r.arm, r.grid)} ({_first_reason(r.reasons)})" for r in failed.head(MAX_NAMED).itertuples()]
    more = f" and {len(failed) - MAX_NAMED} more" if len(failed) > MAX_NAMED else ""
    if len(failed) == len(gates):
        return [f"no arm passed its gates: {'; '.join(named)}{more}"]
    return [f"{len(failed)} of {len(gates)} arms failed a gate: {'; '.join(named)}{more}"]


def _first_reason(reasons: object) -> str:
    text = str(reasons) if isinstance(reasons, str) else ""
    first = text.split("; ")[0]
    return first if len(first) <= 90 else first[:87] + "..."


NOTE_LIMIT = 7500  # MLflow keeps at most 8,000 characters of a tag (the description is one)


def parent_description(
    experiment: str, description: str | None, sentence: str, summary: pd.DataFrame, split: str,
) -> str:
    """The parent run's description (``mlflow.note.content``, Markdown): the takeaway, the question,
    the summary table (rows cut to fit MLflow's tag limit), and where the rest is."""
    head = [f"**{sentence}**", ""]
    if description:
        head += [" ".join(description.split()), ""]
    tail = [
        "",
        "Child runs are named `<arm> <grid point> s<seed>`. On this run: `summary/summary_table.json` "
        "(this table), `summary/slices_table.json` (every arm per slice), `summary/gates.csv`, plots under "
        f"`plots/`. `smo-impact report {experiment}` writes the full report; `smo-impact results {experiment}` "
        "prints this table.",
    ]
    if summary.empty:
        return "\n".join(head + tail)
    intro = [f"Mean ± std over seeds on the `{split}` split; Δ = treatment - control of the same seed.", ""]
    lines = to_markdown(summary, split).rstrip("\n").split("\n")
    header, body = lines[:2], lines[2:]
    more = f"_{{}} more row(s) in `summary/summary_table.json`._"
    budget = NOTE_LIMIT - len("\n".join(head + intro + header + tail)) - len(more) - 20
    kept, used = 0, 0
    while kept < len(body) and used + len(body[kept]) + 1 <= budget:
        used += len(body[kept]) + 1
        kept += 1
    cut = ["", more.format(len(body) - kept)] if kept < len(body) else []
    return "\n".join(head + intro + header + body[:kept] + cut + tail)[:NOTE_LIMIT]


def log_parent_description(
    tracker: Any, parent_id: str, config: Any, summary: pd.DataFrame, runs: pd.DataFrame,
    fits: pd.DataFrame | None, dose: pd.DataFrame | None, gates: pd.DataFrame | None, degenerate: Sequence[str],
) -> str:
    """Describe the parent run so that the first page a user opens shows the result: the takeaway
    and summary table as its description, the summary and per-slice tables as UI tables
    (``summary/summary_table.json``, ``summary/slices_table.json``), the takeaway as ``smo.takeaway``.

    Returns the takeaway sentence.
    """
    split = config.evaluation.primary
    sentence = takeaway(summary, split, config.control, fits, gates, degenerate, dose)
    if not summary.empty:
        tracker.log_table(parent_id, to_display_frame(summary, split), "summary/summary_table.json")
    slices = slice_table(runs, config.evaluation.namespaces) if not runs.empty else pd.DataFrame()
    if not slices.empty:
        tracker.log_table(parent_id, slices, "summary/slices_table.json")
    note = parent_description(config.experiment_name, config.description, sentence, summary, split)
    tracker.set_tags(parent_id, {"mlflow.note.content": note, "smo.takeaway": sentence[:NOTE_LIMIT]})
    return sentence


__all__ = ["arm_label", "log_parent_description", "parent_description", "takeaway"]
