"""The audit report: Markdown and self-contained HTML (plots embedded as PNG), plus the plots.

It opens with the verdict against the targets and says what each figure means in words (alpha
against Krippendorff's 0.667 / 0.8 thresholds, kappas on Landis & Koch's scale), lists the most
contested items with their text, and says why a table is empty instead of showing it empty.

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
    shown = frame.head(max_rows)
    lines = ["| " + " | ".join(map(str, shown.columns)) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(_fmt(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |"
              for row in shown.itertuples(index=False)]
    more = f"\n_{len(frame) - max_rows} more rows in the CSV files._\n" if len(frame) > max_rows else "\n"
    return "\n".join(lines) + "\n" + more


CONTENT_NOTE = ("Content note: the texts below are quoted as written from an abusive-language dataset and may "
                "be offensive or hateful.")
# Krippendorff (2004), Content Analysis, 2nd ed., p. 241: rely on variables with alpha >= 0.800,
# consider those with 0.667 <= alpha < 0.800 only for tentative conclusions.
ALPHA_RELIABLE, ALPHA_TENTATIVE = 0.8, 0.667
# Landis & Koch (1977), Biometrics 33(1):159-174: the usual words for kappa values.
KAPPA_WORDS = ((0.0, "poor (below chance)"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial"),
               (1.0, "almost perfect"))


def alpha_in_words(alpha: float) -> str:
    """Where an alpha stands against Krippendorff's reliability thresholds 0.667 and 0.8."""
    if alpha != alpha:
        return "cannot be computed: no item has two or more judgements"
    if alpha < 0:
        return "below 0: the raters disagree more often than chance would make them, a sign of systematic disagreement"
    if alpha < ALPHA_TENTATIVE:
        return f"below {ALPHA_TENTATIVE}: not reliable enough even for tentative conclusions (Krippendorff 2004)"
    if alpha < ALPHA_RELIABLE:
        return (f"between {ALPHA_TENTATIVE} and {ALPHA_RELIABLE}: reliable enough for tentative conclusions only "
                "(Krippendorff 2004)")
    return f"at or above {ALPHA_RELIABLE}: reliable (Krippendorff 2004)"


def kappa_in_words(kappa: float) -> str:
    """A kappa value in Landis & Koch's (1977) words."""
    if kappa != kappa:
        return "cannot be computed"
    word = next((w for bound, w in KAPPA_WORDS if (kappa < 0 if bound == 0.0 else kappa <= bound)), KAPPA_WORDS[-1][1])
    return f"{word} agreement beyond chance on Landis & Koch's (1977) scale"


def _figure_rows(audit: Any) -> pd.DataFrame:
    """The headline figures, each with its name and what it means in words."""
    s = audit.summary_
    flagged = ", ".join(map(str, audit.flag_labels_))
    words: dict[str, tuple[str, str]] = {
        "items": ("items", "items with at least one judgement"),
        "judgements": ("judgements", "judgements counted (a rater's repeat judgement of an item is not)"),
        "duplicate_judgements": ("repeat judgements", "a rater judging the same item again; only their first judgement counts"),
        "raters": ("raters", "distinct raters"),
        "judgements_per_item": ("judgements per item", "raters per item, on average"),
        "positive_rate": ("flag rate", f"{s['positive_rate']:.0%} of judgements flag the text (label {flagged})"),
        "percent_agreement": (
            "percent agreement",
            f"two raters of the same item give the same label {s['percent_agreement']:.0%} of the time; not corrected "
            "for chance, so it looks high when most items get the same label",
        ),
        "fleiss_kappa": ("Fleiss' kappa", kappa_in_words(s["fleiss_kappa"])
                         + ("" if s["fleiss_balanced"] else "; computed on the items with the most common number of judgements")),
        "krippendorff_alpha": ("Krippendorff's alpha (nominal)", alpha_in_words(s["krippendorff_alpha"])
                               + _interval(s)),
        "cohen_kappa_pairs": ("rater pairs with a kappa", f"pairs of raters sharing >= {audit.min_shared} items"),
        "cohen_kappa_median": ("median Cohen's kappa", "of those pairs: " + kappa_in_words(s["cohen_kappa_median"])),
        "unanimous_share": ("unanimous items", f"{s['unanimous_share']:.0%} of the items with two or more judgements got one label from every rater"),
        "rater_agreement_mean": ("mean rater agreement",
                                 f"the average rater gives the other raters' majority label on {s['rater_agreement_mean']:.0%} of their items"),
        "loo_agreement": ("judgements with the majority", f"{s['loo_agreement']:.0%} of judgements match the majority of the other raters of the item"),
    }
    if "gold_accuracy" in s:
        words["gold_accuracy"] = ("gold accuracy", f"{s['gold_accuracy']:.0%} of judgements equal the gold label ({audit.gold_column_})")
    if "ds_skill_mean" in s:
        words["ds_skill_mean"] = ("mean Dawid-Skene skill", "the estimated chance that a rater gives the true label, averaged over raters")
    for level in ("ordinal", "interval"):
        if f"krippendorff_alpha_{level}" in s:
            words[f"krippendorff_alpha_{level}"] = (f"Krippendorff's alpha ({level})", alpha_in_words(s[f"krippendorff_alpha_{level}"])
                                                    + f"; counts how far apart the labels are on the {level} scale")
    rows = [(name, _fmt(s[key]), meaning) for key, (name, meaning) in words.items() if key in s]
    return pd.DataFrame(rows, columns=["figure", "value", "in words"])


