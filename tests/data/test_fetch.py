"""`fetch` downloads into the cache and verifies checksums; tests replace the network."""

from __future__ import annotations

import hashlib
import io

import pytest

from smo_impact.data import catalog
from smo_impact.data.catalog import DataFile, DatasetInfo, cache_dir, fetch_dataset, load_dataset
from smo_impact.errors import DataError


@pytest.fixture
def tiny_dataset(monkeypatch):
    """A registered two-file dataset whose 'upstream' is a dict served by a fake urlopen."""
    body = b'{"1": {"text": "hi", "annotators": "Ann1,Ann2", "annotations": "0,1", "split": "train"}}'
    served = {"https://example.org/a_train.json": body}
    files = (DataFile(path="tiny/a_train.json", url="https://example.org/a_train.json", sha256=hashlib.sha256(body).hexdigest()),)
    info = DatasetInfo(
        name="tiny", description="", files=files, license="", citation="", labels=(0, 1), positive_label=1,
        label_meaning="", slice_columns=(), build=catalog.DATASETS.get("md-agreement").build,
    )  # fmt: skip
    monkeypatch.setitem(catalog.DATASETS._items, "tiny", info)
    monkeypatch.delenv("SMO_IMPACT_DATA_DIR", raising=False)
    monkeypatch.setattr(catalog.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(served[url]))
    return served


def test_fetch_downloads_verifies_and_loads_from_the_cache(tiny_dataset):
    with pytest.raises(DataError, match=r"Dataset 'tiny': file .*a_train.json not found \(run `smo-impact datasets fetch tiny`"):
        load_dataset("tiny")
    (path,) = fetch_dataset("tiny")
    assert path == (cache_dir() / "data" / "tiny" / "a_train.json").resolve()
    data = load_dataset("tiny")
    assert data.annotations["label"].tolist() == [0, 1]


def test_fetch_refuses_a_file_with_the_wrong_checksum(tiny_dataset):
    tiny_dataset["https://example.org/a_train.json"] = b"tampered"
    actual = hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(DataError, match=rf"Dataset 'tiny': download of https://example.org/a_train.json has sha256 {actual}, expected [0-9a-f]{{64}}"):
        fetch_dataset("tiny")
    assert not (cache_dir() / "data" / "tiny" / "a_train.json").exists()  # never silently kept
