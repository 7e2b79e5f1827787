"""The one place that talks to MLflow.

Default store: a SQLite file `./mlflow.db` (WAL journal, so readers never block the writer)
with artifacts in `./mlartifacts`, which `mlflow ui --backend-store-uri sqlite:///mlflow.db`
shows. `$MLFLOW_TRACKING_URI` or `mlflow.tracking_uri=` point it at a server instead.
"""

from __future__ import annotations

import atexit
import logging
import os
import platform
import queue
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Mapping

from nas.errors import NasError
from nas.store_check import check_tracking_uri

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
SQLITE_BUSY_TIMEOUT_S = 60


def tracking_uri(configured: str | None = None) -> str:
    """Configured URI, else $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):].split("?")[0]) if uri.startswith("sqlite:///") else None


def _with_timeout(uri: str) -> str:
    """A SQLite URI with the busy timeout (other URIs as given)."""
    if _sqlite_path(uri) is None or "?" in uri:
        return uri
    return f"{uri}?timeout={SQLITE_BUSY_TIMEOUT_S}"


def _check_sqlite_folder(uri: str) -> None:
    path = _sqlite_path(uri)
    if path is not None and (not path.parent.exists() or not os.access(path.parent, os.W_OK)):
        raise NasError(f"MLflow store {path}: folder {path.parent} is missing or not writable")


def prepare_sqlite(uri: str) -> str:
    """Switch a SQLite store to WAL and add a busy timeout; refuse an unwritable folder early.
    A new store starts as a copy of a migrated empty one (`new_sqlite_store`)."""
    path = _sqlite_path(uri)
    if path is None:
        return uri
    _check_sqlite_folder(uri)
    if not path.exists():
        new_sqlite_store(path)
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as con:
        con.execute("PRAGMA journal_mode=WAL")
    return _with_timeout(uri)


def _template_path() -> Path:
    from importlib.metadata import version

    root = os.environ.get("NAS_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "nas"
    return base / "mlflow" / f"empty-store-mlflow-{version('mlflow')}.db"


def _make_template(template: Path) -> None:
    """An empty store at `template`, migrated by MLflow itself, minus the Default experiment
    (whose artifact folder depends on the working directory: MLflow adds it on first open)."""
    from mlflow.tracking import MlflowClient

    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = template.with_name(f".{template.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp}")
        client._tracking_client.store.engine.dispose()  # noqa: SLF001 - close its connections
        with sqlite3.connect(tmp) as con:
            con.execute("DELETE FROM experiments")
        os.replace(tmp, template)
    finally:
        tmp.unlink(missing_ok=True)


def new_sqlite_store(path: Path) -> None:
    """Create the SQLite store `path` by copying a migrated empty store (cached per MLflow
    version under ~/.cache/nas/mlflow, or $NAS_CACHE): MLflow's own creation runs 50-odd
    schema migrations, seconds on a small machine, in every new folder. Without a usable
    cache nothing is created here and MLflow migrates the store itself."""
    try:
        template = _template_path()
        if not template.exists():
            _make_template(template)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        shutil.copyfile(template, tmp)
        try:
            os.link(tmp, path)  # atomic, and never over a store another process just made
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    except OSError:
        return


class _Opener:
    """Imports MLflow and opens its store for `uri` in a background thread (seconds: the import,
    SQLAlchemy's set-up, a new store's creation), so a run loads its data meanwhile."""

    def __init__(self, uri: str):
        self.uri = uri
        self.done = threading.Event()
        self.client: Any = None
        self.error: BaseException | None = None
        self.seconds: dict[str, float] = {}
        threading.Thread(target=self._open, name="nas-mlflow-open", daemon=True).start()

    def _open(self) -> None:
        try:
            start = time.perf_counter()
            from mlflow.tracking import MlflowClient

            for noisy in ("mlflow", "alembic"):  # schema-migration chatter on a new store
                logging.getLogger(noisy).setLevel(logging.WARNING)
            self.seconds["import"] = time.perf_counter() - start
            start = time.perf_counter()
            uri = prepare_sqlite(self.uri)
            self.seconds["new store"] = time.perf_counter() - start
            start = time.perf_counter()
            self.client = MlflowClient(tracking_uri=uri)
            self.seconds["open store"] = time.perf_counter() - start
        except BaseException as err:  # noqa: BLE001 - handed to whoever waits for the client
            self.error = err
        finally:
            self.done.set()

    def result(self) -> Any:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.client


_OPENERS: dict[str, _Opener] = {}
_OPENERS_LOCK = threading.Lock()


def open_client(uri: str) -> _Opener:
    """The process's opener for `uri` (one MLflow client per store), started when first asked
    for; a failed one is retried."""
    uri = _with_timeout(uri)
    with _OPENERS_LOCK:
        opener = _OPENERS.get(uri)
        if opener is None or (opener.done.is_set() and opener.error is not None):
            opener = _OPENERS[uri] = _Opener(uri)
        return opener


# ----------------------------------------------------------------------------- preflight

MIN_FREE_MB = 200  # below this a run may die on its first checkpoint or MLflow write
SERVER_TIMEOUT_S = 5.0


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_folder(path: str | Path, what: str) -> None:
    """`path` can be created and written (probed with a real file: permission bits lie to
    root and on read-only mounts), and its disk has MIN_FREE_MB free ($NAS_MIN_FREE_MB)."""
    path = Path(path)
    base = _nearest_existing(path)
    if not base.is_dir():
        raise NasError(f"{what} {path}: {base} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=base, prefix=".nas-preflight-"):
            pass
    except OSError as err:
        raise NasError(f"{what} {path}: cannot write in {base} ({err.strerror or err});"
                       " pick a writable folder") from None
    try:
        min_mb = float(os.environ.get("NAS_MIN_FREE_MB") or MIN_FREE_MB)
    except ValueError:
        raise NasError(f"$NAS_MIN_FREE_MB={os.environ['NAS_MIN_FREE_MB']!r} must be a number of MB") from None
    free_mb = shutil.disk_usage(base).free / 1024**2
    if free_mb < min_mb:
        raise NasError(f"{what} {path}: only {free_mb:,.0f} MB free on its disk (need {min_mb:,.0f}"
                       " MB, $NAS_MIN_FREE_MB); free some space or pick another folder")


def check_server(uri: str, timeout: float = SERVER_TIMEOUT_S) -> None:
    """An http(s) MLflow tracking server answers; the MLflow client itself would retry for
    minutes before failing, and only at the first write."""
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read(64)
    except urllib.error.HTTPError as err:
        if err.code >= 500:
            raise NasError(f"MLflow server {uri} is not healthy ({url}: HTTP {err.code})") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise NasError(f"MLflow server {uri} is unreachable ({reason}); start it, or unset"
                       " MLFLOW_TRACKING_URI / mlflow.tracking_uri for the local SQLite store") from None


def preflight(uri: str | None = None, folders: Mapping[str, str | Path] | None = None, *,
              tracking: bool = True) -> str:
    """Fail in seconds, with one line, on what would otherwise crash a run or search hours in:
    an unwritable or full output/artifact folder, an unreachable MLflow server. `folders` maps
    a description ("--output-dir") to a path; `tracking=False` (MLflow off) checks only those.
    Returns the resolved tracking URI. Called at the start of `nas run` and `nas search`;
    ablations call it too."""
    resolved = tracking_uri(uri)
    if tracking:
        check_tracking_uri(resolved)
    checks = dict(folders or {})
    db = _sqlite_path(resolved)
    if not tracking:
        pass
    elif db is not None:
        checks["MLflow store"] = db.parent
        checks["MLflow artifacts"] = Path.cwd() / DEFAULT_ARTIFACTS
    elif resolved.startswith("file:") or "://" not in resolved:
        checks["MLflow store"] = Path(resolved.removeprefix("file://").removeprefix("file:"))
    elif resolved.startswith(("http://", "https://")):
        check_server(resolved)
    for what, path in checks.items():
        check_folder(path, what)
    if tracking:  # import MLflow and open the store in the background while the run loads data
        open_client(resolved)
    return resolved


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1}."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def param_name(key: str) -> str:
    """MLflow names allow only alphanumerics and `_-. :/`: spec paths `stages.*.shuffle` and
    `stages[2].groups` become `stages.all.shuffle` and `stages_2_.groups`."""
    return re.sub(r"[^\w\-. :/]", "_", key.replace("*", "all"))


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def environment_tags() -> dict[str, str]:
    import torch

    import nas
    from nas import mlflow_layout as ml

    return {ml.NAS_VERSION: nas.__version__, ml.GIT_COMMIT: git_commit(),
            ml.TORCH_VERSION: torch.__version__, ml.PYTHON_VERSION: platform.python_version(),
            ml.HOST_PLATFORM: platform.platform()}


# MLflow's log_batch limits: at most 1000 metrics, 100 params, 100 tags, 1000 items in all
BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}
BATCH_TOTAL = 1000
EXIT_FLUSH_S = 30.0  # at interpreter exit, wait this long for queued writes
_LIVE: "weakref.WeakSet[Tracker]" = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    """Queued writes still go out, and a store being created is never left half-migrated."""
    for opener in list(_OPENERS.values()):
        opener.done.wait(EXIT_FLUSH_S)
    for tracker in list(_LIVE):
        tracker._sync(timeout=EXIT_FLUSH_S, raise_error=False)


class Tracker:
    """One MLflow run, written through `MlflowClient` (no global active-run state).

    Writes go through one background thread per run, in order: the constructor returns at
    once while MLflow is imported and the store opened (`preflight` starts that even earlier),
    and params, tags and texts queued before the run exists go out as one batch. Once the run
    exists, `log_metrics` returns when its metrics are in the store (a killed process loses
    none it logged); `run_id`, `experiment_id` and `client` wait for the run (`client` also
    for every queued write); `end` and `flush` wait for everything. A failed write is raised
    by the next of those calls."""

    def __init__(self, experiment: str, run_name: str | None = None, *, uri: str | None = None,
                 run_id: str | None = None, parent_run_id: str | None = None,
                 tags: Mapping[str, str] | None = None):
        self.uri = _with_timeout(tracking_uri(uri))
        _check_sqlite_folder(self.uri)
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        self._ops: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._start_error: BaseException | None = None
        self._client: Any = None
        self._run_id: str | None = None
        self._experiment_id: str | None = None
        self._ended = False
        self.seconds: dict[str, float] = {}  # where the start-up went (benchmarks)
        opener = open_client(self.uri)
        self._thread = threading.Thread(target=self._write, name="nas-mlflow-writer", daemon=True,
                                        args=(opener, experiment, run_name, run_id, all_tags))
        self._thread.start()
        _LIVE.add(self)

    # ------------------------------------------------------------------ the writer thread

    def _start(self, opener: _Opener, experiment: str, run_name: str | None,
               run_id: str | None, tags: dict[str, str]) -> None:
        wait = time.perf_counter()
        client = opener.result()
        self.seconds = {**opener.seconds, "wait for store": time.perf_counter() - wait}
        start = time.perf_counter()
        self._experiment_id = self._experiment(client, experiment)
        if run_id:
            client.update_run(run_id, status="RUNNING")
            if tags:
                client.log_batch(run_id, **_entities({"tags": list(tags.items())}))
        else:
            run_id = client.create_run(self._experiment_id, run_name=run_name, tags=tags).info.run_id
        self.seconds["create run"] = time.perf_counter() - start
        self._client, self._run_id = client, run_id

    def _write(self, opener: _Opener, *start_args: Any) -> None:
        try:
            self._start(opener, *start_args)
        except BaseException as err:  # noqa: BLE001 - raised in the caller's thread
            self._start_error = err
        finally:
            self._ready.set()
        while True:
            ops = [self._ops.get()]
            while True:  # everything queued meanwhile, written together
                try:
                    ops.append(self._ops.get_nowait())
                except queue.Empty:
                    break
            for op in _coalesce(ops):
                if op[0] == "sync":
                    op[1].set()
                elif self._start_error is None:
                    try:
                        self._do(op)
                    except BaseException as err:  # noqa: BLE001 - raised in the caller's thread
                        self._error = self._error or err
                if op[0] == "end":
                    return

    def _do(self, op: tuple) -> None:
        kind = op[0]
        if kind == "batch":
            self._client.log_batch(self._run_id, **_entities(op[1]))
        elif kind == "text":
            self._client.log_text(self._run_id, op[1], op[2])
        elif kind == "artifact":
            self._client.log_artifact(self._run_id, op[1], op[2])
        elif kind == "end":
            self._client.set_terminated(self._run_id, status=op[1])

    @staticmethod
    def _experiment(client: Any, name: str) -> str:
        """The experiment's id, created if new; tagged so the MLflow UI opens on its training
        runs with the NAS columns (`nas.mlflow_layout.experiment_tags`)."""
        from nas import mlflow_layout

        found = client.get_experiment_by_name(name)
        if found is not None:
            mlflow_layout.tag_experiment(client, found.experiment_id, found.tags)
            return found.experiment_id
        location = None
        if client.tracking_uri.startswith("sqlite:///"):
            location = (Path.cwd() / DEFAULT_ARTIFACTS).resolve().as_uri()
        try:
            return client.create_experiment(name, artifact_location=location,
                                            tags=mlflow_layout.experiment_tags())
        except Exception:  # another process created it meanwhile
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            mlflow_layout.tag_experiment(client, found.experiment_id, found.tags)
            return found.experiment_id

    # ------------------------------------------------------------------ the caller's side

    def _wait_ready(self) -> None:
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def _sync(self, timeout: float | None = None, raise_error: bool = True) -> None:
        """Wait until everything queued so far is written; raise a failed write once."""
        if self._thread.is_alive():
            done = threading.Event()
            self._ops.put(("sync", done))
            done.wait(timeout)
        if raise_error and self._error is not None:
            err, self._error = self._error, None
            raise err

    def _put(self, *op: Any) -> None:
        if self._ended:  # the writer is gone: write directly (MLflow allows it on ended runs)
            self._wait_ready()
            self._do(op)
        else:
            self._ops.put(op)

    @property
    def run_id(self) -> str:
        self._wait_ready()
        return self._run_id  # type: ignore[return-value]

    @property
    def experiment_id(self) -> str:
        self._wait_ready()
        return self._experiment_id  # type: ignore[return-value]

    @property
    def client(self) -> Any:
        """The MlflowClient, after every queued write (so direct calls see them in order)."""
        self._wait_ready()
        self._sync()
        return self._client

    def flush(self) -> None:
        """Wait until every queued write is in the store."""
        self._wait_ready()
        self._sync()

    # (MLflow's entity classes are made in the writer thread: importing them here would wait
    # for the background import of mlflow)

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [(param_name(k), str(v)[:6000]) for k, v in flatten(params).items()]
        if items:
            self._put("batch", {"params": items})

    def log_metrics(self, metrics: Mapping[str, float | None], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        if items:
            self._put("batch", {"metrics": items})
            if self._ready.is_set():  # durable on return, as a synchronous write would be
                self.flush()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if tags:
            self._put("batch", {"tags": [(k, str(v)[:5000]) for k, v in tags.items()]})

    def log_text(self, text: str, artifact_file: str) -> None:
        self._put("text", text, artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._put("artifact", str(path), artifact_path)

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Write what is queued, then mark the run `status`; waits for all of it."""
        if self._ended:
            return
        if error:
            self.set_tags({"error": error})
            self.log_text(error, "error.txt")
        self._ops.put(("end", status))
        self._ended = True
        self._ready.wait()
        if self._start_error is not None:  # no run was created: nothing to end
            return
        self._thread.join()
        if self._error is not None:
            err, self._error = self._error, None
            raise err