def _interval(summary: dict[str, Any]) -> str:
    low, high = summary.get("krippendorff_alpha_low"), summary.get("krippendorff_alpha_high")
    if low is None or low != low:
        return ""
    return f"; 95% bootstrap interval {low:.3f} to {high:.3f}"


SCOPE_WORDS = {"rater": "raters", "slice": "slices", "rater_slice": "rater-slice cells"}


def target_line(result: Any) -> str:
    """One target's verdict in a sentence, with the number it rests on."""
    word, target = ("PASS" if result.passed else "FAIL"), result.target
    if result.judged == 0:
        return f"{word}: {target.label}: not judged, {result.note or 'no value'}."
    if target.per == "dataset":
        return f"{word}: {target.label}: the dataset's value is {result.value:.3f}."
    who = SCOPE_WORDS[target.per]
    if result.passed:
        return f"{word}: {target.label}: all {result.judged} {who} judged meet it (worst {result.value:.3f})."
    return f"{word}: {target.label}: {len(result.failing)} of {result.judged} {who} judged miss it (worst {result.value:.3f}; listed below)."


def verdict(audit: Any, results: list[Any]) -> tuple[str, list[str]]:
    """The report's opening: one paragraph (overall verdict and alpha in words) and one line per target."""
    if results:
        failed = sum(not r.passed for r in results)
        overall = (f"Verdict: FAIL. {len(results) - failed} of {len(results)} quality targets pass." if failed
                   else f"Verdict: PASS. All {len(results)} quality targets pass.")
    else:
        overall = ("No quality targets were given (smo-impact audit --targets FILE), so nothing is judged pass or "
                   "fail; what each figure means is said below.")
    alpha = audit.summary_["krippendorff_alpha"]
    text = f"{overall} Krippendorff's alpha is {_fmt(alpha)}, {alpha_in_words(alpha)}."
    return text, [target_line(r) for r in results]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _sections(audit: Any, results: list[Any]) -> list[dict[str, Any]]:
    """Sections shared by the Markdown and HTML renderings.

    Each is a dict: ``title``, ``text``, optional ``lines`` (a list), ``note`` (set apart, before the
    table), ``table`` and ``full`` (list every row). An empty table is replaced by a sentence saying
    why it is empty.
    """
    text, lines = verdict(audit, results)
    sections: list[dict[str, Any]] = [{"title": "Verdict", "text": text, "lines": lines, "verdict": True}]
    sections.append({"title": "What the figures say", "text": f"Fleiss' kappa: {audit.fleiss_.note}.", "table": _figure_rows(audit)})
    for r in results:
        if not r.failing.empty:
            sections.append({"title": f"Failing: {r.target.label}", "table": r.failing, "full": True})

    slices = audit.slices_
    duplicates = "".join(f" {left} is left out: it splits the {'raters' if left in audit.rater_columns_ else 'items'} "
                         f"exactly as {kept} does." for left, kept in audit.duplicate_slices_.items())
    empty = ("This dataset declares no slice columns and its raters have no attribute with 2 to 20 values, so there "
             "is nothing to break agreement down by; name item columns or rater attributes with --by.")
    sections.append({"title": "Agreement by slice", "text": duplicates.strip(), "table": slices, "empty": empty})
    sections.append({"title": "Raters (most judgements first)", "table": audit.raters_.reset_index(),
                     "empty": "No rater has a judgement in this selection."})
    sections.append({
        "title": "Largest per-slice flag biases",
        "text": "A rater's flag rate in a slice minus the other raters' on the same items.",
        "table": audit.rater_slices_,
        "empty": (f"No rater has {audit.min_judgements} or more judgements within one slice"
                  + (" (this dataset declares no item slice columns)" if audit.slices_[audit.slices_["kind"] == "item"].empty else "")
                  + ", so no per-slice bias is reported."),
    })
    pairs = audit.pairs_
    text = f"{_plural(len(pairs), 'rater pair')} share {audit.min_shared} or more items, enough for a kappa."
    if len(pairs):
        q = pairs["kappa"].quantile([0.1, 0.5, 0.9])
        text += f" Kappa: 10th percentile {q[0.1]:.3f}, median {q[0.5]:.3f}, 90th percentile {q[0.9]:.3f}."
    sections.append({
        "title": "Cohen's kappa per rater pair", "text": text if len(pairs) else "", "table": pairs,
        "empty": (f"No two raters share {audit.min_shared} or more items, so no pairwise kappa is computed: items "
                  "were spread over raters so thinly that each pair met too rarely to judge their agreement."),
    })
    sections.append({"title": "Items by agreement level", "table": audit.levels_, "empty": "No item has a judgement."})
    contested = audit.contested_
    sections.append({
        "title": "Most contested items",
        "text": ("The items whose votes are split most evenly (highest entropy of the votes, in bits: 0 when the "
                 "raters are unanimous, 1 for an even split between two labels); minority share: votes not for "
                 "the most chosen label."),
        "note": CONTENT_NOTE if "text" in contested.columns and len(contested) else "",
        "table": contested,
        "empty": "Every item with two or more judgements got one label from all its raters: no item is contested.",
    })
    return sections


