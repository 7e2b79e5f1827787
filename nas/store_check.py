"""The MLflow tracking URI, checked before the first epoch (a known scheme, its driver installed,
its server reachable, its SQLite file writable): MLflow opens the store lazily, so a wrong URI
would otherwise surface at the first write, after the training it was meant to record."""

from __future__ import annotations

import importlib.util
import socket
import sqlite3
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from nas.errors import NasError

CONNECT_TIMEOUT_S = 5.0
FORMS = "sqlite:///PATH, a folder, http(s)://HOST:PORT, postgresql://, mysql:// or mssql://"

# database dialect -> (default port, modules any one of which SQLAlchemy can use, pip package)
DATABASES: dict[str, tuple[int, tuple[str, ...], str]] = {
    "postgresql": (5432, ("psycopg2", "psycopg", "pg8000"), "psycopg2-binary"),
    "mysql": (3306, ("pymysql", "MySQLdb", "mysql.connector"), "pymysql"),
    "mssql": (1433, ("pyodbc", "pymssql"), "pyodbc"),
}


def _module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_sqlite(uri: str) -> None:
    """`sqlite:///relative.db` or `sqlite:////absolute.db`; an existing file must be a SQLite
    database that can be written (a read-only or foreign file fails at the first write)."""
    if not uri.startswith("sqlite:///"):
        raise NasError(f"MLflow tracking URI {uri!r}: a SQLite URI has three slashes before the path"
                       " (sqlite:///mlflow.db relative, sqlite:////data/mlflow.db absolute)")
    path = Path(uri[len("sqlite:///"):].split("?")[0])
    if not path.name:
        raise NasError(f"MLflow tracking URI {uri!r} names no database file")
    if path.is_dir():
        raise NasError(f"MLflow store {path} is a folder; name a database file, e.g. {path / 'mlflow.db'}")
    if not path.exists():
        return  # the folder check in `preflight` covers a new store
    try:
        con = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=CONNECT_TIMEOUT_S)
        try:
            con.execute("PRAGMA schema_version").fetchone()
            con.execute("BEGIN IMMEDIATE")
            con.rollback()
        finally:
            con.close()
    except sqlite3.Error as err:
        raise NasError(f"MLflow store {path} cannot be written as a SQLite database ({err});"
                       " pick another file with mlflow.tracking_uri=sqlite:///PATH") from None


def check_database(uri: str) -> None:
    """A SQLAlchemy URI (`postgresql+psycopg2://user@host:port/db`): driver installed, server
    answering on its port."""
    parts = urlsplit(uri)
    dialect, _, driver = parts.scheme.partition("+")
    port, modules, package = DATABASES[dialect]
    wanted = (driver,) if driver and _module_present(driver) else modules
    if not any(_module_present(m) for m in wanted):
        raise NasError(f"MLflow tracking URI {parts.scheme}://...: no {dialect} driver is installed"
                       f" ({' or '.join(modules)}); pip install {package}")
    host = parts.hostname or "localhost"
    try:
        port = parts.port or port
    except ValueError:
        raise NasError(f"MLflow tracking URI {uri!r} has an invalid port") from None
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise NasError(f"{dialect} server {host}:{port} of MLflow tracking URI {parts.scheme}://... is"
                       f" unreachable ({err.strerror or err}); start it, or unset MLFLOW_TRACKING_URI /"
                       " mlflow.tracking_uri for the local SQLite store") from None


def _no_check(uri: str) -> None:
    """Checked elsewhere (`tracking.check_server`, `tracking.check_folder`) or by its service."""


CHECKS: dict[str, Callable[[str], None]] = {
    "sqlite": check_sqlite, "file": _no_check, "http": _no_check, "https": _no_check,
    "databricks": _no_check, **{name: check_database for name in DATABASES},
}


def check_tracking_uri(uri: str) -> None:
    """One line and no training when `uri` cannot be the store of a run."""
    if "://" not in uri and not uri.startswith("file:"):
        return  # a plain folder path: MLflow's file store
    scheme = urlsplit(uri).scheme.partition("+")[0].lower()
    check = CHECKS.get(scheme)
    if check is None:
        raise NasError(f"MLflow tracking URI {uri!r}: unknown scheme {scheme + '://'!r}; use {FORMS}")
    check(uri)
