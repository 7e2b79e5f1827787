"""Dashboards read back from MLflow: a search's trials and Pareto front, an ablation's cells over seeds.

`nas pareto` and the notebooks in `dashboards/` call this module, so both draw the same figures. It
reads only what `nas.mlflow_layout` promises, never writes nor creates a store: a missing store,
experiment or search is a one-line `NasError`."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from unittest import mock

import numpy as np
import pandas as pd

from nas import mlflow_layout as layout
from nas import pareto_plot
from nas.errors import NasError
from nas.pareto import Objective, parse_objectives, pareto_front
from nas.pareto_plot import plot_front, reference_points
from nas.status import Status
from nas.tracking import tracking_uri

TRIAL_METRICS = (layout.MACS, layout.PARAMS, layout.VAL_ACC, layout.LATENCY_MS)
PANELS = (layout.MACS, layout.PARAMS)  # x axes of the search figure, accuracy on y
METRIC_LABELS = {layout.VAL_ACC: "validation accuracy", layout.TEST_ACC: "test accuracy"}
DEFAULT_OBJECTIVES = f"{layout.VAL_ACC},{layout.MACS}"  # a search parent without nas.objectives


# ---------------------------------------------------------------- store

def resolve_uri(uri: str | None = None, *, look_up: bool = False) -> str:
    """The tracking URI to read; a SQLite store must exist (reading must not create an empty one).
    `look_up`: a relative SQLite path missing here is looked for in the parent folders too (a
    notebook's kernel starts in dashboards/, `nas search` wrote mlflow.db at the repository root)."""
    uri = tracking_uri(uri)
    if not uri.startswith("sqlite:///"):
        return uri
    raw, sep, query = uri[len("sqlite:///"):].partition("?")
    path = Path(raw)
    if look_up and not path.is_absolute() and not path.exists():
        path = next((p / raw for p in Path.cwd().parents if (p / raw).is_file()), path)
    if not path.is_file():
        raise NasError(f"MLflow store {path} does not exist: run `nas search` first, or point "
                       "MLFLOW_TRACKING_URI (nas pareto: --tracking-uri) at the store")
    return f"sqlite:///{path.resolve()}{sep}{query}"


def search_runs(uri: str, filter_string: str, experiment: str | None = None) -> pd.DataFrame:
    """The runs matching `filter_string` in one experiment (None: all), newest first, in the columns
    `mlflow.search_runs` gives, read through an `MlflowClient` (no global tracking URI touched)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        if experiment is None:
            ids = [e.experiment_id for e in client.search_experiments()]
        else:
            found = client.get_experiment_by_name(experiment)
            if found is None:
                names = sorted(e.name for e in client.search_experiments())
                raise NasError(f"no MLflow experiment {experiment!r} in {_shown(uri)}"
                               f" (experiments: {', '.join(names) or 'none'})")
            ids = [found.experiment_id]
        runs, token = [], None
        while ids:
            page = client.search_runs(ids, filter_string, order_by=["attributes.start_time DESC"],
                                      page_token=token)
            runs, token = runs + list(page), page.token
            if not token:
                break
    except MlflowException as err:
        raise NasError(f"MLflow store {_shown(uri)}: {str(err).splitlines()[0]}") from None
    return pd.DataFrame([_row(run) for run in runs], columns=None if runs else ["run_id", "run_name"])


def _row(run) -> dict:
    return {"run_id": run.info.run_id, "run_name": run.info.run_name,
            **{f"tags.{k}": v for k, v in run.data.tags.items()},
            **{f"params.{k}": v for k, v in run.data.params.items()},
            **{f"metrics.{k}": v for k, v in run.data.metrics.items()}}


def _tag_is(tag: str, value: str) -> str:
    """A search filter term: the run's tag `tag` equals `value`."""
    return f"tags.`{tag}` = '{value}'"


def _children(uri: str, run_id: str, kind: str, experiment: str | None) -> pd.DataFrame:
    return search_runs(uri, f"{_tag_is(layout.PARENT_RUN_ID, run_id)} and {_tag_is(layout.KIND, kind)}", experiment)


def _shown(uri: str) -> str:
    return uri.split("?")[0]


def _column(runs: pd.DataFrame, name: str, default=np.nan) -> pd.Series:
    return runs[name] if name in runs.columns else pd.Series(default, index=runs.index)


def _typed(values: pd.Series) -> pd.Series:
    """MLflow params are strings: numbers back to numbers, the rest (True, relu6) as written."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers if numbers.notna().sum() == values.notna().sum() else values


def _artifact_csv(uri: str, run_id: str, name: str, dtype=None) -> pd.DataFrame | None:
    """A CSV artifact of a run, or None while the run has not logged it yet."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        with mock.patch.dict(os.environ, {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):  # no bar per CSV
            if name not in {a.path for a in client.list_artifacts(run_id)}:
                return None
            with tempfile.TemporaryDirectory() as tmp:
                return pd.read_csv(client.download_artifacts(run_id, name, tmp), dtype=dtype)
    except (MlflowException, OSError):
        return None


# ---------------------------------------------------------------- searches

@dataclass(frozen=True, eq=False)
class Search:
    """A search parent run and its trials (one row per child run, trials.csv's columns)."""

    run_id: str
    name: str
    experiment: str
    space: str
    objectives: tuple[Objective, ...]
    trials: pd.DataFrame

    def describe(self) -> str:
        counts = self.trials["status"].value_counts().to_dict()
        done = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())) or "no trials yet"
        names = ",".join(o.name for o in self.objectives)
        return (f"search {self.name} (space {self.space}, objectives {names}; experiment "
                f"{self.experiment}, run {self.run_id}): {len(self.trials)} trials, {done}")


