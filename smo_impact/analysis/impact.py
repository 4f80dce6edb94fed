"""Impact analysis: how outcome metrics move with each swept parameter and with measured quality.

Input is the runs table of one experiment (one row per finished run: ``arm``, ``grid``,
``grid_params``, ``seed`` and its metrics), either from the runner or read back from MLflow
(:meth:`smo_impact.tracking.reader.StoredExperiment.runs_frame`). Three results:

* **dose-response**: per outcome, x variable and x level, the mean over seeds with a 95% t-interval;
* **fits**: an OLS line through every run's (x, outcome), slope with its 95% CI, R² and p-value
  ("each 0.1 of noise rate costs 0.04 ± 0.006 macro-F1");
* **frontier**: per arm/grid point with ``treatment/cost``, mean cost and outcome with 95%
  t-intervals over seeds, and whether no other point is at least as good for at most the same cost
  (cost-quality Pareto frontier).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Those logged are analysed: K-class runs have weighted_f1 and worst_class_recall, binary ones recall.
DEFAULT_OUTCOMES = ("macro_f1", "recall", "roc_auc", "weighted_f1", "worst_class_recall")
# Measured quality of the training labels that a dose-response can be read against. The realized
# flip rate is a noise sweep's actual dose: quote its fit (x_label 'treatment/realized_flip_rate')
# rather than the swept rate's where the two differ. Requested rates (treatment/requested_*) are
# not measured and stay out.
QUALITY_PREFIXES = ("treatment/realized_flip_rate", "quality/")
MIN_POINTS = 3  # an OLS slope with a confidence interval needs at least 3 runs


@dataclass
class ImpactResult:
    """The three tables; see the module docstring for their meaning."""

    dose_response: pd.DataFrame = field(default_factory=pd.DataFrame)
    fits: pd.DataFrame = field(default_factory=pd.DataFrame)
    frontier: pd.DataFrame = field(default_factory=pd.DataFrame)

    def metrics(self) -> dict[str, float]:
        """Parent-run metrics ``impact/<outcome>/vs_<x>/{slope,slope_ci_low,slope_ci_high,r2}``."""
        out: dict[str, float] = {}
        for row in self.fits.itertuples():
            base = f"impact/{row.outcome}/vs_{_safe(row.x_label)}"
            for stat in ("slope", "slope_ci_low", "slope_ci_high", "r2"):
                value = getattr(row, stat)
                if pd.notna(value):
                    out[f"{base}/{stat}"] = float(value)
        return out


def outcome_columns(runs: pd.DataFrame, split: str, outcomes: tuple[str, ...] | list[str]) -> list[str]:
    """The runs-table columns of ``outcomes``: ``<split>/<name>`` where logged (``macro_f1`` ->
    ``test/macro_f1``), else the name as a full metric name (``view_v2/recall``,
    ``test/class/hate/recall``); names logged by no run are left out."""
    columns = []
    for name in outcomes:
        column = f"{split}/{name}" if f"{split}/{name}" in runs.columns else name
        if column in runs.columns and column not in columns:
            columns.append(column)
    return columns


def analyze(
    runs: pd.DataFrame, control: str, split: str = "test", outcomes: tuple[str, ...] | list[str] | None = None
) -> ImpactResult:
    """Dose-response tables, OLS fits and the cost frontier of one experiment's runs.

    Args:
        runs: one row per finished run (``arm``, ``grid``, ``grid_params``, ``seed``, metrics).
        control: the control arm's name (not part of the swept-parameter fits).
        split: the primary benchmark namespace.
        outcomes: outcome metrics, any logged metric (see :func:`outcome_columns`); default
            :data:`DEFAULT_OUTCOMES` (``evaluation.outcomes`` in the config).
    """
    if runs.empty:
        return ImpactResult()
    outcome_cols = outcome_columns(runs, split, outcomes or DEFAULT_OUTCOMES)
    points = _points(runs, control)
    dose, fits = [], []
    for (x_label, arm, x_name), frame in points.groupby(["x_label", "arm", "x_name"], sort=False):
        for outcome in outcome_cols:
            data = frame[["x", outcome, "seed"]].rename(columns={outcome: "y"}).dropna()
            if data.empty:
                continue
            dose.append(_levels(data).assign(outcome=outcome, x_label=x_label, x_name=x_name, arm=arm))
            fit = fit_line(data["x"].to_numpy(float), data["y"].to_numpy(float))
            if fit is not None:
                fits.append({"outcome": outcome, "x_label": x_label, "x_name": x_name, "arm": arm, **fit})
    dose_frame = pd.concat(dose, ignore_index=True) if dose else pd.DataFrame()
    if not dose_frame.empty:
        dose_frame = dose_frame[["outcome", "x_label", "x_name", "arm", "x", "n", "mean", "std", "ci_low", "ci_high"]]
    return ImpactResult(dose_frame, pd.DataFrame(fits), frontier(runs, outcome_cols))


def fit_line(x: np.ndarray, y: np.ndarray, alpha: float = 0.05) -> dict[str, float] | None:
    """OLS ``y = intercept + slope * x``: slope, its (1 - alpha) CI, R², p-value and n.

    None when fewer than :data:`MIN_POINTS` points or ``x`` does not vary.
    """
    if len(x) < MIN_POINTS or np.ptp(x) == 0:
        return None
    # The module, not statsmodels.api: the api imports all of statsmodels (0.5 s of every sweep).
    from statsmodels.regression.linear_model import OLS

    model = OLS(np.asarray(y, float), np.column_stack([np.ones(len(x)), np.asarray(x, float)])).fit()
    low, high = model.conf_int(alpha)[1]
    # A perfect fit (identical seeds) has zero residual variance: the CI collapses onto the slope.
    r2 = float(model.rsquared) if np.ptp(y) > 0 else float("nan")
    return {
        "slope": float(model.params[1]), "slope_ci_low": float(low), "slope_ci_high": float(high),
        "intercept": float(model.params[0]), "r2": r2, "p_value": float(model.pvalues[1]), "n": int(len(x)),
    }


def frontier(runs: pd.DataFrame, outcome_cols: list[str]) -> pd.DataFrame:
    """Cost and outcomes per arm/grid point with ``treatment/cost``: the mean over seeds with a 95%
    t-interval (``cost_ci_low``/``cost_ci_high``, ``<outcome>_ci_low``/``_ci_high``; n = seeds), and
    ``on_frontier_<outcome>`` marking points that no other point beats on mean outcome at no more
    mean cost."""
    if "treatment/cost" not in runs.columns:
        return pd.DataFrame()
    priced = runs.dropna(subset=["treatment/cost"])
    if priced.empty:
        return pd.DataFrame()
    columns = ["treatment/cost", *outcome_cols]
    grouped = priced.groupby(["arm", "grid"], sort=False)
    table = grouped[columns].mean().reset_index()
    table.insert(2, "n", grouped.size().to_numpy())
    half = _t_half_width(grouped[columns].std().to_numpy(), table["n"].to_numpy())
    for j, col in enumerate(columns):
        name = "cost" if col == "treatment/cost" else col
        table[f"{name}_ci_low"] = table[col].to_numpy() - half[:, j]
        table[f"{name}_ci_high"] = table[col].to_numpy() + half[:, j]
    table = table.rename(columns={"treatment/cost": "cost"})
    for col in outcome_cols:
        cost, value = table["cost"].to_numpy(), table[col].to_numpy()
        dominated = [
            bool(np.any((cost <= c) & (value >= v) & ((cost < c) | (value > v)))) for c, v in zip(cost, value)
        ]
        table[f"on_frontier_{col.split('/')[-1]}"] = ~np.array(dominated)
    ordered = ["arm", "grid", "n", "cost", "cost_ci_low", "cost_ci_high"]
    ordered += [c for col in outcome_cols for c in (col, f"{col}_ci_low", f"{col}_ci_high")]
    ordered += [c for c in table.columns if c not in ordered]
    return table[ordered].sort_values("cost", kind="stable").reset_index(drop=True)


def _t_half_width(std: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Half-width of a 95% t-interval of a mean over ``n`` seeds (0 for a single seed)."""
    from scipy import stats

    n = n.reshape(-1, 1).astype(float)
    t = stats.t.ppf(0.975, np.maximum(n - 1, 1))
    half = t * np.nan_to_num(std) / np.sqrt(n)
    return np.where(n > 1, half, 0.0)


