"""The dataset section of a config: bring-your-own fields are validated before any data is read."""

from __future__ import annotations

import pytest

from smo_impact.config import validate
from smo_impact.errors import ConfigError


def config(**dataset) -> dict:
    return {"name": "t", "dataset": dataset, "arms": {"control": ["aggregate"]}}


def test_builtin_by_name_still_works():
    spec = validate(config(name="hs-brexit")).dataset
    assert (spec.name, spec.path, spec.binarize, spec.leakage) == ("hs-brexit", None, True, None)


def test_own_data_config_validates_without_reading_files():
    spec = validate(
        config(name="mine", path="does/not/exist.csv", labels=["no", "yes"], column_map={"worker": "rater"}, duplicates="last")
    ).dataset
    assert spec.paths == ["does/not/exist.csv"]
    assert spec.duplicates == "last"


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ({"name": "hs-brexti"}, r"dataset.name: Unknown dataset 'hs-brexti'. Did you mean 'hs-brexit'\?.*\(or set dataset.path to load your own data\)"),
        ({"name": "md-agreement", "path": "a.csv", "labels": [0, 1]}, r"dataset.name: 'md-agreement' is a built-in dataset; give your own data \(dataset.path\) another name"),
        ({"name": "mine", "path": "a.csv"}, r"dataset: .*your own data needs dataset.labels: the label set in order, benign to harmful"),
        ({"name": "hs-brexit", "labels": [0, 1]}, r"labels only apply to your own data \(set dataset.path\); built-in datasets declare their own"),
        ({"name": "mine", "path": "a.csv", "labels": ["no", "yes"], "positive_label": "maybe"}, r"dataset.positive_label 'maybe' is not one of dataset.labels \['no', 'yes'\]"),
        ({"name": "mine", "path": "a.csv", "labels": [1, 2, 3], "positive_labels": [3, 4]}, r"dataset.positive_labels \[4\] are not in dataset.labels \[1, 2, 3\]"),
        ({"name": "mine", "path": "a.csv", "labels": [True, False]}, r"dataset.labels: labels contains the boolean True; YAML reads unquoted yes/no/true/false as booleans: quote them"),
        ({"name": "mine", "path": "a.csv", "labels": [0, 1], "duplicates": "keep"}, r"dataset.duplicates: Input should be 'error', 'first' or 'last'"),
        ({"name": "mine", "path": "a.csv", "labels": [0, 1], "leakage": "ignore"}, r"dataset.leakage: Input should be 'error', 'dedupe' or 'warn'"),
        ({"name": "mine", "path": "a.csv", "labels": [0, 1], "layout": "tall"}, r"dataset.layout: Input should be 'long', 'wide', 'count' or 'label_studio'"),
        ({"name": "mine", "path": "a.csv", "labels": [0, 1], "rater_columns": ["r1"]}, r"dataset.rater_columns only applies to layout: wide"),
        ({"name": "mine", "path": "a.json", "labels": [0, 1], "format": "label_studio"}, r"a Label Studio export needs both format: label_studio and layout: label_studio"),
        ({"name": "mine", "path": "a.csv", "labels": [0, 1], "colum_map": {}}, r"dataset.colum_map: unknown key \(not allowed here\)"),
    ],
)
def test_dataset_config_errors(dataset, message):
    with pytest.raises(ConfigError, match=message):
        validate(config(**dataset))
