"""The experiment report: one self-contained HTML page and a Markdown twin, built from the MLflow store.

Everything is read back from the store (parent run, child runs, their artifacts), never from the
memory of the process that ran the experiment, so a report can be rebuilt at any time.
"""

from __future__ import annotations

import base64
import html
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smo_impact.tracking.reader import MlflowReader, StoredExperiment

HEADLINE = ("macro_f1", "recall", "roc_auc")
CONTENT_NOTE = ("Content note: the texts below are quoted as written from an abusive-language dataset and may "
                "be offensive or hateful.")
# Column names as a reader says them (the stored names stay in the CSV artifacts and the export).
WORDS = {
    "macro_f1": "macro-F1", "roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "recall": "recall", "fpr": "false-positive rate",
    "new_false_negatives": "new false negatives", "new_false_positives": "new false positives",
    "fixed_false_negatives": "fixed false negatives", "fixed_false_positives": "fixed false positives",
    "realized_flip_rate": "realized flip rate", "cost": "annotation cost", "mcnemar_pvalue": "McNemar p",
    "x_label": "against", "slope_ci_low": "slope 95% CI low", "slope_ci_high": "slope 95% CI high", "r2": "R²",
    "p_value": "p-value", "n": "n", "seeds": "seeds", "gate": "verdict", "reasons": "why",
    "aa_false_alarms": "A/A false alarms of this gate", "explained_by_top": "explained by the top groups",
    "runs": "runs", "arms": "arms", "kind": "kind", "benchmark": "benchmark", "text": "text",
}
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
    subtitle: str = ""


