"""MD-Agreement from the mirror: documented counts, checksums, digest stability."""

import shutil

import pytest

from smo_impact.data.catalog import load_dataset
from smo_impact.data.schema import AnnotationSet
from smo_impact.errors import DataError

pytestmark = pytest.mark.integration


def test_md_agreement_counts(mirror):
    data = load_dataset("md-agreement")
    assert data.items["split"].value_counts().to_dict() == {"train": 6592, "test": 3057, "dev": 1104}
    assert len(data.annotations) == 5 * len(data.items)
    assert data.annotations["worker"].nunique() > 800
    assert set(data.items["domain"]) == {"BLM", "Elections2020", "Covid-19"}
    assert set(data.annotations["label"]) == {0, 1}


def test_digest_is_stable_across_loads_and_row_order(mirror):
    a = load_dataset("md-agreement")
    b = load_dataset("md-agreement")
    shuffled = AnnotationSet(
        name=a.name,
        items=a.items.sample(frac=1.0, random_state=0),
        annotations=a.annotations.sample(frac=1.0, random_state=1),
        slice_columns=a.slice_columns,
    )
    assert a.digest() == b.digest() == shuffled.digest()
    changed = a.annotations.copy()
    changed.loc[0, "label"] = 1 - changed.loc[0, "label"]
    assert AnnotationSet(name=a.name, items=a.items, annotations=changed).digest() != a.digest()


def test_checksum_mismatch_is_an_error(mirror, tmp_path, monkeypatch):
    copy = tmp_path / "mirror"
    shutil.copytree(mirror / "lewidi-2023", copy / "lewidi-2023")
    target = copy / "lewidi-2023" / "MD-Agreement_dev.json"
    target.write_bytes(target.read_bytes()[:-10])
    monkeypatch.setenv("SMO_IMPACT_DATA_DIR", str(copy))
    with pytest.raises(DataError, match=r"checksum mismatch for .*MD-Agreement_dev.json: expected sha256 b42b6b54"):
        load_dataset("md-agreement")


def test_missing_mirror_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SMO_IMPACT_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"Dataset 'md-agreement': file .*MD-Agreement_train.json not found"):
        load_dataset("md-agreement")