def load_search(uri: str | None, experiment: str, name: str | None = None, *,
                look_up: bool = False) -> Search:
    """The search called `name` (its parent run's name), else the latest one, with its trials: values
    from the child runs, reference (paper) labels from the trials.csv a search logs when it ends."""
    uri = resolve_uri(uri, look_up=look_up)
    parents = search_runs(uri, _tag_is(layout.KIND, layout.KIND_SEARCH), experiment)
    if not len(parents):
        raise NasError(f"no search runs in experiment {experiment!r} of {_shown(uri)}: run "
                       "`nas search` first (or pick the experiment with --experiment)")
    names = parents["run_name"].astype(str)
    picked = parents if name is None else parents[names == name]
    if not len(picked):
        raise NasError(f"no search called {name!r} in experiment {experiment!r}; searches: "
                       f"{', '.join(dict.fromkeys(names))}")
    parent = picked.iloc[0]
    run_id = str(parent["run_id"])
    objectives = tuple(parse_objectives(str(_value(parent, f"tags.{layout.OBJECTIVES}", DEFAULT_OBJECTIVES))))
    children = _children(uri, run_id, layout.KIND_TRIAL, experiment)
    trials = _trials(children, _artifact_csv(uri, run_id, layout.TRIALS_CSV))
    return Search(run_id, str(parent["run_name"]), experiment,
                  str(_value(parent, f"tags.{layout.SPACE}", "")), objectives, trials)


def _value(row: pd.Series, key: str, default):
    value = row.get(key, default)
    return default if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _trials(children: pd.DataFrame, csv: pd.DataFrame | None) -> pd.DataFrame:
    """Child runs -> trials.csv-shaped rows, sorted by trial number."""
    running = Status.RUNNING.value
    df = pd.DataFrame({"trial": pd.to_numeric(_column(children, f"tags.{layout.TRIAL}")).astype("Int64"),
                       "status": _column(children, f"tags.{layout.STATUS}", running).fillna(running)})
    for metric in TRIAL_METRICS:
        if metric != layout.LATENCY_MS or f"metrics.{metric}" in children.columns:
            df[metric] = pd.to_numeric(_column(children, f"metrics.{metric}"))
    references = {}
    if csv is not None and {"trial", "reference"} <= set(csv.columns):
        references = dict(zip(csv["trial"], csv["reference"].fillna("").astype(str)))
    df["reference"] = [references.get(t, "") for t in df["trial"]]
    for col in sorted(c for c in children.columns if c.startswith(f"params.{layout.CHOICE_PREFIX}")):
        df[col[len("params."):]] = _typed(children[col])
    df["mlflow_run_id"] = children["run_id"].astype(str) if len(children) else pd.Series(dtype=str)
    df["pareto"] = _column(children, f"tags.{layout.PARETO}", "").fillna("").astype(str).eq(layout.PARETO_TRUE)
    return df.sort_values("trial", kind="mergesort").reset_index(drop=True)


