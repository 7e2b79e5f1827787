"""The names of the MLflow layout: every tag, param prefix and metric that `nas run`,
`nas search` and `nas ablate` write and that `nas.dashboard`, `nas pareto`, the notebooks and
the tests read. Writers and readers import these; no tag name is written as a literal elsewhere.

Layout: a `nas run` is one run (KIND_RUN). A search is a parent run (KIND_SEARCH) with a child
per trial (KIND_TRIAL) and per retrained front member (KIND_RETRAIN). An ablation is a parent
run (KIND_ABLATION) with a child per cell and seed (KIND_CELL).
"""

from __future__ import annotations

# --- tags
KIND = "nas.kind"  # one of the KIND_* values below
STATUS = "nas.status"  # a nas.status.Status value
TRIAL = "nas.trial"  # a search trial's number (Optuna's), as text
SEARCH = "nas.search"  # the search name, on trials
SPACE = "nas.space"
OBJECTIVES = "nas.objectives"
NODE = "nas.node"  # the Ray node a trial or cell ran on
DEVICE = "device"  # the torch device a run, trial or cell trained on (cpu, cuda:0, npu:1)
DEVICE_KIND = "nas.device_kind"  # cpu | cuda | npu | mps
INFEASIBLE_REASON = "nas.infeasible_reason"
DUPLICATE_OF = "nas.duplicate_of"
RETRAIN_OF = "nas.retrain_of"
ABLATION = "nas.ablation"  # the ablation name, on the parent and its cells
EXPERIMENT = "nas.experiment"  # the experiment file's name
FACTORS = "nas.factors"
CELL = "nas.cell"  # a cell's label, "groups=3 shuffle=false"
TEST_IMAGES = "nas.test_images"
DATA = "nas.data"
BUDGET = "nas.budget"
PAPER = "nas.paper"
SPEC = "nas.spec"
SELECTION_METRIC = "nas.selection_metric"
TEST_SET = "nas.test_set"
PARETO = "pareto"  # "true" on front members
ERROR = "error"
PARENT_RUN_ID = "mlflow.parentRunId"

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
LATENCY_MS = "latency_ms"
WALL_TIME_S = "wall_time_s"
TRAIN_S = "train_s"
EPOCH_METRICS = ("train_loss", "val_acc", "lr", "img_per_s")  # logged per epoch (step = epoch)