def render_markdown(audit: Any, results: list[Any], figure_files: dict[str, str]) -> str:
    """The report as Markdown; figures are linked by their file names."""
    parts = [f"# Annotation quality audit: {audit.dataset_}\n"]
    for section in _sections(audit, results):
        parts.append(f"## {section['title']}\n")
        text = section.get("text", "")
        if section.get("verdict"):
            text = f"**{text}**"
        if text:
            parts.append(text + "\n")
        if section.get("lines"):
            parts.append("\n".join(f"- {line}" for line in section["lines"]) + "\n")
        table = section.get("table")
        if table is None:
            continue
        if table.empty:
            parts.append(f"_{section['empty']}_\n")
            continue
        if section.get("note"):
            parts.append(f"> {section['note']}\n")
        # Failing raters/slices are listed in full: they are what the reader must act on.
        parts.append(_markdown_table(table, len(table) if section.get("full") else 25))
    if figure_files:
        parts.append("## Plots\n")
        parts += [f"![{name}]({file})\n" for name, file in figure_files.items()]
    return "\n".join(parts)


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1240px;padding:0 20px;line-height:1.45;color:#222}"
    "table{border-collapse:collapse;font-size:13px;margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 8px;vertical-align:top}"
    "th{background:#f3f3f3;text-align:left}td.num{text-align:right;white-space:nowrap}"
    "td.txt{text-align:left;white-space:normal;overflow-wrap:anywhere;max-width:520px}"
    ".PASS{color:#187a2f;font-weight:bold}.FAIL{color:#b3261e;font-weight:bold}"
    ".verdict{font-size:1.15em;background:#f4f8ff;border-left:4px solid #3b6fd8;padding:0.7em 1em}"
    ".note{background:#fff6e5;border-left:4px solid #e0a030;padding:0.5em 1em}.empty{color:#555;font-style:italic}"
    ".scroll{overflow-x:auto}.figures{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}"
    ".figures img{width:calc(50% - 8px);height:auto;border:1px solid #eee}"
)


def _html_table(frame: pd.DataFrame) -> str:
    """Numbers right-aligned, text left-aligned and wrapped, PASS/FAIL coloured."""
    numeric = {c: pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in frame}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row):
            text = _fmt(value)
            kind = text if text in ("PASS", "FAIL") else ("num" if numeric[column] else "txt")
            cells.append(f'<td class="{kind}">{html.escape(text)}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def render_html(audit: Any, results: list[Any], figures: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page (PNG plots embedded as data URIs)."""
    body = [f"<h1>Annotation quality audit: {html.escape(audit.dataset_)}</h1>"]
    for section in _sections(audit, results):
        body.append(f"<h2>{html.escape(section['title'])}</h2>")
        text = section.get("text", "")
        if section.get("verdict"):
            state = "" if not results else (" FAIL" if any(not r.passed for r in results) else " PASS")
            body.append(f'<p class="verdict{state}">{html.escape(text)}</p>')
        elif text:
            body.append(f"<p>{html.escape(text)}</p>")
        if section.get("lines"):
            items = "".join(f'<li class="{line.split(":")[0]}">{html.escape(line)}</li>' for line in section["lines"])
            body.append(f"<ul>{items}</ul>")
        table = section.get("table")
        if table is not None and table.empty:
            body.append(f'<p class="empty">{html.escape(section["empty"])}</p>')
        elif table is not None:
            if section.get("note"):
                body.append(f'<p class="note" role="note">{html.escape(section["note"])}</p>')
            shown = table if section.get("full") else table.head(50)
            body.append(_html_table(shown))
            if len(table) > len(shown):
                body.append(f"<p><em>{len(table) - len(shown)} more rows in the CSV files.</em></p>")
        if section["title"] == "What the figures say" and figures:  # the plots follow the figures in words
            body.append('<h2>Plots</h2><div class="figures">')
            for name, png in figures.items():
                data = base64.b64encode(png).decode()
                body.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
            body.append("</div>")
    title = html.escape(audit.dataset_)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Audit: {title}</title><style>{STYLE}</style>"
            f"</head><body>{''.join(body)}</body></html>")


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
        ("contested", audit.contested_),
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
