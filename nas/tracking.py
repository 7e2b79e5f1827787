"""The one place that talks to MLflow.

Default store: a SQLite file `./mlflow.db` (WAL journal, so readers never block the writer)
with artifacts in `./mlartifacts`, which `mlflow ui --backend-store-uri sqlite:///mlflow.db`
shows. `$MLFLOW_TRACKING_URI` or `mlflow.tracking_uri=` point it at a server instead.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping

from nas.errors import NasError

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
SQLITE_BUSY_TIMEOUT_S = 60


def tracking_uri(configured: str | None = None) -> str:
    """Configured URI, else $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):].split("?")[0]) if uri.startswith("sqlite:///") else None


def prepare_sqlite(uri: str) -> str:
    """Switch a SQLite store to WAL and add a busy timeout; refuse an unwritable folder early."""
    path = _sqlite_path(uri)
    if path is None:
        return uri
    if not path.parent.exists() or not os.access(path.parent, os.W_OK):
        raise NasError(f"MLflow store {path}: folder {path.parent} is missing or not writable")
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as con:
        con.execute("PRAGMA journal_mode=WAL")
    return uri if "?" in uri else f"{uri}?timeout={SQLITE_BUSY_TIMEOUT_S}"


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

    return {"nas.version": nas.__version__, "nas.git_commit": git_commit(),
            "torch.version": torch.__version__, "python.version": platform.python_version(),
            "host.platform": platform.platform()}


class Tracker:
    """One MLflow run, written through `MlflowClient` (no global active-run state)."""

    def __init__(self, experiment: str, run_name: str | None = None, *, uri: str | None = None,
                 run_id: str | None = None, parent_run_id: str | None = None,
                 tags: Mapping[str, str] | None = None):
        from mlflow.tracking import MlflowClient

        for noisy in ("mlflow", "alembic"):  # schema-migration chatter on a new store
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.uri = prepare_sqlite(tracking_uri(uri))
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self._experiment(experiment)
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        if run_id:
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            if all_tags:
                self.set_tags(all_tags)
        else:
            run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
            self.run_id = run.info.run_id

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):
            location = (Path.cwd() / DEFAULT_ARTIFACTS).resolve().as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(param_name(k), str(v)[:6000]) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: Mapping[str, float | None], step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        if error:
            self.set_tags({"error": error})
            self.log_text(error, "error.txt")
        self.client.set_terminated(self.run_id, status=status)


class NullTracker:
    """Stands in when `mlflow.enabled=false`."""

    run_id = None
    uri = None

    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float | None], step: int = 0) -> None: ...
    def set_tags(self, tags: Mapping[str, Any]) -> None: ...
    def log_text(self, text: str, artifact_file: str) -> None: ...
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...
    def end(self, status: str = "FINISHED", error: str | None = None) -> None: ...
