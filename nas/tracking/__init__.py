"""The one place that talks to MLflow. Default store: `./mlflow.db` (SQLite in WAL mode, so readers
never block the writer) with artifacts in `./mlartifacts`; `$MLFLOW_TRACKING_URI` or
`mlflow.tracking_uri=` point it at a server instead. The names below are the package's public API."""

from nas.tracking.preflight import check_folder, check_server, preflight
from nas.tracking.store import new_sqlite_store, open_client, prepare_sqlite
from nas.tracking.uris import DEFAULT_ARTIFACTS, DEFAULT_DB, tracking_uri
from nas.tracking.writer import NullTracker, Tracker, environment_tags, flatten, git_commit, param_name

__all__ = ["DEFAULT_ARTIFACTS", "DEFAULT_DB", "NullTracker", "Tracker", "check_folder", "check_server",
           "environment_tags", "flatten", "git_commit", "new_sqlite_store", "open_client", "param_name",
           "preflight", "prepare_sqlite", "tracking_uri"]
