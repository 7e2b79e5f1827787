"""Which MLflow store: the configured URI or the default SQLite file, and that file's path and
busy timeout."""

from __future__ import annotations

import os
from pathlib import Path

from nas.errors import NasError

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
SQLITE_BUSY_TIMEOUT_S = 60


def tracking_uri(configured: str | None = None) -> str:
    """Configured URI, else $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):].split("?")[0]) if uri.startswith("sqlite:///") else None


def with_timeout(uri: str) -> str:
    """A SQLite URI with the busy timeout (other URIs as given)."""
    if sqlite_path(uri) is None or "?" in uri:
        return uri
    return f"{uri}?timeout={SQLITE_BUSY_TIMEOUT_S}"


def check_sqlite_folder(uri: str) -> None:
    path = sqlite_path(uri)
    if path is not None and (not path.parent.exists() or not os.access(path.parent, os.W_OK)):
        raise NasError(f"MLflow store {path}: folder {path.parent} is missing or not writable")
