"""Writing one MLflow run: `Tracker` queues params, metrics, tags and artifacts to one background
writer thread per run (batched within MLflow's limits), and the tags every run carries."""

from __future__ import annotations

import atexit
import platform
import queue
import re
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Mapping

import nas
from nas import mlflow_layout as ml
from nas.tracking.store import StoreOpener, open_client, wait_opened
from nas.tracking.uris import DEFAULT_ARTIFACTS, check_sqlite_folder, tracking_uri, with_timeout


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
    """MLflow names allow only alphanumerics and `_-. :/`: `stages[2].groups` -> `stages_2_.groups`."""
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
    wait_opened(EXIT_FLUSH_S)
    for tracker in list(_LIVE):
        tracker._sync(timeout=EXIT_FLUSH_S, raise_error=False)


class Tracker:
    """One MLflow run, written in order by one background thread through `MlflowClient` (no global
    run state): the constructor returns while MLflow loads, writes queued before the run exists go
    out as one batch, then `log_metrics` returns once its metrics are stored (a killed process
    loses none). `run_id`, `client`, `end` and `flush` wait; a failed write is raised by the next."""

    def __init__(self, experiment: str, run_name: str | None = None, *, uri: str | None = None,
                 run_id: str | None = None, parent_run_id: str | None = None,
                 tags: Mapping[str, str] | None = None):
        self.uri = with_timeout(tracking_uri(uri))
        check_sqlite_folder(self.uri)
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags[ml.PARENT_RUN_ID] = parent_run_id
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

    def _start(self, opener: StoreOpener, experiment: str, run_name: str | None,
               run_id: str | None, tags: dict[str, str]) -> None:
        wait = time.perf_counter()
        client = opener.result()
        self.seconds = {**opener.seconds, "wait for store": time.perf_counter() - wait}
        start = time.perf_counter()
        self._experiment_id = self._experiment(client, experiment)
        if run_id:
            client.update_run(run_id, status=ml.RUN_RUNNING)
            if tags:
                client.log_batch(run_id, **_entities({"tags": list(tags.items())}))
        else:
            run_id = client.create_run(self._experiment_id, run_name=run_name, tags=tags).info.run_id
        self.seconds["create run"] = time.perf_counter() - start
        self._client, self._run_id = client, run_id

    def _write(self, opener: StoreOpener, *start_args: Any) -> None:
        try:
            self._start(opener, *start_args)
        except BaseException as err:  # noqa: BLE001 - raised in the caller's thread
            self._start_error = err
        finally:
            self._ready.set()
        while True:
            ops = [self._ops.get()]
            while not self._ops.empty():  # everything queued meanwhile, written together (one reader)
                ops.append(self._ops.get_nowait())
            for op in _coalesce(ops):
                if op[0] == "sync":
                    op[1].set()
                elif self._start_error is None:
                    try:
                        self._do(op)
                    except BaseException as err:  # noqa: BLE001 - raised in the caller's thread
                        self._error = self._error or err
                if op[0] == "set_terminated":
                    return

    def _do(self, op: tuple) -> None:
        """A batch (its entities made here), else a call of the MlflowClient method the op names."""
        if op[0] == "batch":
            self._client.log_batch(self._run_id, **_entities(op[1]))
        else:
            getattr(self._client, op[0])(self._run_id, *op[1:])

    @staticmethod
    def _experiment(client: Any, name: str) -> str:
        """The experiment's id, created if new; tagged so the MLflow UI opens on the NAS columns."""
        found = client.get_experiment_by_name(name)
        if found is None:
            location = None
            if client.tracking_uri.startswith("sqlite:///"):
                location = (Path.cwd() / DEFAULT_ARTIFACTS).resolve().as_uri()
            try:
                return client.create_experiment(name, artifact_location=location, tags=ml.experiment_tags())
            except Exception:  # another process created it meanwhile
                found = client.get_experiment_by_name(name)
                if found is None:
                    raise
        ml.tag_experiment(client, found.experiment_id, found.tags)
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
        self.flush()
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
        self._put("log_text", text, artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._put("log_artifact", str(path), artifact_path)

    def end(self, status: str = ml.RUN_FINISHED, error: str | None = None) -> None:
        """Write what is queued, then mark the run `status`; waits for all of it."""
        if self._ended:
            return
        if error:
            self.set_tags({ml.ERROR: error})
            self.log_text(error, "error.txt")
        self._ops.put(("set_terminated", status))
        self._ended = True
        self._ready.wait()
        if self._start_error is not None:  # no run was created: nothing to end
            return
        self._thread.join()
        self._sync()  # raises a failed write


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
    def end(self, status: str = ml.RUN_FINISHED, error: str | None = None) -> None: ...
