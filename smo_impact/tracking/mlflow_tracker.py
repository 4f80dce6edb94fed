"""MLflow implementation of the Tracker protocol (the only module that imports mlflow)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from smo_impact.errors import TrackingError
from smo_impact.tracking.base import RunStatus, TrackedRun

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_UI = "http://127.0.0.1:5000"  # where `make ui` serves a local store
PREVIEW_ROWS = 50  # first rows of a Parquet artifact, logged beside it as CSV (the UI cannot show Parquet)
# Seconds between samples of system metrics (MLflow's default is 10; a tiny model's run takes ~10).
# MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL overrides it.
SYSTEM_METRICS_INTERVAL_S = 5.0
_PARAM_VALUE_LIMIT = 6000
_BATCH = 100
# Secrets never reach the store: values of secret-looking keys, passwords inside URLs, and the
# values of secret-looking environment variables are replaced by "***" in params and tags.
_SECRET = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^/:@\s]+:)[^@/\s]+@")


def env_secrets() -> list[str]:
    """Values of secret-looking environment variables (6 characters or more)."""
    return [secret for name, secret in os.environ.items() if len(secret) >= 6 and _SECRET.search(name)]


def redact(key: str, value: Any, check_key: bool = True, secrets: list[str] | None = None) -> str:
    """The text to log for ``key: value``, with secrets masked (``secrets``: :func:`env_secrets`,
    read once by a caller redacting many values)."""
    text = "" if value is None else str(value)
    if check_key and _SECRET.search(key.rsplit(".", 1)[-1]):
        return "***"
    text = _URL_PASSWORD.sub(r"\1***@", text)
    for secret in env_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


CONNECT_TIMEOUT_S = 5.0
CREATE_ATTEMPTS = 4


def check_server(uri: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, within ``timeout`` seconds, when a tracking server does not answer.

    MLflow's own client retries with backoff for minutes; a user should learn in seconds, before
    any data is loaded or model trained, that the server is down or the URI mistyped.
    """
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                raise TrackingError(f"MLflow tracking server {uri} answered {response.status} on /health")
    except urllib.error.HTTPError as exc:
        raise TrackingError(f"MLflow tracking server {uri} answered HTTP {exc.code} on /health") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"cannot reach MLflow tracking server {uri} within {timeout:g} s ({reason}); "
            "check MLFLOW_TRACKING_URI or start the server"
        ) from None


def ui_url(uri: str, experiment_id: str, run_id: str | None = None, ui: str | None = None) -> str:
    """The MLflow UI page of an experiment's runs table (or of one run).

    MLflow 3 opens an experiment on its GenAI overview; the runs table is one click further, at
    ``#/experiments/<id>/runs``. A server URI is its own UI; a local store is served by `make ui`
    (``ui``, default http://127.0.0.1:5000).
    """
    base = uri if uri.startswith(("http://", "https://")) else (ui or DEFAULT_UI)
    page = f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"
    return f"{page}/{run_id}" if run_id else page


def resolve_tracking_uri(configured: str | None = None) -> str:
    """Config value, else $MLFLOW_TRACKING_URI, else a SQLite file in the working directory."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _sqlite_file(uri: str) -> Path | None:
    """The absolute database path of a local SQLite store URI, else None."""
    database = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
    return None if database in ("", ":memory:") else Path(database).resolve()


def _artifact_folder(experiment: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment).strip("._") or "experiment"


def default_artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of a new experiment in a local SQLite store go beside the database file
    (``<db folder>/mlruns/<experiment>``), not under whatever directory the command was started
    from (MLflow's default, ``./mlruns``), so that a store is one folder to keep or delete. Servers
    and other stores keep their own default (None)."""
    database = _sqlite_file(uri)
    if database is None:
        return None
    return (database.parent / "mlruns" / _artifact_folder(experiment)).as_uri()