def _entities(batch: dict[str, list]) -> dict[str, list]:
    """Queued tuples -> log_batch's keyword arguments."""
    from mlflow.entities import Metric, Param, RunTag

    return {"metrics": [Metric(*m) for m in batch.get("metrics", [])],
            "params": [Param(*p) for p in batch.get("params", [])],
            "tags": [RunTag(k, str(v)[:5000]) for k, v in batch.get("tags", [])]}


def _coalesce(ops: list[tuple]) -> list[tuple]:
    """Consecutive log_batch writes merged within MLflow's per-call limits; order kept."""
    out: list[tuple] = []
    for op in ops:
        if op[0] == "batch" and out and out[-1][0] == "batch":
            prev, merged = out[-1][1], {k: out[-1][1].get(k, []) + op[1].get(k, []) for k in BATCH_LIMITS}
            fits = all(len(merged[k]) <= n for k, n in BATCH_LIMITS.items()) and \
                sum(map(len, merged.values())) <= BATCH_TOTAL
            keys = lambda b, k: {item[0] for item in b.get(k, [])}  # noqa: E731
            clash = any(keys(prev, k) & keys(op[1], k) for k in ("params", "tags"))
            if fits and not clash:  # a key twice in one log_batch is an MLflow error
                out[-1] = ("batch", {k: v for k, v in merged.items() if v})
                continue
        if op[0] == "batch":  # one write may itself be over a limit: split it
            out.extend(("batch", part) for part in _split(op[1]))
            continue
        out.append(op)
    return out


def _split(batch: dict[str, list]) -> list[dict[str, list]]:
    parts = []
    for key, limit in BATCH_LIMITS.items():
        items = batch.get(key, [])
        parts += [{key: items[i:i + limit]} for i in range(0, len(items), limit)]
    return parts


class NullTracker:
    """Stands in when `mlflow.enabled=false`."""

    run_id = None
    experiment_id = None
    uri = None

    def flush(self) -> None: ...
    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float | None], step: int = 0) -> None: ...
    def set_tags(self, tags: Mapping[str, Any]) -> None: ...
    def log_text(self, text: str, artifact_file: str) -> None: ...
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...
    def end(self, status: str = "FINISHED", error: str | None = None) -> None: ...
