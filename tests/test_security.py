"""Security: safe YAML, closed registries, no unpickling, verified downloads, no path escapes,
no secrets in the tracking store."""

from __future__ import annotations

import dataclasses
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
    with pytest.raises(ConfigError, match=r"evil.yaml line 1: invalid YAML: could not determine a constructor for the tag "
                       r"'tag:yaml.org,2002:python/object/apply:os.system'"):
        load_raw(evil)
    assert not marker.exists()


def test_components_cannot_be_named_by_import_path():
    raw = {**BASE, "arms": {"control": ["aggregate"], "x": ["aggregate", {"os.system": {}}]}}
    with pytest.raises(ConfigError, match=r"Unknown treatment 'os.system'"):
        validate(raw)
    with pytest.raises(ConfigError, match=r"Unknown model 'sklearn.linear_model.LogisticRegression'"):
        validate({**BASE, "model": {"name": "sklearn.linear_model.LogisticRegression"}})


# The one exception: the local pool's workers read the context their parent process pickled for
# them (as multiprocessing itself does over a pipe), from a folder only this user can write;
# read_shared checks that (test below).
TRUSTED_UNPICKLING = {"runner/executors.py": "return pickle.loads(path.read_bytes(), buffers=views)  # trusted: own workers' context"}


def test_package_never_unpickles():
    offenders = []
    pattern = re.compile(r"pickle\.loads?\(|allow_pickle\s*=\s*True|joblib\.load\(|torch\.load\((?![^)]*weights_only\s*=\s*True)")
    for path in PACKAGE.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and TRUSTED_UNPICKLING.get(str(path.relative_to(PACKAGE))) != line.strip():
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []


def test_a_pool_context_in_a_folder_others_can_write_is_refused(tmp_path):
    from smo_impact.runner.executors import read_shared, write_shared

    folder = tmp_path / "ctx"
    folder.mkdir(mode=0o700)
    path = write_shared({"x": np.arange(3)}, folder)
    assert read_shared(path)["x"].tolist() == [0, 1, 2]
    folder.chmod(0o777)  # another user could have planted the pickle
    with pytest.raises(PermissionError, match="is not private to this user"):
        read_shared(path)


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


def _tmp_dataset(source: Path, sha256: str) -> catalog.DatasetInfo:
    """A one-file dataset served from ``source``: a real catalog entry with its files swapped, so the
    test follows DatasetInfo as it grows, and fails (TypeError) if ``name`` or ``files`` go away."""
    file = catalog.DataFile(path="x/tmp.json", url=source.as_uri(), sha256=sha256)
    return dataclasses.replace(catalog.DATASETS.get("md-agreement"), name="tmp-ds", files=(file,))


def test_download_is_checksum_verified(tmp_path, monkeypatch):
    source = tmp_path / "upstream.json"
    source.write_text("{}")
    actual = hashlib.sha256(b"{}").hexdigest()
    cache = tmp_path / "cache"
    monkeypatch.setenv("SMO_IMPACT_CACHE_DIR", str(cache))
    monkeypatch.setitem(catalog.DATASETS._items, "tmp-ds", _tmp_dataset(source, "0" * 64))
    with pytest.raises(DataError, match=f"^Dataset 'tmp-ds': download of {re.escape(source.as_uri())} has sha256 {actual}, expected {'0' * 64}$"):
        catalog.fetch_dataset("tmp-ds")
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # nothing unverified is kept, not even a .part

    # The same download with the right digest is kept: the check compares, it does not just refuse.
    monkeypatch.setitem(catalog.DATASETS._items, "tmp-ds", _tmp_dataset(source, actual))
    (path,) = catalog.fetch_dataset("tmp-ds")
    assert path == (cache / "data" / "x" / "tmp.json").resolve()
    assert path.read_bytes() == b"{}"


def test_names_cannot_escape_directories():
    with pytest.raises(ConfigError, match=re.escape("name: String should match pattern '^[A-Za-z0-9_.\\-]+$' (got '../../etc/passwd')")):
        validate({**BASE, "name": "../../etc/passwd"})
    with pytest.raises(ConfigError, match=re.escape("arms: arm names may use letters, digits, _ and - only; got ['../x']")):
        validate({**BASE, "arms": {"control": ["aggregate"], "../x": ["aggregate"]}})
    with pytest.raises(ConfigError, match=re.escape("dataset.name: String should match pattern '^[A-Za-z0-9_.\\-]+$' (got '../../secret')")):
        validate({**BASE, "dataset": {"name": "../../secret"}})


def test_secrets_are_redacted(monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", "tok-123456789")
    assert redact("tracking.api_token", "abc") == "***"
    assert redact("tracking.uri", "https://alice:hunter22@mlflow.example.com") == "https://alice:***@mlflow.example.com"
    assert redact("note", "uses tok-123456789 inside", check_key=False) == "uses *** inside"
    assert redact("smo.run_key", "abc123", check_key=False) == "abc123"


SECRET = "s3cr3t-value-42"


@pytest.fixture(scope="module")
def secret_store(tmp_path_factory):
    """One small experiment whose description, tracking URI and environment carry a secret."""
    from mlflow import MlflowClient

    from smo_impact.runner.experiment import run_experiment
    from smo_impact.tracking.mlflow_tracker import MlflowTracker
    from tests.conftest import make_text_dataset

    tmp_path = tmp_path_factory.mktemp("secret_store")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SERVICE_PASSWORD", SECRET)
        store = f"sqlite:///{tmp_path / 'm.db'}"
        config = validate({**BASE, "description": f"token {SECRET} pasted by mistake",
                           "tracking": {"uri": f"http://bob:{SECRET}@localhost:1"}})
        result = run_experiment(config, lambda: MlflowTracker(store, "sec"), dataset=make_text_dataset(120))
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("sec").experiment_id])
    return result, client, runs, tmp_path


def test_no_secret_reaches_the_store(secret_store):
    result, _client, runs, _tmp = secret_store
    assert {r.info.run_id for r in runs} >= {result.parent_run_id}
    assert len(runs) == 2  # the parent and the one control run: the loop below is not vacuous
    for run in runs:
        logged = " ".join([*run.data.params.values(), *run.data.tags.values()])
        assert SECRET not in logged


def test_no_secret_reaches_the_artifacts(secret_store):
    _result, client, runs, tmp = secret_store
    leaked = []
    for run in runs:
        local = Path(client.download_artifacts(run.info.run_id, "", str(tmp / run.info.run_id)))
        leaked += [str(p.relative_to(local)) for p in local.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []
