"""The experiment report: one self-contained HTML page and a Markdown twin, built from the MLflow store.

Everything is read back from the store (parent run, child runs, their artifacts), never from the
memory of the process that ran the experiment, so a report can be rebuilt at any time.
"""

from __future__ import annotations

import base64
import html
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.tracking.reader import MlflowReader, StoredExperiment

HEADLINE = ("macro_f1", "recall", "roc_auc")
TOP_REGRESSIONS = 15
PROVENANCE_TAGS = ("smo.dataset", "smo.data_digest", "smo.code_version", "smo.config_hash", "smo.runs_planned",
                   "smo.failed_runs", "smo.gate", "smo.gate_reasons")


@dataclass
class Section:
    """A titled block: prose, an optional table and the names of figures shown in it."""

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figures: list[str] = field(default_factory=list)
    code: str | None = None  # preformatted text (the resolved config)


@dataclass
class ExperimentReport:
    """The sections and figures (PNG bytes by name) of one stored experiment."""

    title: str
    sections: list[Section]
    figures: dict[str, bytes]


def build_report(reader: MlflowReader, stored: StoredExperiment) -> ExperimentReport:
    """Read the parent run, child runs and artifacts and assemble the report's sections."""
    parent = stored.parent
    runs = stored.runs_frame()
    split = _split(reader, parent.run_id)
    figures = {
        Path(p).stem: data
        for p in reader.list_artifacts(parent.run_id, "plots")
        if p.endswith(".png") and (data := reader.load_bytes(parent.run_id, p)) is not None
    }
    sections = [
        Section("Question", parent.tags.get("mlflow.note.content", "(no description in the config)")),
        Section("Arms", "Runs per arm and grid point as stored (FINISHED / other).", _arms(stored)),
        Section(
            "Summary",
            f"Mean over seeds with a 95% t-interval [low, high] of each headline metric on `{split}`; "
            "Δ = treatment - control of the same seed.",
            _summary(runs, split),
        ),
    ]
    fits = reader.load_frame(parent.run_id, "impact/fits.csv")
    dose_figs = [n for n in figures if n.startswith(("dose_response", "impact_vs_")) and not _measured(n)]
    sections.append(Section(
        "Dose-response",
        "OLS slope of each outcome per unit of the swept parameter, with its 95% CI and R² (every run a point).",
        None if fits is None else _fits_table(fits[~fits["x_label"].str.startswith(("quality/", "treatment/"))]),
        dose_figs,
    ))
    sections.append(Section(
        "Quality vs outcome",
        "Outcome against the measured quality of each run's training labels (all runs pooled).",
        None if fits is None else _fits_table(fits[fits["x_label"].str.startswith(("quality/", "treatment/"))]),
        [n for n in figures if n.startswith("impact_vs_") and _measured(n)],
    ))
    frontier = reader.load_frame(parent.run_id, "impact/frontier.csv")
    if frontier is not None:
        sections.append(Section("Cost-quality frontier", "Mean cost and outcome per arm/grid point.", frontier,
                                [n for n in figures if n == "frontier"]))
    gates = reader.load_frame(parent.run_id, "summary/gates.csv")
    sections.append(Section(
        "Gates",
        f"Overall: {parent.tags.get('smo.gate', 'no gates configured')}. {parent.tags.get('smo.gate_reasons', '')}".strip(),
        gates,
    ))
    regressions = _top_regressions(reader, stored)
    sections.append(Section(
        "Top regressions",
        "Test items a treatment newly gets wrong vs the control of the same seed, most often first "
        "(from each run's regression/regressed_items.parquet).",
        regressions,
        [n for n in figures if n.startswith(("regressions_", "functional_"))],
    ))
    sections.append(_rca_section(reader, stored))
    shown = set().union(*(s.figures for s in sections))
    rest = [n for n in figures if n not in shown]
    if rest:
        sections.append(Section("Other plots", "", None, rest))
    sections.append(Section("Provenance", f"Parent run {parent.run_id} in {reader.uri}.", _provenance(stored)))
    sections.append(Section("Resolved config", "", None, [], reader.load_text(parent.run_id, "config/resolved.yaml") or ""))
    return ExperimentReport(f"{stored.experiment}: {parent.name}", sections, figures)


