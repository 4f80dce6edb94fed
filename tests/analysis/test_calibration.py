"""A/A calibration machinery on tiny generated data (the real benchmark: benchmarks/bench_aa.py)."""

from __future__ import annotations

import numpy as np
import pytest

from smo_impact.analysis.calibration import aa_comparisons, false_alarm_note, false_alarms, save_calibration, load_calibration
from smo_impact.config import validate
from tests.conftest import make_text_dataset


def _config(streams: dict[str, int], seeds: int = 6):
    return validate({
        "name": "aa", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate", {"noise": {"rate": 0.1}}], "replica": ["aggregate", {"noise": {"rate": 0.1}}]},
        "streams": streams, "seeds": seeds, "model": {"name": "tfidf_logreg", "params": {"min_df": 1}},
        "evaluation": {"bootstrap": 200},
    })


def test_the_same_stream_reproduces_the_control_exactly():
    # Same steps, same stream: the replica is the control, so every delta is 0 and no gate fires.
    comparisons = aa_comparisons(_config({}, seeds=3), dataset=make_text_dataset(300))
    assert (comparisons["delta/test/macro_f1"] == 0).all()
    assert (comparisons["regression/test/new_false_negatives"] == 0).all()
    table = false_alarms(comparisons, ("test/macro_f1",), arm_seeds=(3,))
    assert table["fired"].sum() == 0
    assert set(table["n"]) == {3, 1}  # three runs, one arm-level group of three seeds


def test_another_stream_differs_by_chance_and_the_table_counts_each_gate():
    comparisons = aa_comparisons(_config({"replica": 1}), dataset=make_text_dataset(300))
    assert len(comparisons) == 6 and (comparisons["delta/test/macro_f1"] != 0).any()
    table = false_alarms(comparisons, ("test/macro_f1", "test/recall"), tolerances=(0.01,), arm_seeds=(3,)).set_index("gate")
    # Recount one gate type by hand from the comparison metrics: drop > 0.01 without a test.
    fired = int((-comparisons["delta/test/macro_f1"] > 0.01).sum())
    assert table.loc["run: drop of test/macro_f1 > 0.01 (no test)", "fired"] == fired
    sig = int(((comparisons["delta/test/recall"] < 0) & (comparisons["delta/test/recall_p"] < 0.05)).sum())
    assert table.loc["run: significant drop of test/recall", "fired"] == sig
    row = table.loc["run: significant drop of test/macro_f1"]
    assert 0 <= row["ci_low"] <= row["rate"] <= row["ci_high"] <= 1


def test_calibrations_are_stored_with_their_date_and_quoted(tmp_path):
    from smo_impact.analysis.calibration import false_alarms
    import pandas as pd

    table = pd.DataFrame([{"gate": "arm (3 seeds): t-test drop of test/macro_f1", "fired": 1, "n": 40, "rate": 0.025,
                           "ci_low": 0.0006, "ci_high": 0.13}])
    path = tmp_path / "cal.json"
    save_calibration(table, "md-agreement/tfidf_logreg", {"comparisons": 120}, path)
    stored = load_calibration(path)
    assert stored["md-agreement/tfidf_logreg"]["comparisons"] == 120
    note = false_alarm_note("arm (3 seeds): t-test drop of test/macro_f1", stored)
    assert note.startswith("1/40 (2.5%, 95% CI 0.1%-13.0%) on md-agreement/tfidf_logreg, 20")
