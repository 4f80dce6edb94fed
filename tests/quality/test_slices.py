import pandas as pd
import pytest

from smo_impact.quality.slices import slice_agreement


def test_agreement_per_item_slice_and_rater_group(toy_annotations):
    # Items t1 t2 t3 in domain "a", t4 t5 in "b"; workers w1 w2 in group "target", w3-w5 "control".
    items = pd.DataFrame({"task": ["t1", "t2", "t3", "t4", "t5"], "domain": ["a", "a", "a", "b", None]})
    workers = pd.DataFrame({"worker": ["w1", "w2", "w3", "w4", "w5"], "group": ["target"] * 2 + ["control"] * 3})
    table = slice_agreement(toy_annotations, (0, 1), 1, items, ["domain"], workers, ["group"])
    rows = table.set_index(["kind", "slice", "value"])
    a = rows.loc[("item", "domain", "a")]
    # t1 and t2 unanimous (1.0); t3 3-2 split: (3*2 + 2*1) / (5*4) = 0.4
    assert a["percent_agreement"] == pytest.approx((1 + 1 + 0.4) / 3)
    assert (a["items"], a["judgements"], a["raters"]) == (3, 15, 5)
    assert rows.loc[("item", "domain", "(none)"), "items"] == 1
    target = rows.loc[("rater", "group", "target")]
    # w1 and w2 label 1 0 1 1 1: unanimous on every item
    assert target["percent_agreement"] == 1.0 and target["krippendorff_alpha"] == pytest.approx(1.0)
    assert target["positive_rate"] == pytest.approx(0.8)
    assert len(table) == 5
