"""Security: safe YAML, closed registries, no unpickling, verified downloads, no path escapes,
no secrets in the tracking store."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from smo_impact.config import load_raw, validate
from smo_impact.data import catalog
from smo_impact.errors import ConfigError, DataError
from smo_impact.tracking.mlflow_tracker import redact

PACKAGE = Path(__file__).resolve().parent.parent / "smo_impact"
BASE = {"name": "s", "dataset": {"name": "md-agreement"}, "arms": {"control": ["aggregate"]}}


def test_yaml_python_tags_are_refused_not_executed(tmp_path):
    evil = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    evil.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_raw(evil)
    assert not marker.exists()


def test_components_cannot_be_named_by_import_path():
    raw = {**BASE, "arms": {"control": ["aggregate"], "x": ["aggregate", {"os.system": {}}]}}
    with pytest.raises(ConfigError, match=r"Unknown treatment 'os.system'"):
        validate(raw)
    with pytest.raises(ConfigError, match=r"Unknown model 'sklearn.linear_model.LogisticRegression'"):
        validate({**BASE, "model": {"name": "sklearn.linear_model.LogisticRegression"}})


def test_package_never_unpickles():
    offenders = []
    pattern = re.compile(r"pickle\.loads?\(|allow_pickle\s*=\s*True|joblib\.load\(|torch\.load\((?![^)]*weights_only\s*=\s*True)")
    for path in PACKAGE.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []


def test_feature_cache_refuses_a_planted_pickle(tmp_path, text_dataset):
    from smo_impact.models.features import FeatureCache
    from smo_impact.models.tfidf_logreg import TfidfLogreg

    featurizer = TfidfLogreg(TfidfLogreg.Params()).featurizer()
    FeatureCache(directory=tmp_path).get(text_dataset, featurizer)
    (npz,) = tmp_path.glob("*.npz")
    np.savez(npz.with_suffix(""), matrix=np.array([object()], dtype=object))  # an object array needs pickle
    cache = FeatureCache(directory=tmp_path)
    cache.get(text_dataset, featurizer)
    assert cache.stats.rebuilt_corrupt == 1


def test_download_is_checksum_verified(tmp_path, monkeypatch):
    source = tmp_path / "upstream.json"
    source.write_text("{}")
    info = catalog.DatasetInfo(
        name="tmp-ds", description="", files=(catalog.DataFile("x/tmp.json", source.as_uri(), "0" * 64),),
        license="", citation="", labels=(0, 1), positive_label=1, label_meaning="", slice_columns=(),
        build=lambda paths: None,
    ) if "build" in catalog.DatasetInfo.__dataclass_fields__ else None
    if info is None:
        pytest.skip("DatasetInfo shape changed")
    monkeypatch.setenv("SMO_IMPACT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(catalog.DATASETS._items, "tmp-ds", info)
    actual = hashlib.sha256(b"{}").hexdigest()
    with pytest.raises(DataError, match=f"has sha256 {actual}, expected {'0' * 64}"):
        catalog.fetch_dataset("tmp-ds")
    assert not list((tmp_path / "cache").rglob("tmp.json"))  # nothing unverified is kept


def test_names_cannot_escape_directories():
    with pytest.raises(ConfigError, match="name"):
        validate({**BASE, "name": "../../etc/passwd"})
    with pytest.raises(ConfigError, match="arm names may use letters, digits, _ and - only"):
        validate({**BASE, "arms": {"control": ["aggregate"], "../x": ["aggregate"]}})
    with pytest.raises(ConfigError, match="dataset.name"):
        validate({**BASE, "dataset": {"name": "../../secret"}})


def test_secrets_are_redacted(monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", "tok-123456789")
    assert redact("tracking.api_token", "abc") == "***"
    assert redact("tracking.uri", "https://alice:hunter22@mlflow.example.com") == "https://alice:***@mlflow.example.com"
    assert redact("note", "uses tok-123456789 inside", check_key=False) == "uses *** inside"
    assert redact("smo.run_key", "abc123", check_key=False) == "abc123"


def test_no_secret_reaches_the_store(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from smo_impact.runner.experiment import run_experiment
    from smo_impact.tracking.mlflow_tracker import MlflowTracker
    from tests.conftest import make_text_dataset

    monkeypatch.setenv("SERVICE_PASSWORD", "s3cr3t-value-42")
    store = f"sqlite:///{tmp_path / 'm.db'}"
    config = validate({**BASE, "description": "token s3cr3t-value-42 pasted by mistake",
                       "tracking": {"uri": "http://bob:s3cr3t-value-42@localhost:1"}})
    result = run_experiment(config, lambda: MlflowTracker(store, "sec"), dataset=make_text_dataset(120))
    client = MlflowClient(store)
    for run in client.search_runs([client.get_experiment_by_name("sec").experiment_id]):
        logged = " ".join([*run.data.params.values(), *run.data.tags.values()])
        assert "s3cr3t-value-42" not in logged
    assert result.parent_run_id
