"""The names of the MLflow layout, every tag, param prefix and metric written and read (no tag name is
a literal elsewhere). A `nas run` is one run; a search a parent with a child per trial and per
retrained front member; an ablation a parent with a child per cell and seed."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

# --- tags
KIND = "nas.kind"  # one of the KIND_* values below
STATUS = "nas.status"  # a nas.status.Status value
TRIAL = "nas.trial"  # a search trial's number (Optuna's), as text
SEARCH = "nas.search"  # the search name, on trials
SPACE = "nas.space"
OBJECTIVES = "nas.objectives"
NODE = "nas.node"  # the Ray node a trial or cell ran on
DEVICE = "device"  # the torch device a run, trial or cell trained on (cpu, cuda:0, npu:1)
PRECISION = "nas.precision"  # bf16 | fp16 | fp32, +channels_last: what the numbers were made with
INFEASIBLE_REASON = "nas.infeasible_reason"
RETRAIN_OF = "nas.retrain_of"
ABLATION = "nas.ablation"  # the ablation name, on the parent and its cells
EXPERIMENT = "nas.experiment"  # the experiment file's name
FACTORS = "nas.factors"
CELL = "nas.cell"  # a cell's label, "groups=3 shuffle=false"
POINT = "nas.point"  # an ablation point's key, "groups=3 shuffle=false@1" (cell@seed), set at creation
TEST_IMAGES = "nas.test_images"
DATA = "nas.data"
BUDGET = "nas.budget"
LATENCY_RUNTIME = "nas.latency_runtime"  # where a search's latency_ms was measured (nas.latency)
LATENCY_THREADS = "nas.latency_threads"
PAPER = "nas.paper"
SPEC = "nas.spec"
SELECTION_METRIC = "nas.selection_metric"
TEST_SET = "nas.test_set"  # how the test split was used: TEST_SET_ONCE
# the environment a run came from (every run)
NAS_VERSION = "nas.version"
GIT_COMMIT = "nas.git_commit"
TORCH_VERSION = "torch.version"
PYTHON_VERSION = "python.version"
HOST_PLATFORM = "host.platform"
PARETO = "pareto"  # PARETO_TRUE on front members
ERROR = "error"
PARENT_RUN_ID = "mlflow.parentRunId"

# MLflow run statuses (its RunStatus names); a point's `nas.status.Status` maps onto them
RUN_RUNNING, RUN_FINISHED, RUN_FAILED, RUN_KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"

PARETO_TRUE = "true"
TEST_SET_ONCE = "reported once at the end, never used for selection"

KIND_RUN = "run"
KIND_SEARCH = "search"
KIND_TRIAL = "trial"
KIND_RETRAIN = "retrain"
KIND_ABLATION = "ablation"
KIND_CELL = "ablation_cell"

# --- params
CHOICE_PREFIX = "choice."  # a search trial's sampled choices: choice.groups, choice.s2.block
FACTOR_PREFIX = "factor."  # an ablation cell's factor values: factor.width
SEED = "seed"

# --- metrics
VAL_ACC = "val_acc"  # validation split carved from train: what selection uses
TEST_ACC = "test_acc"  # the test split, evaluated once at the end, for reporting only
MACS = "macs"
PARAMS = "params"
LATENCY_MS = "latency_ms"  # measured before training (nas.latency); its runtime and threads are tags
WALL_TIME_S = "wall_time_s"
TRAIN_S = "train_s"
# logged per epoch (step = epoch); cpu_s: CPU seconds of the training pass (nas.train._epoch)
EPOCH_METRICS = ("train_loss", "val_acc", "lr", "img_per_s", "cpu_s")

# --- artifacts (of the parent runs)
TRIALS_CSV = "trials.csv"  # a search's trials, one row per trial (with `pareto` and `reference`)
SUMMARY_CSV = "summary.csv"  # an ablation's cells, mean and std over seeds

# --- the MLflow UI: what a NAS experiment opens on
EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow 3's experiment type (a documentation tag only)
EXPERIMENT_KIND_TRAINING = "custom_model_development"
SHARED_VIEW_PREFIX = "mlflow.sharedViewState."  # the UI's saved views: <prefix><key> = the view as JSON
VIEW_KEY = "nas"  # our view's share key (?viewStateShareKey=nas)
UI_METRICS = (VAL_ACC, TEST_ACC, MACS, PARAMS)  # the runs table's columns, in this order
UI_DEFAULT = "http://127.0.0.1:5000"  # where `mlflow ui` serves


def experiment_view() -> dict:
    """The runs-table view the MLflow UI (3.x) restores from the tag SHARED_VIEW_PREFIX + VIEW_KEY:
    UI_METRICS columns, newest first, grouped by KIND (flat rows: no parent to unfold), parents folded."""
    columns = [f"metrics.`{m}`" for m in UI_METRICS]
    folded = {f"tag.{KIND}.{kind}": False for kind in (KIND_SEARCH, KIND_ABLATION)}
    return {"orderByKey": "attributes.start_time", "orderByAsc": False,
            "selectedColumns": columns, "columnOrder": columns,
            "groupBy": {"aggregateFunction": "max", "groupByKeys": [{"mode": "tag", "groupByData": KIND}]},
            "groupsExpanded": folded}


def experiment_tags() -> dict[str, str]:
    """The tags every NAS experiment carries."""
    return {EXPERIMENT_KIND: EXPERIMENT_KIND_TRAINING,
            SHARED_VIEW_PREFIX + VIEW_KEY: json.dumps(experiment_view(), separators=(",", ":"))}


def tag_experiment(client, experiment_id: str, current: dict[str, str] | None = None) -> None:
    """Set `experiment_tags()` through an MlflowClient; only those that differ from `current`."""
    for key, value in experiment_tags().items():
        if current is None or current.get(key) != value:
            client.set_experiment_tag(experiment_id, key, value)


def ui_link(experiment_id: str, base: str = UI_DEFAULT) -> str:
    """The experiment's runs in the MLflow UI (`workflowType=machine_learning` skips MLflow 3's GenAI
    overview) in the view `tag_experiment` stored."""
    return (f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"
            f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}")


def ui_hint(tracking_uri: str, experiment_id: str) -> str:
    """How to open the runs, printed at the end of every command: a server's link, else the
    `mlflow ui` command for the local store and the link on its default address."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"MLflow UI: {ui_link(experiment_id, tracking_uri)}"
    uri = tracking_uri.split("?")[0]  # sqlite:///x.db?timeout=60: the query is the writers' business
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_absolute():
        uri = f"sqlite:///{Path(uri[len('sqlite:///'):]).absolute()}"  # copy-pasted from anywhere
    return (f"MLflow UI: mlflow ui --backend-store-uri {shlex.quote(uri)}\n"
            f"  then open {ui_link(experiment_id)}")