def render_markdown(report: ExperimentReport, figure_dir: str = "figures") -> str:
    """The report as Markdown; figures are referenced as ``<figure_dir>/<name>.png``."""
    lines = [f"# {report.title}", ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        if section.table is not None:
            lines += [_markdown_table(section.table), ""]
        lines += [f"![{name}]({figure_dir}/{name}.png)" for name in section.figures]
        if section.code is not None:
            lines += ["```yaml", section.code.rstrip(), "```"]
        lines.append("")
    return "\n".join(lines)


def render_html(report: ExperimentReport) -> str:
    """The report as one self-contained HTML page (PNG figures embedded as base64 data URIs)."""
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1150px}table{border-collapse:collapse;"
        "font-size:13px;margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
        "th{background:#f3f3f3}img{max-width:48%;margin:0.5em 1% 0.5em 0}pre{background:#f7f7f7;padding:1em}"
    )
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    for section in report.sections:
        anchor = section.title.lower().replace(" ", "-")
        body.append(f'<section id="{html.escape(anchor)}"><h2>{html.escape(section.title)}</h2>')
        if section.text:
            body.append(f"<p>{html.escape(section.text)}</p>")
        if section.table is not None:
            table = section.table.map(_fmt) if not section.table.empty else section.table
            body.append(table.to_html(index=False, escape=True, border=0) if not table.empty else "<p><em>(none)</em></p>")
        for name in section.figures:
            data = base64.b64encode(report.figures[name]).decode()
            body.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
        if section.code is not None:
            body.append(f"<pre>{html.escape(section.code)}</pre>")
        body.append("</section>")
    title = html.escape(report.title)
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head><body>{''.join(body)}</body></html>"


