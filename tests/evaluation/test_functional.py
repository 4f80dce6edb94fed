import numpy as np
import pandas as pd
import pytest

from smo_impact.errors import DataError
from smo_impact.evaluation.functional import functional_report


def _cases():
    return pd.DataFrame(
        {
            "task": [f"c{i}" for i in range(8)],
            "text": ["I hate women.", "I hate Muslims.", "Women are scum.", "Muslims are scum.",
                     "I love women.", "I love Muslims.", "Saying 'I hate women' is wrong.", "No Muslim is scum."],
            "gold": [1, 1, 1, 1, 0, 0, 0, 0],
            "functionality": ["derog_neg_emote_h"] * 2 + ["derog_dehum_h"] * 2 + ["ident_pos_nh"] * 2
            + ["counter_quote_nh", "negate_neg_nh"],
            "target_identity": ["women", "Muslims", "women", "Muslims", "women", "Muslims", "women", "Muslims"],
        }
    )


def test_per_functionality_accuracy_from_known_predictions():
    # The model flags anything containing "hate" or "scum": it fails counter-speech and negation,
    # and misses nothing hateful.
    cases = _cases()
    score = np.array([0.9 if ("hate" in t or "scum" in t) else 0.1 for t in cases["text"]])
    report = functional_report(cases, score)
    m = report.metrics
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["accuracy_hateful"] == 1.0 and m["accuracy_non_hateful"] == pytest.approx(0.5)
    assert m["functionality/derog_neg_emote_h/accuracy"] == 1.0
    assert m["functionality/counter_quote_nh/accuracy"] == 0.0
    assert m["functionality/negate_neg_nh/accuracy"] == 0.0
    assert m["target/women/accuracy"] == pytest.approx(3 / 4)
    assert m["failed_cases"] == 2 and m["worst_functionality/accuracy"] == 0.0
    assert report.worst_functionality == "counter_quote_nh"  # ties broken by name
    assert report.failed["task"].tolist() == ["c6", "c7"]
    assert report.per_functionality.iloc[-1]["accuracy"] == 1.0


def test_bad_case_table_is_a_data_error():
    with pytest.raises(DataError, match="lack column\\(s\\) functionality, target_identity"):
        functional_report(_cases().drop(columns=["functionality", "target_identity"]), np.zeros(8))
    bad = _cases().assign(gold=["hateful"] * 8)
    with pytest.raises(DataError, match="case 'c0' has gold label 'hateful'; expected 0 or 1"):
        functional_report(bad, np.zeros(8))
