"""Preflight: one-line failures in seconds for what would otherwise crash a run hours in (an
unwritable or full folder, an unreachable MLflow server)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from nas.errors import NasError
from nas.store_check import check_tracking_uri
from nas.tracking.store import open_client
from nas.tracking.uris import DEFAULT_ARTIFACTS, sqlite_path, tracking_uri

MIN_FREE_MB = 200  # below this a run may die on its first checkpoint or MLflow write
SERVER_TIMEOUT_S = 5.0


def check_folder(path: str | Path, what: str) -> None:
    """`path` can be written (probed with a real file: permission bits lie to root and on read-only
    mounts), and its disk has MIN_FREE_MB free ($NAS_MIN_FREE_MB)."""
    path = base = Path(path)
    base = base.absolute()
    while not base.exists() and base != base.parent:  # the nearest folder that exists
        base = base.parent
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
    """An http(s) MLflow server answers (MLflow's client would retry for minutes, at the first write)."""
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
    """The module's checks, at the start of every run and campaign; `folders` maps a description
    ("--output-dir") to a path, `tracking=False` (MLflow off) checks only those. Returns the URI."""
    resolved = tracking_uri(uri)
    if tracking:
        check_tracking_uri(resolved)
    checks = dict(folders or {})
    db = sqlite_path(resolved)
    if tracking and db is not None:
        checks.update({"MLflow store": db.parent, "MLflow artifacts": Path.cwd() / DEFAULT_ARTIFACTS})
    elif tracking and (resolved.startswith("file:") or "://" not in resolved):
        checks["MLflow store"] = Path(resolved.removeprefix("file://").removeprefix("file:"))
    elif tracking and resolved.startswith(("http://", "https://")):
        check_server(resolved)
    for what, path in checks.items():
        check_folder(path, what)
    if tracking:  # import MLflow and open the store in the background while the run loads data
        open_client(resolved)
    return resolved