def build_report(reader: MlflowReader, stored: StoredExperiment) -> ExperimentReport:
    """Read the parent run, child runs and artifacts and assemble the report's sections."""
    parent = stored.parent
    runs = stored.runs_frame()
    config = _config(reader, parent.run_id)
    split = ((config.get("evaluation") or {}).get("split")) or "test"
    figures = {
        Path(p).stem: data
        for p in reader.list_artifacts(parent.run_id, "plots")
        if p.endswith(".png") and (data := reader.load_bytes(parent.run_id, p)) is not None
    }
    fits = reader.load_frame(parent.run_id, "impact/fits.csv")
    gates = reader.load_frame(parent.run_id, "summary/gates.csv")
    sections = [
        Section("Takeaway", _takeaway(reader, stored, config, split, fits, gates)),
        Section("Question", _question(config, parent)),
        Section("Arms", "Runs per arm and grid point as stored: finished, and failed or stopped.", _arms(stored)),
        Section(
            "Summary",
            f"Mean over seeds with a 95% t-interval [low, high] of each headline metric on the `{split}` split; "
            "Δ = treatment - control of the same seed.",
            _summary(runs, split),
        ),
    ]
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
    sections.append(Section(
        "Gates",
        f"Overall: {parent.tags.get('smo.gate', 'no gates configured')}. {parent.tags.get('smo.gate_reasons', '')}".strip(),
        gates,
    ))
    regressions = _top_regressions(reader, stored)
    sections.append(Section(
        "Top regressions",
        "Test items a treatment newly gets wrong vs the control of the same seed, most often first "
        "(from each run's regression/regressed_items.parquet). " + (CONTENT_NOTE if not regressions.empty else
        "No treatment run newly got an item wrong (or none logged its predictions)."),
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
    return ExperimentReport(_title(config, stored.experiment), sections, figures,
                            f"Experiment {stored.experiment}, {len(stored.children)} runs, parent run {parent.run_id}")


def render_markdown(report: ExperimentReport, figure_dir: str = "figures") -> str:
    """The report as Markdown; figures are referenced as ``<figure_dir>/<name>.png``."""
    lines = [f"# {report.title}", ""] + ([f"_{report.subtitle}_", ""] if report.subtitle else [])
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        if section.table is not None:
            lines += [_markdown_table(human_columns(section.table)), ""]
        lines += [f"![{name}]({figure_dir}/{name}.png)" for name in section.figures]
        if section.code is not None:
            lines += ["```yaml", section.code.rstrip(), "```"]
        lines.append("")
    return "\n".join(lines)


STYLE = (
    # Fits a 1,280 px window: one column of text and tables, plots two to a row, wide tables scroll.
    "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1240px;padding:0 20px;line-height:1.45;color:#222}"
    "h1{font-size:1.6em;margin-bottom:0.2em}.subtitle{color:#666;margin-top:0}"
    ".takeaway{font-size:1.15em;background:#f4f8ff;border-left:4px solid #3b6fd8;padding:0.7em 1em}"
    ".note{background:#fff6e5;border-left:4px solid #e0a030;padding:0.5em 1em}"
    ".scroll{overflow-x:auto;margin-bottom:1em}table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #ccc;padding:3px 8px;vertical-align:top}th{background:#f3f3f3;text-align:left}"
    "td.num{text-align:right;white-space:nowrap}td.txt{text-align:left;white-space:normal;overflow-wrap:anywhere;max-width:520px}"
    ".figures{display:flex;flex-wrap:wrap;gap:16px}.figures img{width:calc(50% - 8px);height:auto;border:1px solid #eee}"
    "pre{background:#f7f7f7;padding:1em;overflow-x:auto}"
)


def render_html(report: ExperimentReport) -> str:
    """The report as one self-contained HTML page (PNG figures embedded as base64 data URIs)."""
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    if report.subtitle:
        body.append(f'<p class="subtitle">{html.escape(report.subtitle)}</p>')
    for section in report.sections:
        anchor = section.title.lower().replace(" ", "-")
        body.append(f'<section id="{html.escape(anchor)}"><h2>{html.escape(section.title)}</h2>')
        if section.text:
            for paragraph in _paragraphs(section):
                body.append(paragraph)
        if section.table is not None:
            body.append(_html_table(human_columns(section.table)))
        if section.figures:
            body.append('<div class="figures">')
            for name in section.figures:
                data = base64.b64encode(report.figures[name]).decode()
                body.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
            body.append("</div>")
        if section.code is not None:
            body.append(f"<pre>{html.escape(section.code)}</pre>")
        body.append("</section>")
    title = html.escape(report.title)
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{title}</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def _paragraphs(section: Section) -> list[str]:
    """The section's text; the takeaway stands out, a content note is set apart before the texts."""
    if section.title == "Takeaway":
        return [f'<p class="takeaway">{html.escape(section.text)}</p>']
    text, note = section.text, ""
    if CONTENT_NOTE in text:
        text, note = text.replace(CONTENT_NOTE, "").strip(), CONTENT_NOTE
    out = [f"<p>{html.escape(text)}</p>"] if text else []
    return out + ([f'<p class="note" role="note">{html.escape(note)}</p>'] if note else [])


def _html_table(frame: pd.DataFrame) -> str:
    """A table with numbers right-aligned and text left-aligned and wrapped, in a scrolling box."""
    if frame.empty:
        return "<p><em>(none)</em></p>"
    numeric = {c: pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in frame}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = "".join(f'<td class="{"num" if numeric[c] else "txt"}">{html.escape(_fmt(v))}</td>'
                        for c, v in zip(frame.columns, row))
        rows.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def human_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with column headers in words: ``regression/test/new_false_negatives`` -> ``new false
    negatives (test)``, ``delta/test/macro_f1`` -> ``Δ macro-F1 (test)``, ``drop/test/recall_mean`` ->
    ``drop of recall (test), mean``."""
    return frame.rename(columns={c: human_header(str(c)) for c in frame.columns})


def human_header(column: str) -> str:
    """One column name in words (see :func:`human_columns`); unknown names are left as they are."""
    stat = ""
    for suffix, word in (("_mean", "mean"), ("_std", "sd"), ("_p", "p")):
        if column.endswith(suffix) and "/" in column:
            column, stat = column[: -len(suffix)], word
            break
    prefix = ""
    for lead, word in (("delta/", "Δ "), ("drop/", "drop of "), ("mde/", "detectable drop of "),
                       ("min/", "lowest "), ("max/", "highest "), ("regression/", ""), ("treatment/", "")):
        if column.startswith(lead):
            column, prefix = column[len(lead):], word
            break
    parts = column.split("/")
    name = WORDS.get(parts[-1], parts[-1].replace("_", " ") if "/" in column or prefix else parts[-1])
    where = f" ({'/'.join(parts[:-1])})" if len(parts) > 1 else ""
    text = f"{prefix}{name}{where}"
    return f"{text}, {stat}" if stat else text


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
def _config(reader: MlflowReader, run_id: str) -> dict[str, Any]:
    """The parent run's resolved config (``config/resolved.yaml``), or {} when absent."""
    import yaml

    text = reader.load_text(run_id, "config/resolved.yaml")
    config = yaml.safe_load(text) if text else {}
    return config if isinstance(config, dict) else {}


def _title(config: dict[str, Any], experiment: str) -> str:
    """The question the experiment asks (its description's first sentence), else its name."""
    description = " ".join(str(config.get("description") or "").split())
    first = re.split(r"(?<=[.?!])\s", description)[0] if description else ""
    if first and len(first) <= 120:
        return first
    return f"Experiment {config.get('name') or experiment}"


def _question(config: dict[str, Any], parent: Any) -> str:
    description = " ".join(str(config.get("description") or "").split())
    if description:
        return description
    note = parent.tags.get("mlflow.note.content", "")
    return note if note and not note.startswith("**") else "(no description in the config)"


def _takeaway(reader: MlflowReader, stored: StoredExperiment, config: dict[str, Any], split: str,
              fits: pd.DataFrame | None, gates: pd.DataFrame | None) -> str:
    """The plain-language result, generated from the stored summary, fits and gates (as on the parent run)."""
    from smo_impact.report.takeaway import takeaway

    summary = reader.load_frame(stored.parent.run_id, "summary/summary.csv")
    dose = reader.load_frame(stored.parent.run_id, "impact/dose_response.csv")
    control = str(config.get("control") or "control")
    degenerate = [r.name for r in stored.children if r.tags.get("smo.degenerate") == "true"]
    return takeaway(pd.DataFrame() if summary is None else summary, split, control, fits, gates, degenerate, dose)


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
            digits = 1 if col.startswith(("regression/", "treatment/cost")) else 3  # counts and costs vs rates
            row[col] = f"{mean:.{digits}f} [{mean - half:.{digits}f}, {mean + half:.{digits}f}]"
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