def front_table(search: Search) -> pd.DataFrame:
    """The search's front (`nas.pareto.pareto_front`), cheapest first."""
    objectives = list(search.objectives)
    missing = [o.name for o in objectives if o.name not in search.trials.columns]
    if missing:
        raise NasError(f"search {search.name}: no {', '.join(missing)} metric on its trials; the "
                       f"objectives were {','.join(o.name for o in objectives)}")
    trials = search.trials
    shown = (layout.MACS, layout.PARAMS, layout.VAL_ACC)
    columns = ["trial", *shown, *[o.name for o in objectives if o.name not in shown], "reference",
               *[c for c in trials.columns if c.startswith(layout.CHOICE_PREFIX)], "mlflow_run_id"]
    return pareto_front(trials, objectives)[columns].reset_index(drop=True)


def pareto_figure(search: Search, out: str | Path, panels: Sequence[str] | None = None) -> Path:
    """The search's figure as `nas search` draws it; `panels` default: MACs, params, measured latency."""
    if panels is None:
        measured = bool(layout.LATENCY_MS in search.trials.columns and search.trials[layout.LATENCY_MS].notna().any())
        panels = (*PANELS, layout.LATENCY_MS) if measured else PANELS
    return plot_front(search.trials, search.objectives, out=out, panels=panels,
                      presets=reference_points(search.trials), title=pareto_plot.search_title(search.name))


# ---------------------------------------------------------------- ablations

SUMMARY_VALUES = ("macs", "params", "val_acc_mean", "val_acc_std", "test_acc_mean", "test_acc_std",
                  "n_seeds", "paper")
SUMMARY_NOTES = ("cell", "status", "error", "data")


@dataclass(frozen=True, eq=False)
class Ablation:
    """An ablation parent run and its per-cell summary (summary.csv's columns, factor values as text)."""

    run_id: str
    name: str  # the experiment file's name (tag nas.experiment), e.g. shufflenet_shuffle
    run_name: str  # this run of it (tag nas.ablation), e.g. shufflenet_shuffle-20261123-124926
    factors: tuple[str, ...]
    summary: pd.DataFrame
    source: str  # "summary.csv" (logged when the ablation ended) or "children" (aggregated here)


def load_ablations(uri: str | None, experiment: str | None = None,
                   names: Sequence[str] | None = None, *, look_up: bool = False) -> list[Ablation]:
    """The latest run of each ablation experiment (in all MLflow experiments when `experiment` is None);
    `names` picks experiments (shufflenet_shuffle) or runs (shufflenet_shuffle-2026...)."""
    uri = resolve_uri(uri, look_up=look_up)
    parents = search_runs(uri, _tag_is(layout.KIND, layout.KIND_ABLATION), experiment)
    where = f"experiment {experiment!r}" if experiment else "any experiment"
    if not len(parents):
        raise NasError(f"no ablation runs in {where} of {_shown(uri)}: run `nas ablate` first")
    run_names = _column(parents, f"tags.{layout.ABLATION}").fillna(parents["run_name"])
    parents = parents.assign(_name=_column(parents, f"tags.{layout.EXPERIMENT}").fillna(run_names).astype(str),
                             _run=run_names.astype(str))
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        known = set(parents["_name"]) | set(parents["_run"])
        unknown = [n for n in names if n not in known]
        if unknown:
            raise NasError(f"no ablation {', '.join(map(repr, unknown))} in {where}; ablations: "
                           f"{', '.join(sorted(set(parents['_name'])))}")
        parents = parents[parents["_name"].isin(names) | parents["_run"].isin(names)]
    latest = parents.drop_duplicates("_name", keep="first")  # newest first
    out = []
    for _, parent in latest.sort_values("_name").iterrows():
        run_id = str(parent["run_id"])
        factors = tuple(f.strip() for f in str(_value(parent, f"tags.{layout.FACTORS}", "")).split(",")
                        if f.strip())
        summary = _artifact_csv(uri, run_id, layout.SUMMARY_CSV, dtype={f: str for f in factors})
        source = layout.SUMMARY_CSV
        if summary is None:
            summary, source = cells_from_children(uri, run_id, factors, experiment), "children"
        if not factors:
            factors = tuple(c for c in summary.columns if c not in (*SUMMARY_VALUES, *SUMMARY_NOTES))
        out.append(Ablation(run_id, str(parent["_name"]), str(parent["_run"]), factors, summary, source))
    return out


