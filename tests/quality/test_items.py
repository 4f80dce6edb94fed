import pytest

from smo_impact.quality.items import agreement_levels, item_difficulty


def test_item_difficulty_levels_and_entropy(toy_annotations):
    items = item_difficulty(toy_annotations, (0, 1))
    assert items.loc["t1", "level"] == "5/5" and items.loc["t1", "entropy"] == 0.0
    assert items.loc["t3", "level"] == "3/5" and items.loc["t4", "level"] == "3/5"
    assert items.loc["t5", "level"] == "4/5"
    # 3 vs 2 votes: -(0.6 log2 0.6 + 0.4 log2 0.4) = 0.97095
    assert items.loc["t3", "entropy"] == pytest.approx(0.970951, abs=1e-6)
    assert items.loc["t5", "agreement"] == pytest.approx(0.8)


def test_agreement_level_shares(toy_annotations):
    levels = agreement_levels(item_difficulty(toy_annotations, (0, 1)))
    assert levels["level"].tolist() == ["5/5", "4/5", "3/5"]
    assert levels["items"].tolist() == [2, 1, 2]
    assert levels["share"].tolist() == pytest.approx([0.4, 0.2, 0.4])
