"""The one-sentence takeaway and the parent run's description (issue 19)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from smo_impact.report.takeaway import NOTE_LIMIT, arm_label, parent_description, takeaway

# The quickstart's fit against the swept rate as the README quotes it: slope -0.367 [-0.426, -0.309].
FITS = pd.DataFrame([
    {"outcome": "test/macro_f1", "x_label": "noise.rate", "x_name": "noise.rate", "arm": "label_noise",
     "slope": -0.367, "slope_ci_low": -0.426, "slope_ci_high": -0.309, "r2": 0.95},
    {"outcome": "test/macro_f1", "x_label": "quality/label_noise", "x_name": "quality/label_noise", "arm": "*",
     "slope": -0.9, "slope_ci_low": -1.0, "slope_ci_high": -0.8, "r2": 0.9},  # measured, not swept: not quoted
    {"outcome": "test/recall", "x_label": "noise.rate", "x_name": "noise.rate", "arm": "label_noise",
     "slope": 0.1, "slope_ci_low": 0.0, "slope_ci_high": 0.2, "r2": 0.3},
])
DOSE = pd.DataFrame({"x_name": "noise.rate", "x": [0.1, 0.2, 0.3, 0.4]})
SUMMARY = pd.DataFrame({
    "arm": ["control", "soft", "noisy"], "grid": ["-", "-", "noise.rate=0.2"], "seeds": [3, 3, 3],
    "test/macro_f1_mean": [0.686, 0.690, 0.649], "test/macro_f1_std": [0.0, 0.004, 0.005],
    "delta/test/macro_f1_mean": [np.nan, 0.004, -0.037], "delta/test/macro_f1_std": [np.nan, 0.004, 0.005],
})


def test_dose_response_in_points_per_grid_step():
    # -0.367 per unit of rate = -3.67 points of macro-F1 per +0.1; the CI [-0.426, -0.309] -> 4.26 and 3.09 points.
    text = takeaway(SUMMARY, "test", "control", FITS, dose=DOSE)
    assert text == "Each +0.1 of rate (label_noise) costs 3.7 points of macro-F1 (95% CI 3.1 to 4.3, R² 0.95)."


def test_a_slope_whose_interval_holds_zero_is_no_clear_trend():
    flat = FITS.assign(slope=-0.01, slope_ci_low=-0.05, slope_ci_high=0.03).head(1)
    assert takeaway(SUMMARY, "test", "control", flat, dose=DOSE) == (
        "Macro-F1 shows no clear trend with rate (label_noise) (-0.1 points per +0.1; 95% CI -0.5 to +0.3 includes 0).")


def test_without_a_sweep_the_arms_are_compared_with_the_control():
    assert takeaway(SUMMARY, "test", "control") == (
        "Against control (macro-F1 0.686), noisy rate=0.2 loses most (-0.037 macro-F1) and soft gains most (+0.004).")
    assert takeaway(SUMMARY.assign(**{"delta/test/macro_f1_mean": [np.nan, 0.0, 0.0]}), "test", "control") == (
        "Every arm scores macro-F1 like control (macro-F1 0.686) (Δ +0.000).")
    assert takeaway(SUMMARY.assign(**{"delta/test/macro_f1_mean": [np.nan, -0.01, -0.03]}), "test", "control") == (
        "Every arm loses macro-F1 against control (macro-F1 0.686): noisy rate=0.2 most (-0.030), soft least (-0.010).")
    one = SUMMARY.iloc[[0, 2]]
    assert takeaway(one, "test", "control") == "Noisy rate=0.2 changes macro-F1 by -0.037 vs control (macro-F1 0.686)."


def test_gates_and_degenerate_runs_join_the_sentence():
    gates = pd.DataFrame({"arm": ["control", "noisy"], "grid": ["-", "noise.rate=0.2"], "gate": ["passed", "failed"],
                          "reasons": ["", "mean drop of test/recall 0.0400 > 0.02 (3 seed(s)); test: mean new false negatives 9 > 5"]})
    text = takeaway(SUMMARY.iloc[[0, 2]], "test", "control", gates=gates, degenerate=["control s0"])
    assert text == (
        "Noisy rate=0.2 changes macro-F1 by -0.037 vs control (macro-F1 0.686); 1 of 2 arms failed a gate: "
        "noisy rate=0.2 (mean drop of test/recall 0.0400 > 0.02 (3 seed(s))); 1 run(s) predict a single class "
        "for every item (control s0): their scores say nothing about the treatments.")
    everything = gates.assign(gate="failed")
    assert "no arm passed its gates: control (" in takeaway(SUMMARY, "test", "control", gates=everything)
    assert takeaway(SUMMARY, "test", "control", gates=gates.assign(gate="passed")).endswith(
        "every arm passed its gates (2 checked).")
    assert takeaway(pd.DataFrame(), "test", "control") == "No finished runs to summarize."


def test_arm_labels_read_like_run_names():
    assert arm_label("label_noise", "noise.rate=0.2,model.C=4.0") == "label_noise rate=0.2 C=4.0"
    assert arm_label("control", "-") == "control"


def test_description_fits_mlflow_tag_limit_and_says_what_was_cut():
    big = pd.concat([SUMMARY.iloc[[2]]] * 400, ignore_index=True).assign(grid=[f"noise.rate={i}" for i in range(400)])
    note = parent_description("exp", "Question?", "Takeaway.", big, "test")
    assert len(note) <= NOTE_LIMIT
    shown = note.count("| noisy |")
    assert 10 < shown < 400
    assert f"_{400 - shown} more row(s) in `summary/summary_table.json`._" in note
    assert note.startswith("**Takeaway.**\n\nQuestion?\n") and note.rstrip().endswith("prints this table.")