def cells_from_children(uri: str, run_id: str, factors: Sequence[str],
                        experiment: str | None = None) -> pd.DataFrame:
    """summary.csv rebuilt from the completed cell x seed child runs (std over seeds, ddof=1)."""
    children = _children(uri, run_id, layout.KIND_CELL, experiment)
    children = children[_column(children, f"tags.{layout.STATUS}", "").eq(Status.COMPLETED)]
    runs = pd.DataFrame({"cell": _column(children, f"tags.{layout.CELL}"),
                         **{f: _column(children, f"params.{layout.FACTOR_PREFIX}{f}") for f in factors}})
    for metric in (layout.MACS, layout.PARAMS, layout.VAL_ACC, layout.TEST_ACC):
        runs[metric] = pd.to_numeric(_column(children, f"metrics.{metric}"))
    runs = runs.iloc[::-1]  # oldest first: the order the cells were run in
    if not len(runs) or not factors:
        return pd.DataFrame(columns=["cell", *factors, *SUMMARY_VALUES[:-1]])
    grouped = runs.groupby(list(factors), sort=False, dropna=False)
    summary = grouped.agg(cell=("cell", "first"), macs=("macs", "first"), params=("params", "first"),
                          val_acc_mean=("val_acc", "mean"), val_acc_std=("val_acc", "std"),
                          test_acc_mean=("test_acc", "mean"), test_acc_std=("test_acc", "std"),
                          n_seeds=("val_acc", "count")).reset_index()
    return summary[["cell", *factors, *SUMMARY_VALUES[:-1]]]


def ablation_figure(ablations: Sequence[Ablation], out: str | Path, metric: str = "test_acc") -> Path:
    """One panel per ablation: `metric` mean ± std over seeds per cell (test accuracy by default: an
    ablation selects nothing, so the test number is the one to report). x is the first factor, one
    line per setting of the others; a tick shows the cell's MACs when all lines share it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not ablations:
        raise NasError("no ablations to draw")
    cols = 1 if len(ablations) == 1 else 2
    rows = math.ceil(len(ablations) / cols)
    fig = Figure(figsize=(6.8 * cols, 4.6 * rows), dpi=120)
    FigureCanvasAgg(fig)
    for i, ablation in enumerate(ablations):
        _ablation_panel(fig.add_subplot(rows, cols, i + 1), ablation, metric)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _ablation_panel(ax, ablation: Ablation, metric: str) -> None:
    df, factors = ablation.summary, list(ablation.factors)
    mean, std = f"{metric}_mean", f"{metric}_std"
    missing = [c for c in (*factors, mean) if c not in df.columns]
    if missing:
        raise NasError(f"ablation {ablation.name}: no column(s) {', '.join(missing)} in its "
                       f"{ablation.source} (have: {', '.join(map(str, df.columns))})")
    ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} (mean ± std)")
    ax.grid(True, axis="y", alpha=0.3)
    if not len(df):
        ax.set_title(ablation.name)
        ax.text(0.5, 0.5, "no finished cells yet", transform=ax.transAxes, ha="center", color="grey")
        return
    x_factor, rest = factors[0], factors[1:]
    labels = df[x_factor].astype(str)
    categories = list(dict.fromkeys(labels))
    position = {c: i for i, c in enumerate(categories)}
    series = (df[rest].astype(str).apply(lambda r: ", ".join(f"{k}={v}" for k, v in r.items()), axis=1)
              if rest else pd.Series("", index=df.index))
    keys = list(dict.fromkeys(series))
    for k, key in enumerate(keys):
        sel = (series == key).to_numpy()
        xs = labels[sel].map(position).to_numpy(float) + (k - (len(keys) - 1) / 2) * 0.08
        yerr = pd.to_numeric(df[std], errors="coerce")[sel].fillna(0) if std in df.columns else None
        ax.errorbar(xs, pd.to_numeric(df[mean])[sel], yerr=yerr, fmt="o-", capsize=4, markersize=5,
                    linewidth=1.4, label=key or metric)
    ticks = []
    for c in categories:
        macs = pd.to_numeric(df.loc[labels == c, "macs"], errors="coerce").dropna().unique() \
            if "macs" in df.columns else []
        ticks.append(f"{c}\n{macs[0] / 1e6:.2f}M MACs" if len(macs) == 1 else c)
    ax.set_xticks(range(len(categories)), ticks, fontsize=8)
    ax.set_xlim(-0.5, len(categories) - 0.5)
    ax.set_xlabel(x_factor)
    seeds = pd.to_numeric(df["n_seeds"], errors="coerce").dropna() if "n_seeds" in df.columns else []
    over = (f", {int(min(seeds))}" + (f"-{int(max(seeds))}" if max(seeds) != min(seeds) else "")
            + " seeds") if len(seeds) else ""
    ax.set_title(f"{ablation.name}: {len(df)} cells{over}", fontsize=11)
    if rest:
        ax.legend(fontsize=8, framealpha=0.9, loc="best")