def write_report(report: ExperimentReport, out: Path) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``figures/*.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    for name, png in report.figures.items():
        (out / "figures" / f"{name}.png").write_bytes(png)
    (out / "report.html").write_text(render_html(report), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return {"html": out / "report.html", "markdown": out / "report.md"}


def report_experiment(
    experiment_or_run_id: str, out: Path | None = None, tracking_uri: str | None = None, log: bool = True
) -> tuple[dict[str, Path], str]:
    """Build the report of a stored experiment, write it to ``out`` and log it on the parent run.

    Returns the written paths and the parent run id.
    """
    reader = MlflowReader(tracking_uri, write=log, fix="make it writable, or build the report without logging it (--no-log)")
    stored = reader.load(experiment_or_run_id)
    report = build_report(reader, stored)
    written = write_report(report, out or Path("reports") / stored.experiment)
    if log:
        with tempfile.TemporaryDirectory() as tmp:
            write_report(report, Path(tmp))
            reader.log_artifacts(stored.parent.run_id, tmp, "report")
    return written, stored.parent.run_id


# -- sections -------------------------------------------------------------------------------
def _split(reader: MlflowReader, run_id: str) -> str:
    import yaml

    text = reader.load_text(run_id, "config/resolved.yaml")
    config = yaml.safe_load(text) if text else {}
    return ((config or {}).get("evaluation") or {}).get("split", "test")


def _arms(stored: StoredExperiment) -> pd.DataFrame:
    rows = [(r.tags.get("smo.arm", "?"), r.tags.get("smo.grid", "-"), r.status) for r in stored.children]
    frame = pd.DataFrame(rows, columns=["arm", "grid", "status"])
    if frame.empty:
        return frame
    return (
        frame.assign(finished=frame["status"] == "FINISHED", other=frame["status"] != "FINISHED")
        .groupby(["arm", "grid"], sort=False)[["finished", "other"]].sum().reset_index()
    )


def _summary(runs: pd.DataFrame, split: str) -> pd.DataFrame:
    """Per arm/grid: n and ``mean [low, high]`` cells of headline metrics and their deltas."""
    if runs.empty:
        return pd.DataFrame()
    from scipy import stats

    columns = [f"{split}/{m}" for m in HEADLINE] + [f"delta/{split}/{m}" for m in HEADLINE[:2]]
    columns += [f"{split}/weighted_f1", f"{split}/worst_class_recall"]  # K-class runs only
    columns += [f"regression/{split}/new_false_negatives", "treatment/realized_flip_rate", "treatment/cost"]
    columns = [c for c in columns if c in runs.columns]
    rows = []
    for (arm, grid), group in runs.groupby(["arm", "grid"], sort=False):
        row: dict[str, Any] = {"arm": arm, "grid": grid, "n": len(group)}
        for col in columns:
            values = group[col].dropna().to_numpy(float)
            if len(values) == 0:
                row[col] = ""
                continue
            mean = values.mean()
            half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
            row[col] = f"{mean:.3f} [{mean - half:.3f}, {mean + half:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def _measured(figure: str) -> bool:
    """Whether a plot's x variable is measured quality rather than a swept parameter."""
    return figure.startswith(("impact_vs_quality_", "impact_vs_treatment_"))


def _fits_table(fits: pd.DataFrame) -> pd.DataFrame:
    cols = ["outcome", "x_label", "arm", "slope", "slope_ci_low", "slope_ci_high", "r2", "p_value", "n"]
    return fits[[c for c in cols if c in fits.columns]].reset_index(drop=True)


def _top_regressions(reader: MlflowReader, stored: StoredExperiment) -> pd.DataFrame:
    frames = []
    for run in stored.children:
        if run.status == "FINISHED" and run.tags.get("smo.is_control") != "true":
            frame = reader.load_frame(run.run_id, "regression/regressed_items.parquet")
            if frame is not None and not frame.empty:
                frames.append(frame.assign(arm=run.tags.get("smo.arm"), grid=run.tags.get("smo.grid")))
    if not frames:
        return pd.DataFrame()
    items = pd.concat(frames, ignore_index=True)
    key = [c for c in ("benchmark", "task", "kind") if c in items.columns]
    text = "text" if "text" in items.columns else key[-1]
    top = (
        items.groupby(key, sort=False)
        .agg(runs=("arm", "size"), arms=("arm", lambda a: ", ".join(sorted(set(map(str, a))))), text=(text, "first"))
        .reset_index()
        .sort_values("runs", ascending=False, kind="stable")
        .head(TOP_REGRESSIONS)
    )
    top["text"] = top["text"].astype(str).str.slice(0, 160)
    return top.reset_index(drop=True)


def _rca_section(reader: MlflowReader, stored: StoredExperiment) -> Section:
    """The attribution rankings stored on child runs by ``smo-impact rca`` (top groups per run)."""
    frames = []
    for run in stored.children:
        if "rca/ranking.csv" in reader.list_artifacts(run.run_id, "rca"):
            ranking = reader.load_frame(run.run_id, "rca/ranking.csv")
            explained = run.metrics.get("rca/explained", float("nan"))
            frames.append(ranking.head(5).assign(run=run.name, explained_by_top=explained))
    if not frames:
        return Section("Root-cause attribution", "No attribution stored yet: run `smo-impact rca CONFIG RUN_NAME`.")
    table = pd.concat(frames, ignore_index=True)
    cols = ["run", "dimension", "group", "changes", "recovered", "fraction", "explained_by_top", "model"]
    return Section(
        "Root-cause attribution",
        "Groups of each attributed run's label changes, ranked by the share of its regression that "
        "reverting them (and retraining) recovers; explained_by_top = the top groups reverted together.",
        table[[c for c in cols if c in table.columns]],
    )


def _provenance(stored: StoredExperiment) -> pd.DataFrame:
    tags = stored.parent.tags
    rows = [(k, tags[k]) for k in PROVENANCE_TAGS if k in tags]
    rows.append(("child runs", str(len(stored.children))))
    return pd.DataFrame(rows, columns=["what", "value"])


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_"
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_fmt(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


__all__ = ["ExperimentReport", "Section", "build_report", "render_html", "render_markdown", "report_experiment", "write_report"]