def _points(runs: pd.DataFrame, control: str) -> pd.DataFrame:
    """Long table of (x_label, arm, x_name, x, seed, outcomes...): one row per run per x variable.

    Swept parameters are read per treatment arm (``grid_params``); measured quality across all runs
    that log it (arm ``*``; the control too where it logs it, as for ``quality/*``), since it is the
    realised dose whatever arm produced it. ``treatment/realized_flip_rate`` is logged by noise
    steps only, so its fit covers the runs with noise (the control has no flip rate, not a 0).
    """
    metric_cols = [c for c in runs.columns if "/" in c]
    frames = []
    swept = runs[(runs["arm"] != control) & runs["grid"].ne("-")]
    params = sorted({p for g in swept.get("grid_params", pd.Series(dtype=object)) for p in (g or {})})
    for param in params:
        arms = [a for a, g in swept.groupby("arm", sort=False) if g["grid_params"].map(lambda d: param in d).all()]
        for arm in arms:
            group = swept[swept["arm"] == arm]
            x = pd.to_numeric(group["grid_params"].map(lambda d: d[param]), errors="coerce")
            if x.isna().any():
                continue
            label = param if len(arms) == 1 else f"{arm}.{param}"
            frames.append(group[["seed", *metric_cols]].assign(x=x.to_numpy(float), x_label=label, arm=arm, x_name=param))
    for col in [c for c in metric_cols if c.startswith(QUALITY_PREFIXES)]:
        values = runs[col].dropna()
        if values.nunique() > 1:
            frames.append(runs.loc[values.index, ["seed", *metric_cols]].assign(x=values.to_numpy(float), x_label=col, arm="*", x_name=col))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["x_label", "arm", "x_name"])


