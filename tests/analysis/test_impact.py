"""Impact analysis: hand-computed dose-response, OLS slope/CI/R², frontier, logging on the parent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from smo_impact.analysis.impact import analyze, fit_line, frontier, frontier_figure
from smo_impact.config import validate
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import make_text_dataset


def _runs() -> pd.DataFrame:
    """Control at 0.80; noise arm: macro-F1 = 0.8 - 0.5 * rate +/- 0.01 (seed 0 up, seed 1 down)."""
    rows = [{"arm": "control", "grid": "-", "grid_params": {}, "seed": s, "test/macro_f1": 0.80,
             "quality/label_noise": 0.0} for s in (0, 1)]
    for rate in (0.1, 0.2, 0.4):
        for seed, wiggle in ((0, 0.01), (1, -0.01)):
            rows.append({"arm": "noise", "grid": f"noise.rate={rate}", "grid_params": {"noise.rate": rate},
                         "seed": seed, "test/macro_f1": 0.8 - 0.5 * rate + wiggle, "quality/label_noise": rate})
    return pd.DataFrame(rows)


def test_dose_response_levels_mean_and_t_interval():
    result = analyze(_runs(), "control", outcomes=("macro_f1",))
    levels = result.dose_response[result.dose_response["x_label"] == "noise.rate"].set_index("x")
    assert list(levels.index) == [0.1, 0.2, 0.4]
    assert levels.loc[0.2, "mean"] == pytest.approx(0.70)
    assert levels.loc[0.2, "n"] == 2
    # two seeds 0.71 / 0.69: std = 0.01414, sem = 0.01, t(0.975, df=1) = 12.706
    assert levels.loc[0.2, "ci_high"] - levels.loc[0.2, "mean"] == pytest.approx(0.12706, abs=1e-4)


def test_fit_recovers_the_planted_slope_with_its_interval():
    fits = analyze(_runs(), "control", outcomes=("macro_f1",)).fits.set_index("x_label")
    swept = fits.loc["noise.rate"]
    assert swept["slope"] == pytest.approx(-0.5)
    assert swept["n"] == 6
    # By hand: x = .1,.1,.2,.2,.4,.4; Sxx = 2 * 0.04667 = 0.09333; residuals all +-0.01 -> SSE = 6e-4,
    # s^2 = SSE / 4 = 1.5e-4, se(slope) = sqrt(1.5e-4 / 0.09333) = 0.04009, t(0.975, 4) = 2.7764.
    assert swept["slope_ci_high"] - swept["slope"] == pytest.approx(2.7764 * 0.04009, rel=1e-3)
    # R² = 1 - SSE/SST, SST = 0.25 * Sxx + SSE = 0.023333 + 0.0006
    assert swept["r2"] == pytest.approx(1 - 6e-4 / (0.25 * 0.093333 + 6e-4), rel=1e-4)
    # measured quality pools every run, control included (8 points)
    assert fits.loc["quality/label_noise", "n"] == 8
    assert fits.loc["quality/label_noise", "slope"] == pytest.approx(-0.5)


def test_metrics_are_namespaced_per_outcome_and_variable():
    metrics = analyze(_runs(), "control", outcomes=("macro_f1",)).metrics()
    assert metrics["impact/test/macro_f1/vs_noise.rate/slope"] == pytest.approx(-0.5)
    assert {"slope", "slope_ci_low", "slope_ci_high", "r2"} == {
        k.rsplit("/", 1)[1] for k in metrics if "vs_noise.rate" in k
    }
    assert "impact/test/macro_f1/vs_quality/label_noise/slope" in metrics


def test_fit_needs_three_points_and_varying_x():
    assert fit_line(np.array([0.1, 0.2]), np.array([1.0, 0.9])) is None
    assert fit_line(np.array([0.1, 0.1, 0.1]), np.array([1.0, 0.9, 0.8])) is None


def test_frontier_marks_dominated_points():
    runs = pd.DataFrame({
        "arm": ["cheap", "cheap", "mid", "expensive"], "grid": ["-"] * 4, "seed": [0, 1, 0, 0],
        "treatment/cost": [100.0, 100.0, 300.0, 500.0], "test/macro_f1": [0.60, 0.62, 0.58, 0.70],
    })
    table = frontier(runs, ["test/macro_f1"]).set_index("arm")
    assert table.loc["cheap", "cost"] == 100.0 and table.loc["cheap", "test/macro_f1"] == pytest.approx(0.61)
    # mid costs more than cheap and scores less: dominated
    assert table["on_frontier_macro_f1"].to_dict() == {"cheap": True, "mid": False, "expensive": True}
    figure = frontier_figure(analyze(runs.assign(grid_params=[{}] * 4), "cheap"))
    (ax,) = figure.axes
    assert ax.get_xlabel() == "annotation cost (treatment/cost)"
    assert ax.lines[0].get_xdata().tolist() == [100.0, 500.0]  # the frontier skips 'mid'


@pytest.mark.slow  # six real runs with MLflow logging: 40-140 s on 2 shared cores
def test_experiment_logs_impact_on_the_parent_run(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = validate({
        "name": "impact", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "label_noise": ["aggregate", {"noise": {"rate": 0.1}}]},
        "sweep": {"label_noise": {"noise.rate": [0.0, 0.45]}}, "seeds": [0, 1],
        "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
    })
    result = run_experiment(config, lambda: MlflowTracker(store, "impact"), dataset=make_text_dataset(300))
    client = MlflowClient(store)
    parent = client.get_run(result.parent_run_id)
    slope = parent.data.metrics["impact/test/macro_f1/vs_noise.rate/slope"]
    low = parent.data.metrics["impact/test/macro_f1/vs_noise.rate/slope_ci_low"]
    high = parent.data.metrics["impact/test/macro_f1/vs_noise.rate/slope_ci_high"]
    assert low <= slope <= high
    assert slope < 0  # 45% flipped labels hurt a model that learns the clean ones well
    # the same slope recomputed from the child runs' own metrics
    noisy = result.runs[result.runs["arm"] == "label_noise"]
    x = noisy["grid_params"].map(lambda d: d["noise.rate"]).to_numpy(float)
    assert slope == pytest.approx(np.polyfit(x, noisy["test/macro_f1"].to_numpy(float), 1)[0], rel=1e-6)
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id, "impact")}
    assert {"impact/fits.csv", "impact/dose_response.csv"} <= artifacts
    plots = {a.path for a in client.list_artifacts(result.parent_run_id, "plots")}
    assert "plots/impact_vs_noise.rate.png" in plots


def _noise_runs_with_realized_rate() -> pd.DataFrame:
    """A noise sweep whose realized flip rate falls short of the requested one (0.9x, per-seed
    offsets), as instance-dependent noise did before weights were water-filled; y is linear in the
    realized rate. The control logs no flip rate."""
    rows = [{"arm": "control", "grid": "-", "grid_params": {}, "seed": s, "test/macro_f1": 0.80} for s in (0, 1)]
    for rate in (0.1, 0.2, 0.4):
        for seed, offset in ((0, 0.004), (1, -0.006)):
            realized = 0.9 * rate + offset
            rows.append({"arm": "noise", "grid": f"noise.rate={rate}", "grid_params": {"noise.rate": rate},
                         "seed": seed, "test/macro_f1": 0.8 - 0.5 * realized, "treatment/realized_flip_rate": realized,
                         "treatment/requested_flip_rate": rate})
    return pd.DataFrame(rows)


def test_realized_flip_rate_gets_its_own_fit_and_metric():
    runs = _noise_runs_with_realized_rate()
    result = analyze(runs, "control", outcomes=("macro_f1",))
    fits = result.fits.set_index("x_label")
    realized = fits.loc["treatment/realized_flip_rate"]
    assert (realized["arm"], realized["x_name"], realized["n"]) == ("*", "treatment/realized_flip_rate", 6)
    noisy = runs[runs["arm"] == "noise"]
    x, y = noisy["treatment/realized_flip_rate"].to_numpy(float), noisy["test/macro_f1"].to_numpy(float)
    assert realized["slope"] == pytest.approx(np.polyfit(x, y, 1)[0])
    assert realized["slope"] == pytest.approx(-0.5)
    # against the requested rate the same runs give a different, biased slope
    requested = noisy["grid_params"].map(lambda d: d["noise.rate"]).to_numpy(float)
    assert fits.loc["noise.rate", "slope"] == pytest.approx(np.polyfit(requested, y, 1)[0])
    assert abs(fits.loc["noise.rate", "slope"] - (-0.5)) > 0.03
    metrics = result.metrics()
    assert metrics["impact/test/macro_f1/vs_treatment/realized_flip_rate/slope"] == pytest.approx(-0.5)
    levels = result.dose_response[result.dose_response["x_label"] == "treatment/realized_flip_rate"]
    assert sorted(levels["x"]) == pytest.approx(sorted(x))  # every run its own level
    # the requested rate is the swept parameter again, not a measurement: no second fit for it
    assert set(fits.index) == {"noise.rate", "treatment/realized_flip_rate"}


def test_no_realized_rate_fit_without_the_metric():
    runs = _noise_runs_with_realized_rate().drop(columns="treatment/realized_flip_rate")
    fits = analyze(runs, "control", outcomes=("macro_f1",)).fits
    assert "treatment/realized_flip_rate" not in set(fits["x_label"])


def test_outcomes_may_be_any_logged_metric():
    """A per-class recall or another benchmark's metric is analysed like macro-F1: by its full name,
    or under the primary namespace."""
    runs = _runs()
    runs["test/class/hate/recall"] = 1.0 - runs["quality/label_noise"]
    runs["view/macro_f1"] = runs["test/macro_f1"]
    fits = analyze(runs, "control", outcomes=("class/hate/recall", "view/macro_f1", "no_such_metric")).fits
    slopes = fits[fits["x_label"] == "noise.rate"].set_index("outcome")["slope"]
    assert slopes["test/class/hate/recall"] == pytest.approx(-1.0)
    assert slopes["view/macro_f1"] == pytest.approx(-0.5)
    assert set(slopes.index) == {"test/class/hate/recall", "view/macro_f1"}
    # By default, the K-class outcomes are analysed where they are logged.
    runs["test/worst_class_recall"] = runs["test/macro_f1"]
    assert "test/worst_class_recall" in set(analyze(runs, "control").fits["outcome"])
