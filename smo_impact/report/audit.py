"""The audit report: Markdown and self-contained HTML (plots embedded as PNG), plus the plots.

Plots: agreement by slice, the distribution of per-rater agreement, per-rater bias (flag rate vs
agreement), the distribution of pairwise Cohen's kappa and the agreement-level histogram.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import pandas as pd

# Raters with fewer judgements are left out of the rater plots (their rates are mostly noise).
PLOT_MIN_JUDGEMENTS = 10


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def audit_figures(audit: Any, min_judgements: int = PLOT_MIN_JUDGEMENTS) -> dict[str, Any]:
    """The audit's plots as matplotlib figures, keyed by file stem."""
    plt = _pyplot()
    figures: dict[str, Any] = {}
    raters = audit.raters_[audit.raters_["judgements"] >= min_judgements].dropna(subset=["rater_agreement"])

    slices = audit.slices_.dropna(subset=["percent_agreement"])
    if not slices.empty:
        # Alpha and raw agreement side by side: within a slice where nearly every item has the same
        # label (HateCheck functionalities), alpha collapses to ~0 while raters still agree.
        fig, axes = plt.subplots(1, 2, sharey=True, figsize=(10, 0.4 * len(slices) + 1.6))
        names = [f"{'raters ' if k == 'rater' else ''}{s}={v}" for k, s, v in zip(slices["kind"], slices["slice"], slices["value"])]
        for ax, column, overall, title in (
            (axes[0], "krippendorff_alpha", audit.summary_["krippendorff_alpha"], "Krippendorff's alpha (nominal)"),
            (axes[1], "percent_agreement", audit.summary_["percent_agreement"], "percent agreement"),
        ):
            values = slices[column].fillna(0.0)
            ax.barh(names, values, color="tab:blue")
            ax.axvline(overall, color="grey", linestyle="--", label="all items")
            for y, (value, n) in enumerate(zip(slices[column], slices["items"])):
                ax.text(max(value, 0) if value == value else 0, y, f" {value:.2f} (n={n})" if value == value else " n/a", va="center", fontsize=7)
            ax.set_xlim(min(0.0, values.min() * 1.1), max(1.0, values.max()) * 1.3)
            ax.set_xlabel(title)
        axes[0].invert_yaxis()
        axes[0].legend(loc="upper right", fontsize=8)
        fig.suptitle("Agreement by slice (n = items)")
        fig.tight_layout()
        figures["agreement_by_slice"] = fig

    if not raters.empty:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(raters["rater_agreement"], bins=20, range=(0, 1), color="tab:blue", edgecolor="white")
        ax.axvline(raters["rater_agreement"].median(), color="black", linestyle="--", label="median")
        ax.set_xlabel("agreement with the other raters' majority (leave-one-out)")
        ax.set_ylabel("raters")
        ax.set_title(f"Per-rater agreement (raters with >= {min_judgements} judgements: {len(raters)})")
        ax.legend()
        fig.tight_layout()
        figures["rater_agreement"] = fig

        fig, ax = plt.subplots(figsize=(6, 4.5))
        size = 10 + 90 * (raters["judgements"] / raters["judgements"].max())
        points = ax.scatter(raters["flag_rate"], raters["rater_agreement"], s=size, c=raters["flag_bias"],
                            cmap="coolwarm", vmin=-0.5, vmax=0.5, alpha=0.7, edgecolors="none")
        ax.axvline(audit.summary_["positive_rate"], color="grey", linestyle="--", label="pool flag rate")
        fig.colorbar(points, ax=ax, label="flag bias vs peers on the same items")
        ax.set_xlabel("flag rate (share of positive labels)")
        ax.set_ylabel("leave-one-out agreement")
        ax.set_title("Per-rater bias (size = judgements)")
        ax.legend(loc="lower left")
        fig.tight_layout()
        figures["rater_bias"] = fig

    kappas = audit.pairs_["kappa"].dropna()
    if len(kappas) >= 3:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(kappas, bins=min(30, max(5, len(kappas) // 5)), color="tab:blue", edgecolor="white")
        ax.axvline(kappas.median(), color="black", linestyle="--", label=f"median {kappas.median():.2f}")
        ax.set_xlabel("Cohen's kappa")
        ax.set_ylabel("rater pairs")
        ax.set_title(f"Cohen's kappa per rater pair ({len(kappas)} pairs with >= {int(audit.pairs_['shared_items'].min())} shared items)")
        ax.legend()
        fig.tight_layout()
        figures["pair_kappa"] = fig

    levels = audit.levels_
    if not levels.empty:
        fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(levels) + 2), 4))
        ax.bar(levels["level"], levels["share"], color="tab:blue")
        for x, (share, n) in enumerate(zip(levels["share"], levels["items"])):
            ax.text(x, share, f"{share:.0%}\n{n}", ha="center", va="bottom", fontsize=8)
        ax.set_xlabel("agreement level (votes for the top label / judgements)")
        ax.set_ylabel("share of items")
        ax.set_ylim(0, min(1.0, levels["share"].max() * 1.25 + 0.02))
        ax.set_title("Items by agreement level")
        if len(levels) > 12:
            ax.tick_params(axis="x", rotation=90)
        fig.tight_layout()
        figures["agreement_levels"] = fig
    return figures


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _markdown_table(frame: pd.DataFrame, max_rows: int = 25) -> str:
    if frame.empty:
        return "_(none)_\n"
    shown = frame.head(max_rows)
    lines = ["| " + " | ".join(map(str, shown.columns)) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    more = f"\n_{len(frame) - max_rows} more rows in the CSV files._\n" if len(frame) > max_rows else "\n"
    return "\n".join(lines) + "\n" + more


def _sections(audit: Any, results: list[Any]) -> list[tuple[str, str, pd.DataFrame | None]]:
    """(title, text, table) sections shared by the Markdown and HTML renderings."""
    summary = pd.DataFrame({"figure": list(audit.summary_), "value": [_fmt(v) for v in audit.summary_.values()]})
    sections: list[tuple[str, str, pd.DataFrame | None]] = [("Headline figures", audit.fleiss_.note + ".", summary)]
    if results:
        rows = pd.DataFrame(
            {
                "target": [r.target.label for r in results],
                "result": ["PASS" if r.passed else "FAIL" for r in results],
                "value": [r.value for r in results],
                "judged": [r.judged for r in results],
                "failing": [len(r.failing) for r in results],
                "note": [r.note for r in results],
            }
        )
        sections.append(("Quality targets", "value: the dataset figure, or the worst rater/slice judged.", rows))
        for r in results:
            if not r.failing.empty:
                sections.append((f"Failing: {r.target.label}", "", r.failing))
    sections.append(("Agreement by slice", "", audit.slices_))
    judged = audit.raters_.reset_index()
    sections.append(("Raters (most judgements first)", "", judged))
    sections.append(
        ("Largest per-slice flag biases", "A rater's flag rate in a slice minus the other raters' on the same items.",
         audit.rater_slices_)
    )
    pairs = audit.pairs_
    text = f"{len(pairs)} rater pairs share enough items for a kappa."
    if len(pairs):
        q = pairs["kappa"].quantile([0.1, 0.5, 0.9])
        text += f" Kappa: 10th percentile {q[0.1]:.3f}, median {q[0.5]:.3f}, 90th percentile {q[0.9]:.3f}."
    sections.append(("Cohen's kappa per rater pair", text, pairs))
    sections.append(("Items by agreement level", "", audit.levels_))
    hardest = audit.items_.sort_values(["entropy", "judgements"], ascending=False).reset_index().head(25)
    sections.append(("Most contested items", "", hardest))
    return sections


def render_markdown(audit: Any, results: list[Any], figure_files: dict[str, str]) -> str:
    """The report as Markdown; figures are linked by their file names."""
    parts = [f"# Annotation quality audit: {audit.dataset_}\n"]
    if results:
        failed = [r for r in results if not r.passed]
        parts.append(f"**{len(results) - len(failed)} of {len(results)} targets pass.**\n")
    for title, text, table in _sections(audit, results):
        parts.append(f"## {title}\n")
        if text:
            parts.append(text + "\n")
        if table is not None:
            # Failing raters/slices are listed in full: they are what the reader must act on.
            parts.append(_markdown_table(table, len(table) if title.startswith("Failing") else 25))
    if figure_files:
        parts.append("## Plots\n")
        parts += [f"![{name}]({file})\n" for name, file in figure_files.items()]
    return "\n".join(parts)


def render_html(audit: Any, results: list[Any], figures: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page (PNG plots embedded as data URIs)."""
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
        "font-size:13px;margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#f3f3f3}.PASS{color:#187a2f;font-weight:bold}.FAIL{color:#b3261e;font-weight:bold}"
        "img{max-width:100%;margin:1em 0}"
    )
    body = [f"<h1>Annotation quality audit: {html.escape(audit.dataset_)}</h1>"]
    if results:
        failed = sum(not r.passed for r in results)
        verdict = "PASS" if not failed else "FAIL"
        body.append(f'<p class="{verdict}">{len(results) - failed} of {len(results)} targets pass.</p>')
    for name, png in figures.items():
        data = base64.b64encode(png).decode()
        body.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
    for title, text, table in _sections(audit, results):
        body.append(f"<h2>{html.escape(title)}</h2>")
        if text:
            body.append(f"<p>{html.escape(text)}</p>")
        if table is not None:
            shown = table if title.startswith("Failing") else table.head(50)
            cells = shown.map(_fmt) if not shown.empty else shown
            markup = cells.to_html(index=False, escape=True, border=0)
            for verdict in ("PASS", "FAIL"):
                markup = markup.replace(f"<td>{verdict}</td>", f'<td class="{verdict}">{verdict}</td>')
            body.append(markup)
            if len(table) > len(shown):
                body.append(f"<p><em>{len(table) - len(shown)} more rows in the CSV files.</em></p>")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Audit: {html.escape(audit.dataset_)}</title><style>{style}</style></head><body>{''.join(body)}</body></html>"


def write_audit_report(audit: Any, results: list[Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.html``, ``report.md``, the PNG plots and the full tables as CSV.

    Returns:
        Written paths keyed by name (``html``, ``markdown``, plot stems, table names).
    """
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    pngs: dict[str, bytes] = {}
    for name, fig in audit_figures(audit).items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        pngs[name] = buffer.getvalue()
        path = out / f"{name}.png"
        path.write_bytes(pngs[name])
        written[name] = path
    for name, table in (
        ("raters", audit.raters_.reset_index()),
        ("pairs", audit.pairs_),
        ("items", audit.items_.reset_index()),
        ("slices", audit.slices_),
        ("rater_slices", audit.rater_slices_),
    ):
        path = out / f"{name}.csv"
        table.to_csv(path, index=False)
        written[f"{name}.csv"] = path
    written["markdown"] = out / "report.md"
    written["markdown"].write_text(render_markdown(audit, results, {n: f"{n}.png" for n in pngs}), encoding="utf-8")
    written["html"] = out / "report.html"
    written["html"].write_text(render_html(audit, results, pngs), encoding="utf-8")
    return written


def log_audit(tracker: Any, audit: Any, results: list[Any], written: dict[str, Path], params: dict[str, Any]) -> str:
    """Log an audit as its own run through a :class:`~smo_impact.tracking.base.Tracker`.

    Metrics ``quality/<figure>`` (the headline figures) and ``targets/{passed,failed}``; the
    report, its tables and plots as artifacts under ``audit/``.

    Returns:
        The run id.
    """
    plt = _pyplot()
    failed = sum(not r.passed for r in results)
    tags = {"smo.kind": "audit", "smo.dataset": audit.dataset_}
    if results:
        tags["smo.audit.verdict"] = "FAIL" if failed else "PASS"
    run_id = tracker.start_run(f"audit:{audit.dataset_}", tags)
    status = "FAILED"
    try:
        tracker.log_params(run_id, params)
        metrics = {f"quality/{k}": v for k, v in audit.as_metrics().items()}
        if results:
            metrics.update({"targets/passed": float(len(results) - failed), "targets/failed": float(failed)})
        tracker.log_metrics(run_id, metrics)
        for name in ("markdown", "html"):
            tracker.log_text(run_id, written[name].read_text(encoding="utf-8"), f"audit/{written[name].name}")
        for name, table in (("raters", audit.raters_.reset_index()), ("slices", audit.slices_), ("pairs", audit.pairs_)):
            tracker.log_frame(run_id, table, f"audit/{name}.csv")
        if results:
            verdicts = pd.DataFrame(
                {"target": [r.target.label for r in results], "passed": [r.passed for r in results],
                 "value": [r.value for r in results], "failing": [len(r.failing) for r in results]}
            )
            tracker.log_frame(run_id, verdicts, "audit/targets.csv")
        for name, fig in audit_figures(audit).items():
            tracker.log_figure(run_id, fig, f"audit/{name}.png")
            plt.close(fig)
        status = "FINISHED"
    finally:
        tracker.end_run(run_id, status)
    return run_id