def _levels(data: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and 95% t-interval over seeds at each x level."""
    from scipy import stats

    grouped = data.groupby("x")["y"]
    table = grouped.agg(n="count", mean="mean", std="std").reset_index()
    sem = table["std"] / np.sqrt(table["n"])
    t = stats.t.ppf(0.975, np.maximum(table["n"] - 1, 1))
    half = np.where(table["n"] > 1, t * sem.fillna(0.0), 0.0)
    table["std"] = table["std"].fillna(0.0)
    table["ci_low"], table["ci_high"] = table["mean"] - half, table["mean"] + half
    return table


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)


# -- plots ----------------------------------------------------------------------------------
def dose_response_figures(result: ImpactResult) -> dict[str, Any]:
    """One figure per x variable: each outcome's mean and 95% CI over seeds, with the OLS line.

    Keys are file stems such as ``impact_vs_noise.rate``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, Any] = {}
    if result.dose_response.empty:
        return figures
    for x_label, frame in result.dose_response.groupby("x_label", sort=False):
        fig, ax = plt.subplots(figsize=(6, 4))
        for outcome, points in frame.groupby("outcome", sort=False):
            yerr = [points["mean"] - points["ci_low"], points["ci_high"] - points["mean"]]
            line = ax.errorbar(points["x"], points["mean"], yerr=yerr, marker="o", capsize=3, linestyle="none")
            fit = result.fits[(result.fits["x_label"] == x_label) & (result.fits["outcome"] == outcome)]
            label = outcome
            if not fit.empty:
                f = fit.iloc[0]
                xs = np.linspace(points["x"].min(), points["x"].max(), 20)
                ax.plot(xs, f["intercept"] + f["slope"] * xs, color=line[0].get_color(), alpha=0.7)
                label = f"{outcome}: slope {f['slope']:+.3f} [{f['slope_ci_low']:+.3f}, {f['slope_ci_high']:+.3f}]"
            line[0].set_label(label)
        ax.set_xlabel(str(x_label))
        ax.set_ylabel("outcome (metric value)")
        single = bool((frame["n"] <= 1).all())  # one run per x level: points are runs, not means
        what = "one run per point; OLS line" if single else "mean and 95% CI over seeds per point; OLS line"
        ax.set_title(f"Outcomes by {x_label} ({what})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        figures[f"impact_vs_{_safe(str(x_label)).replace('/', '_')}"] = fig
    return figures


def frontier_figure(result: ImpactResult) -> Any | None:
    """Outcome vs cost per arm/grid point (mean and 95% CI over seeds on both axes), the Pareto
    frontier of the means drawn as a step line."""
    if result.frontier.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = result.frontier
    outcome = next(c for c in table.columns if "/" in c)
    flag = f"on_frontier_{outcome.split('/')[-1]}"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if f"{outcome}_ci_low" in table.columns:
        xerr = [table["cost"] - table["cost_ci_low"], table["cost_ci_high"] - table["cost"]]
        yerr = [table[outcome] - table[f"{outcome}_ci_low"], table[f"{outcome}_ci_high"] - table[outcome]]
        ax.errorbar(table["cost"], table[outcome], xerr=xerr, yerr=yerr, fmt="none", ecolor="grey", alpha=0.6, capsize=0)
    # One colour per arm (legend), each point labelled with its grid values only: arm names on every
    # point overlap once several arms share a cost.
    for i, (arm, points) in enumerate(table.groupby("arm", sort=False)):
        ax.scatter(points["cost"], points[outcome], color=f"C{i % 10}", label=arm, zorder=3)
        for grid, cost, value in zip(points["grid"], points["cost"], points[outcome]):
            if grid != "-":
                short = ",".join(  # model_rater.threshold=0.9 -> threshold=0.9
                    f"{key.rsplit('.', 1)[-1]}={value}" for key, _, value in (part.partition("=") for part in str(grid).split(","))
                )
                ax.annotate(short, (cost, value), fontsize=6, xytext=(3, 2), textcoords="offset points", color=f"C{i % 10}")
    best = table[table[flag]].sort_values("cost")
    ax.step(best["cost"], best[outcome], where="post", color="black", alpha=0.5, label="frontier")
    ax.set_xlabel("annotation cost (treatment/cost)")
    ax.set_ylabel(outcome)
    seeds = int(table["n"].max()) if "n" in table.columns else 1
    ax.set_title(f"cost-quality frontier (mean and 95% CI over {seeds} seed(s))" if seeds > 1 else "cost-quality frontier (one seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def log_impact(
    tracker: Any, parent_id: str, runs: pd.DataFrame, control: str, split: str,
    outcomes: tuple[str, ...] | list[str] | None = None,
) -> ImpactResult:
    """Analyze ``runs`` and log metrics, tables (``impact/*.csv``) and plots on the parent run."""
    import matplotlib.pyplot as plt

    result = analyze(runs, control, split, outcomes)
    if result.fits.empty and result.frontier.empty:
        return result
    tracker.log_metrics(parent_id, result.metrics())
    for name in ("dose_response", "fits", "frontier"):
        table = getattr(result, name)
        if not table.empty:
            tracker.log_frame(parent_id, table, f"impact/{name}.csv")
    figures = dose_response_figures(result)
    if (figure := frontier_figure(result)) is not None:
        figures["frontier"] = figure
    for stem, figure in figures.items():
        tracker.log_figure(parent_id, figure, f"plots/{stem}.png")
        plt.close(figure)
    return result


__all__ = ["ImpactResult", "analyze", "fit_line", "frontier", "log_impact", "dose_response_figures", "frontier_figure"]