def open_store(uri: str, create: bool, write: bool, fix: str | None = None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Check a tracking store before MLflow touches it, so that each fault is one clear error.

    * a server must answer ``/health`` within ``timeout`` seconds (not minutes of client retries);
    * a SQLite file must exist unless ``create``: MLflow would create an empty store at a mistyped path;
    * with ``write``, the database and its folder must be writable (else every write would fail
      mid-command with a traceback);
    * a SQLite store that was copied or moved gets its artifact locations pointed back into its
      own folder (:func:`_relocate_artifacts`).

    ``fix`` replaces the suggested fix of the read-only error.

    Raises:
        TrackingError: naming the store, what is wrong and the fix.
    """
    if uri.startswith(("http://", "https://")):
        check_server(uri, timeout)
        return
    database = _sqlite_file(uri)
    if database is None:
        return
    if not database.is_file():
        if create:
            return  # MLflow creates the store
        raise TrackingError(
            f"no MLflow store at {database}: the file does not exist; check --tracking-uri or "
            "MLFLOW_TRACKING_URI (a store is created by `smo-impact run`)"
        )
    fix = fix or "make the file and its folder writable, or choose another --tracking-uri"
    if write:
        _check_writable(database, fix)
    _relocate_artifacts(database)


def _check_writable(database: Path, fix: str) -> None:
    """Write to the database inside a transaction that is rolled back (this needs the file and,
    for the journal, its folder to be writable), and probe the artifact folder beside it."""
    import sqlite3

    connection = None
    try:
        connection = sqlite3.connect(database, timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE alembic_version SET version_num = version_num")
        connection.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        if "no such table" in str(exc) or "locked" in str(exc):
            return  # a store MLflow has not set up yet, or one busy with another writer: not read-only
        if "not a database" in str(exc):
            raise TrackingError(f"cannot use MLflow store {database}: {exc}; check --tracking-uri") from None
        raise TrackingError(f"cannot write to MLflow store {database}: read-only ({exc}); {fix}") from None
    finally:
        if connection is not None:
            connection.close()
    artifacts = database.parent / "mlruns"
    if artifacts.is_dir():
        try:
            tempfile.TemporaryFile(dir=artifacts).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise TrackingError(f"cannot write to MLflow store {database}: read-only ({artifacts}: {reason}); {fix}") from None


def _relocate_artifacts(database: Path) -> None:
    """Point a copied or moved store's artifact locations back into its own folder.

    Experiments record absolute artifact locations (``file:///old/folder/mlruns/<experiment>``), and
    every run its own (``.../mlruns/<experiment>/<run id>/artifacts``). After the store folder is
    copied or moved, MLflow would still read and write artifacts in the old folder: a report from
    the copy finds none of them (or writes into the original), and a resumed run logs into the
    original. So an experiment whose location has this store's layout (``mlruns/<its folder
    name>``) but lies in another folder is rewritten, with its runs, to this folder, once, in
    the database: reads, writes and the MLflow UI then all use the copy. Locations of another
    layout (set by hand or by plain MLflow) are left alone.
    """
    import sqlite3
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    here = database.parent / "mlruns"
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "experiments" not in tables:
                return  # not set up by MLflow yet: nothing to relocate
            moves = []
            for experiment_id, name, location in connection.execute(
                "SELECT experiment_id, name, artifact_location FROM experiments"
            ):
                if not (location or "").startswith("file://"):
                    continue
                old = Path(url2pathname(urlparse(location).path))
                new = (here / _artifact_folder(name)).as_uri()
                if location != new and old.parent.name == "mlruns" and old.name == _artifact_folder(name) \
                        and old.parent != here:
                    moves.append((experiment_id, location, new))
            if not moves:
                return
            try:
                with connection:  # one transaction: all locations move, or none
                    for experiment_id, old_uri, new_uri in moves:
                        connection.execute(
                            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (new_uri, experiment_id)
                        )
                        for table, column in (("runs", "artifact_uri"), ("logged_models", "artifact_location")):
                            if table not in tables:
                                continue
                            connection.execute(
                                f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                                f"WHERE experiment_id = ? AND substr({column}, 1, ?) = ?",
                                (new_uri, len(old_uri) + 1, experiment_id, len(old_uri) + 1, old_uri + "/"),
                            )
            except sqlite3.DatabaseError as exc:
                _, old_uri, new_uri = moves[0]
                raise TrackingError(
                    f"MLflow store {database} was copied or moved: it records artifacts in "
                    f"{url2pathname(urlparse(old_uri).path)} but keeps them in {url2pathname(urlparse(new_uri).path)}, "
                    f"and cannot be updated: read-only ({exc}); make it writable once, so that its artifact "
                    "locations can be updated"
                ) from None
    except sqlite3.DatabaseError as exc:
        raise TrackingError(f"cannot use MLflow store {database}: {exc}; check --tracking-uri") from None


def _copy_template_store(uri: str) -> None:
    """Create a fresh local SQLite store as a copy of an empty one, so that MLflow's migrations
    (~50 of them: 5-9 s on a busy machine, longer than featurizing the quickstart) are paid once per
    MLflow version and machine, not once per store (issue 16).

    The template (``<cache>/stores/mlflow-<version>.db``) is a store MLflow migrated, with its
    Default experiment deleted: MLflow creates that on opening the copy, with this store's own
    artifact location and time, exactly as on a fresh store. Anything that goes wrong leaves no
    file, and MLflow creates the store itself.
    """
    import shutil

    database = _sqlite_file(uri)
    if database is None or database.exists() or not database.parent.is_dir():
        return
    try:
        import mlflow

        from smo_impact.data.catalog import cache_dir

        template = cache_dir() / "stores" / f"mlflow-{mlflow.__version__}.db"
        if not _is_migrated(template):  # absent, or damaged since: built again
            _build_template(template)
        partial = database.with_name(f".{database.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(template, partial)
            os.replace(partial, database)
        finally:
            partial.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - a store MLflow creates itself is as good, only slower
        return


def _is_migrated(database: Path) -> bool:
    """Whether ``database`` is a SQLite file that records an MLflow schema version."""
    import sqlite3

    if not database.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as connection:
            return connection.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    except sqlite3.DatabaseError:
        return False


def _build_template(template: Path) -> None:
    """Migrate an empty store (MLflow's own code, so its schema is exactly MLflow's) and publish
    it atomically at ``template`` without its experiments."""
    import sqlite3

    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
        path = Path(tmp) / "store.db"
        store = SqlAlchemyStore(f"sqlite:///{path}", Path(tmp).as_uri())
        store.engine.dispose()
        with contextlib.closing(sqlite3.connect(path)) as connection, connection:
            connection.execute("DELETE FROM experiments")
        os.replace(path, template)


@contextlib.contextmanager
def _sqlite_init_lock(uri: str) -> Iterator[None]:
    """An exclusive file lock per SQLite database (in the temp dir, keyed by its absolute path)."""
    database = _sqlite_file(uri)
    if database is None:
        yield
        return
    key = hashlib.sha256(str(database).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"smo-impact-store-{key}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class MlflowTracker:
    """Logs through ``MlflowClient`` (no global active-run state, so nesting is explicit)."""

    def __init__(
        self, uri: str | None, experiment: str, timeout: float = CONNECT_TIMEOUT_S, create: bool = True
    ) -> None:
        """Open (with ``create``, or create) the store at ``uri`` and the experiment in it.

        Raises:
            TrackingError: the server does not answer, the store is read-only, or (``create=False``)
                there is no store at ``uri``.
        """
        from mlflow import MlflowClient

        # mlflow logs alembic migrations and a stream of INFO lines; keep the terminal for results.
        # (Set after the import: importing mlflow configures its loggers.)
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # Reading stored predictions back (resume, comparisons) would draw a progress bar per file.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

        self.uri = resolve_tracking_uri(uri)
        self.experiment = experiment
        self._datasets: dict[str, Any] = {}
        self._artifact_repos: dict[str, Any] = {}  # run id -> its artifact repository (runs started here)
        # Commands starting together on a fresh store race to create its tables (MLflow migrates
        # on first use) and the same experiment: a lock serialises that for a local SQLite file;
        # elsewhere the loser sees "already exists" and succeeds on a second look.
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                with _sqlite_init_lock(self.uri):
                    open_store(self.uri, create=create, write=True, timeout=timeout)
                    if create:
                        _copy_template_store(self.uri)
                    self.client = MlflowClient(tracking_uri=self.uri)
                    self.experiment_id = self._experiment_id(experiment)
                break
            except TrackingError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure to reach the store is one clear error
                if "already exists" in str(exc) and attempt < CREATE_ATTEMPTS:
                    time.sleep(0.5 * attempt)
                    continue
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise TrackingError(f"cannot use MLflow tracking store {self.uri}: {first}") from None

    def _experiment_id(self, experiment: str) -> str:
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            return self.client.create_experiment(experiment, artifact_location=default_artifact_location(self.uri, experiment))
        if found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        return found.experiment_id

    @property
    def location(self) -> str:
        return self.uri

    def start_run(
        self, name: str, tags: dict[str, str], parent_id: str | None = None, start_time_ms: int | None = None
    ) -> str:
        all_tags = dict(tags)
        if parent_id:
            all_tags["mlflow.parentRunId"] = parent_id
        all_tags = {k: redact(k, v, check_key=False) for k, v in all_tags.items()}
        run = self.client.create_run(self.experiment_id, start_time=start_time_ms, run_name=name, tags=all_tags)
        if not self.uri.startswith("databricks"):  # Databricks URIs need profile info MLflow adds itself
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            # Known now: MLflow would look it up with a get_run (the run's every tag, param and
            # metric) at the run's first artifact, a tenth of a quickstart run's logging time.
            self._artifact_repos[run.info.run_id] = get_artifact_repository(run.info.artifact_uri, tracking_uri=self.uri)
        return run.info.run_id

    def find_runs(self, tags: dict[str, str], statuses: tuple[str, ...] | None = None) -> list[TrackedRun]:
        clauses = [f"tags.`{k}` = '{_quote(v)}'" for k, v in tags.items()]
        if statuses and len(statuses) == 1:  # the search grammar has no IN for status
            clauses.append(f"attributes.status = '{statuses[0]}'")
        found, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], " and ".join(clauses), max_results=1000, page_token=token
            )
            found.extend(
                TrackedRun(r.info.run_id, r.info.status, dict(r.data.tags), dict(r.data.metrics), dict(r.data.params))
                for r in page
                if not statuses or r.info.status in statuses
            )
            token = page.token
            if not token:
                return found

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """An exclusive file lock for a local SQLite store (the one that serialises its creation);
        a no-op for a server, which offers no lock to its clients."""
        return _sqlite_init_lock(self.uri)

    def reopen_run(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self._log_batch(run_id, params=params)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        self._log_batch(run_id, metrics={(k, step or 0): v for k, v in metrics.items()})

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self._log_batch(run_id, tags=tags)

    def _log_batch(
        self, run_id: str, params: dict[str, Any] | None = None, metrics: dict[tuple[str, int], float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Params, metrics (by name and step) and tags in as few ``log_batch`` calls as MLflow's
        limits allow (100 params, 100 tags, 1000 metrics, 1000 entities per call), tags last: a
        tag that marks a write complete (``smo.compare_key``) lands after what it marks."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        secrets = env_secrets()
        # An empty list, mapping or None says nothing a reader of the runs table can use.
        entries: list[Any] = [
            Param(str(k)[:250], _param_value(redact(str(k), v, secrets=secrets)))
            for k, v in (params or {}).items()
            if v is not None and not (isinstance(v, (list, tuple, dict)) and not v)
        ]
        entries += [
            Metric(_metric_name(k), float(v), now, step)
            for (k, step), v in (metrics or {}).items()
            if v is not None and v == v  # skip NaN: MLflow charts break on it
        ]
        entries += [RunTag(k, redact(k, v, check_key=False, secrets=secrets)) for k, v in (tags or {}).items()]
        chunk: dict[type, list[Any]] = {Param: [], Metric: [], RunTag: []}
        limits = {Param: _BATCH, Metric: _BATCH * 10, RunTag: _BATCH}
        for entry in entries:
            kind = type(entry)
            if len(chunk[kind]) == limits[kind] or sum(map(len, chunk.values())) == _BATCH * 10:
                self.client.log_batch(run_id, metrics=chunk[Metric], params=chunk[Param], tags=chunk[RunTag])
                chunk = {Param: [], Metric: [], RunTag: []}
            chunk[kind].append(entry)
        if any(chunk.values()):
            self.client.log_batch(run_id, metrics=chunk[Metric], params=chunk[Param], tags=chunk[RunTag])

    @contextlib.contextmanager
    def batch(self, run_id: str) -> Iterator[RunBatch]:
        """Buffer a run's writes and send them on exit: params, metrics and tags in one
        ``log_batch`` (chunked to MLflow's limits), every file in one ``log_artifacts``.

        Each store call costs a round trip (a transaction on SQLite, an HTTP request on a
        server); logging a run call by call took a third of its time (issue 16). Nothing is sent
        when the block raises.
        """
        with tempfile.TemporaryDirectory() as tmp:
            buffered = RunBatch(Path(tmp))
            yield buffered
            if any(Path(tmp).iterdir()):
                # Files first, then the tags: a tag that marks a write complete lands last.
                if (repo := self._artifact_repos.get(run_id)) is not None:
                    repo.log_artifacts(tmp)
                else:
                    self.client.log_artifacts(run_id, tmp)
            self._log_batch(run_id, buffered.params, buffered.metrics, buffered.tags)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        # Resolved configs carry the tracking URI and free text: mask passwords and secrets there too.
        self.client.log_text(run_id, redact(artifact_file, text, check_key=False), artifact_file)

    def log_frame(self, run_id: str, frame: pd.DataFrame, artifact_file: str) -> None:
        """Log a table as CSV or Parquet; a Parquet file gets ``<name>.preview.csv`` beside it
        (its first :data:`PREVIEW_ROWS` rows), which the MLflow UI shows as a table."""
        with tempfile.TemporaryDirectory() as tmp:
            write_frame(frame, Path(tmp) / Path(artifact_file).name)
            parent = str(Path(artifact_file).parent)
            self.client.log_artifacts(run_id, tmp, None if parent == "." else parent)

    def log_table(self, run_id: str, frame: pd.DataFrame, artifact_file: str) -> None:
        """Log a table the MLflow UI shows as one (``mlflow.log_table``'s JSON and tag).

        Written here rather than through ``MlflowClient.log_table``, which appends the rows to a
        table already at that path: a resumed parent run would show its summary twice.
        """
        import json

        from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

        table = frame.reset_index(drop=True).copy()
        for column in table.columns:  # JSON holds numbers and text; lists, dicts, ... become text
            if table[column].dtype == object:
                table[column] = table[column].map(lambda v: v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            table.to_json(path, orient="split", index=False, date_format="iso")
            parent = str(Path(artifact_file).parent)
            self.client.log_artifact(run_id, str(path), None if parent == "." else parent)
        logged = json.loads(self.client.get_run(run_id).data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]"))
        entry = {"path": artifact_file, "type": "table"}
        if entry not in logged:
            self.client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps([*logged, entry]))

    def load_frame(self, run_id: str, artifact_file: str) -> pd.DataFrame | None:
        """A table logged with :meth:`log_frame`, or None when the run has no such artifact."""
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = Path(self.client.download_artifacts(run_id, artifact_file, tmp))
            except Exception:  # noqa: BLE001 - MLflow raises several types for a missing artifact
                return None
            if not path.is_file():
                return None
            return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)

    def log_model(self, run_id: str, estimator: Any, input_example: Any, name: str = "classifier") -> str:
        """Log a fitted scikit-learn estimator as an MLflow model of the run (a signature inferred
        from ``input_example``, serving ``predict_proba``); returns its
        ``models:/<id>`` URI, also tagged on the run as ``smo.model_uri``."""
        import mlflow
        import mlflow.sklearn
        import sklearn
        from mlflow.models import infer_signature

        signature = infer_signature(input_example, estimator.predict_proba(input_example))
        # MLflow's model logging goes through the fluent API: make the run active in this store.
        # (start_run ends it FINISHED on exit; the runner ends it again with its own status and time.)
        mlflow.set_tracking_uri(self.uri)
        sklearn_log = logging.getLogger("mlflow.sklearn")
        level = sklearn_log.level
        sklearn_log.setLevel(logging.ERROR)  # its warning on pickle formats, once per run
        try:
            with warnings.catch_warnings(), mlflow.start_run(run_id=run_id):
                warnings.simplefilter("ignore")  # mlflow's hints on integer columns and pip versions
                info = mlflow.sklearn.log_model(
                    estimator, name=name, signature=signature, input_example=input_example,
                    # cloudpickle, not MLflow 3's default skops: skops writes a TF-IDF vocabulary key by
                    # key as JSON, 1 s per model on MD-Agreement, longer than training it.
                    serialization_format="cloudpickle", pyfunc_predict_fn="predict_proba",
                    # Listed, not inferred: inference imports the model in a subprocess (seconds per run).
                    pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
                )
        finally:
            sklearn_log.setLevel(level)
        uri = f"models:/{info.model_id}"
        self.client.set_tag(run_id, "smo.model_uri", uri)
        return uri

    def register_model(self, model_uri: str, name: str) -> str:
        """Register a logged model under ``name``; returns the new version."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        # MLflow prints "Successfully registered model ..." to stderr: the CLI says it in one line.
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return str(mlflow.register_model(model_uri, name).version)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        self.client.log_figure(run_id, figure, artifact_file)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, local_dir, artifact_path)

    def log_dataset(self, run_id: str, frame: pd.DataFrame, name: str, digest: str, source: str) -> None:
        import mlflow.data
        from mlflow.data.http_dataset_source import HTTPDatasetSource
        from mlflow.entities import DatasetInput, InputTag

        # Schema inference over every text costs ~0.5 s: build the entity once per digest.
        if digest not in self._datasets:
            with warnings.catch_warnings():  # mlflow's hint about integer columns is for model schemas
                warnings.simplefilter("ignore", UserWarning)
                dataset = mlflow.data.from_pandas(frame, source=HTTPDatasetSource(source), name=name, digest=digest)
                self._datasets[digest] = dataset._to_mlflow_entity()
        self.client.log_inputs(
            run_id,
            datasets=[DatasetInput(self._datasets[digest], [InputTag("mlflow.data.context", "training")])],
        )

    def end_run(self, run_id: str, status: RunStatus = "FINISHED", end_time_ms: int | None = None) -> None:
        self.client.set_terminated(run_id, status=status, end_time=end_time_ms)

    def delete_run(self, run_id: str) -> None:
        self.client.set_terminated(run_id, status="KILLED")  # not RUNNING, even in the trash
        self.client.delete_run(run_id)

    @contextlib.contextmanager
    def system_metrics(self, run_id: str) -> Iterator[None]:
        # The monitor behind mlflow.start_run(log_system_metrics=True), started on a run of ours:
        # the fluent start_run would make it the process's active run, which nothing else here uses.
        # It samples in a thread and logs system/cpu_utilization_percentage, system/system_memory_usage_megabytes,
        # system/gpu_* (with pynvml) ... every SYSTEM_METRICS_INTERVAL_S; it needs psutil.
        try:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            monitor = SystemMetricsMonitor(run_id, sampling_interval=SYSTEM_METRICS_INTERVAL_S, tracking_uri=self.uri)
        except ImportError as exc:  # psutil missing: the run goes on without system metrics
            logging.getLogger(__name__).warning("no system metrics (%s); pip install psutil to log them", exc)
            yield
            return
        monitor.start()
        try:
            yield
        finally:
            monitor.finish()


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """A table as CSV, or as Parquet with ``<name>.preview.csv`` beside it (its first
    :data:`PREVIEW_ROWS` rows): the MLflow UI cannot show Parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
        frame.head(PREVIEW_ROWS).to_csv(path.with_suffix(".preview.csv"), index=False)
    else:
        frame.to_csv(path, index=False)


class RunBatch:
    """One run's writes, held until :meth:`MlflowTracker.batch` sends them: the same methods as
    the tracker's, without the run id; files go into ``folder``, laid out as the run's artifacts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.params: dict[str, Any] = {}
        self.metrics: dict[tuple[str, int], float] = {}  # (name, step) -> value
        self.tags: dict[str, str] = {}

    def log_params(self, params: dict[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.update({(k, step or 0): v for k, v in metrics.items()})

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)

    def _path(self, artifact_file: str) -> Path:
        path = self.folder / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def log_text(self, text: str, artifact_file: str) -> None:
        self._path(artifact_file).write_text(redact(artifact_file, text, check_key=False), encoding="utf-8")

    def log_frame(self, frame: pd.DataFrame, artifact_file: str) -> None:
        write_frame(frame, self._path(artifact_file))

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        figure.savefig(self._path(artifact_file))

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        self._path(artifact_file).write_bytes(data)


def _quote(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def _param_value(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= _PARAM_VALUE_LIMIT else text[: _PARAM_VALUE_LIMIT - 3] + "..."


def _metric_name(name: str) -> str:
    # MLflow allows letters, digits, _ - . space / in metric names.
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)


def load_logged_model(source: str, tracking_uri: str, scratch: str) -> tuple[Any | None, Path | None]:
    """A model another run of the store logged, for a model rater (``model_rater.model``).

    ``source`` is ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``
    or ``models:/<model_id>``. Returns ``(estimator, None)`` for an MLflow scikit-learn model, or
    ``(None, directory)`` for a run's ``model/`` folder written by the model's ``save()`` (downloaded
    into ``scratch``) when the run logged no MLflow model.

    Raises:
        LookupError: the run, the registered model or the logged model is not in the store; the
            message names what is missing and where to look.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)  # mlflow.sklearn.load_model resolves models:/ in the fluent store
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/"):].partition("/")
        path = path.strip("/") or "model"
        try:
            run = client.get_run(run_id)
        except MlflowException:
            raise LookupError(
                f"no run '{run_id}' in the tracking store {tracking_uri}; copy a run id from the MLflow UI "
                "(a run's page), or set tracking.uri to the store that holds it"
            ) from None
        logged = run.data.tags.get("smo.model_uri")  # the run's MLflow model (tracking.log_models)
        outputs = run.outputs.model_outputs if run.outputs else []
        if logged and path in ("model", "classifier"):  # our runs log it as 'classifier'; 'model/' is its save() folder
            return _load_sklearn(logged), None
        if outputs and path != "model":
            with contextlib.suppress(MlflowException):  # a logged model of the run by its name
                for model in client.search_logged_models([run.info.experiment_id], filter_string=f"name = '{path}'"):
                    if model.source_run_id == run_id:
                        return _load_sklearn(f"models:/{model.model_id}"), None
        try:
            files = [a.path for a in client.list_artifacts(run_id, path)]
        except Exception:  # noqa: BLE001 - a missing folder raises in some stores, lists empty in others
            files = []
        if not files:
            raise LookupError(
                f"run '{run_id}' has no model at '{path}' (no MLflow model and no '{path}/' artifacts); train it "
                "with tracking.log_models: all (or control), or point at runs:/<run_id>/model of a run that kept one"
            )
        return None, Path(client.download_artifacts(run_id, path, scratch))
    if source.startswith("models:/"):
        rest = source[len("models:/"):]
        name = rest.split("@")[0].split("/")[0]
        if rest.startswith("m-") and "/" not in rest and "@" not in rest:  # a logged model id
            try:
                client.get_logged_model(rest)
            except MlflowException:
                raise LookupError(
                    f"no logged model '{rest}' in the tracking store {tracking_uri}; a run's model id is its "
                    "smo.model_uri tag (tracking.log_models), or set tracking.uri to the store that holds it"
                ) from None
        else:
            try:
                client.get_registered_model(name)
            except MlflowException:
                registered = sorted(m.name for m in client.search_registered_models())
                raise LookupError(
                    f"no registered model '{name}' in the tracking store {tracking_uri} (registered: "
                    f"{', '.join(registered) or 'none'}); register one with `smo-impact run --register {name}`"
                ) from None
        try:
            return _load_sklearn(source), None
        except MlflowException as exc:
            raise LookupError(f"cannot load {source} from {tracking_uri}: {str(exc).splitlines()[0]}") from None
    raise LookupError(f"'{source}' is not a runs:/ or models:/ URI")


def load_model_directory(directory: Path) -> Any:
    """An MLflow model saved in a local directory (it holds an ``MLmodel`` file), as scikit-learn."""
    return _load_sklearn(str(directory))


def _load_sklearn(uri: str) -> Any:
    """The model at ``uri`` as its scikit-learn estimator; LookupError for another flavor."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # version-mismatch hints on unpickling
        try:
            return mlflow.sklearn.load_model(uri)
        except MlflowException as exc:
            if "sklearn" in str(exc) and "flavor" in str(exc):
                raise LookupError(
                    f"{uri} is not a scikit-learn MLflow model; a model rater labels texts with an sklearn "
                    "model's predict_proba (e.g. a tfidf_logreg run's logged model)"
                ) from None
            raise
