"""Opening an MLflow store: a new SQLite store starts as a copy of a migrated empty one, and each
store gets one client, opened in a background thread while a run loads its data."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from nas.tracking.uris import SQLITE_BUSY_TIMEOUT_S, check_sqlite_folder, sqlite_path, with_timeout


def prepare_sqlite(uri: str) -> str:
    """Switch a SQLite store to WAL and add a busy timeout; refuse an unwritable folder early."""
    path = sqlite_path(uri)
    if path is None:
        return uri
    check_sqlite_folder(uri)
    if not path.exists():
        new_sqlite_store(path)
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as con:
        con.execute("PRAGMA journal_mode=WAL")
    return with_timeout(uri)


def _template_path() -> Path:
    from importlib.metadata import version

    root = os.environ.get("NAS_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "nas"
    return base / "mlflow" / f"empty-store-mlflow-{version('mlflow')}.db"


def _make_template(template: Path) -> None:
    """An empty store migrated by MLflow, minus the Default experiment (its artifact folder depends
    on the working directory: MLflow adds it on first open)."""
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
    """Create the SQLite store `path` as a copy of a migrated empty one, cached per MLflow version in
    $NAS_CACHE/mlflow (MLflow's 50-odd migrations take seconds); without a cache MLflow migrates it."""
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


class StoreOpener:
    """Imports MLflow and opens its store for `uri` in a background thread (seconds), while a run loads its data."""

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


_OPENERS: dict[str, StoreOpener] = {}
_OPENERS_LOCK = threading.Lock()


def wait_opened(timeout: float) -> None:
    """Wait (up to `timeout` each) for every store being opened, so none is left half-migrated."""
    for opener in list(_OPENERS.values()):
        opener.done.wait(timeout)


def open_client(uri: str) -> StoreOpener:
    """The process's opener for `uri` (one client per store), started when first asked; a failed one is retried."""
    uri = with_timeout(uri)
    with _OPENERS_LOCK:
        opener = _OPENERS.get(uri)
        if opener is None or (opener.done.is_set() and opener.error is not None):
            opener = _OPENERS[uri] = StoreOpener(uri)
        return opener
