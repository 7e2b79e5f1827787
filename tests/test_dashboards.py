"""Dashboards: nas.dashboard on hand-logged stores (fast), then the notebooks run headless and
`nas pareto` against a tiny real search and real `nas ablate` runs (slow)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas import dashboard
from nas.pareto_plot import format_front
from nas.cli import main
from nas.pareto import pareto_mask
from nas.tracking import Tracker

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "dashboards"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- helpers

def assert_png(path: Path, min_width: int, min_height: int) -> np.ndarray:
    """A real, non-blank PNG of at least that size; returns its pixels."""
    from matplotlib import image

    path = Path(path)
    assert path.is_file(), f"{path} was not written"
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    assert width >= min_width and height >= min_height, (path, width, height)
    assert width <= 4000 and height <= 4000, (path, width, height)
    assert path.stat().st_size > 20_000, f"{path} is suspiciously small"
    pixels = image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.05, f"{path} is (nearly) blank"
    return pixels


def run_notebook(name: str, cwd: Path, **params) -> dict:
    """Execute dashboards/NAME.ipynb with its kernel in `cwd`, papermill-style: a cell assigning
    `params` goes right after the cell tagged `parameters`. A failing cell raises."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    if params:
        cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
        cell.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(at + 1, cell)
    cwd.mkdir(parents=True, exist_ok=True)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    nbformat.write(nb, cwd / f"{name}.executed.ipynb")  # kept for a look when a test fails
    return nb


def outputs(nb, mime: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if mime in o.get("data", {})]


def front_from_csv(trials_csv: Path) -> pd.DataFrame:
    """The search's front recomputed from its trials.csv (objectives val_acc, macs)."""
    df = pd.read_csv(trials_csv)
    completed = df[df.status == "COMPLETED"]
    mask = pareto_mask(completed[["val_acc", "macs"]].to_numpy(float), ["max", "min"])
    return completed[mask].sort_values("macs")


def assert_same_front(table: pd.DataFrame, trials_csv: Path) -> None:
    expected = front_from_csv(trials_csv)
    assert list(table["trial"]) == list(expected["trial"])
    for col in ("macs", "params", "val_acc"):
        np.testing.assert_allclose(table[col].to_numpy(float), expected[col].to_numpy(float), rtol=1e-12)
    assert set(expected["trial"]) == set(pd.read_csv(trials_csv).query("pareto").trial)


@pytest.fixture
def no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


# ----------------------------------------------------------------------------- hand-logged stores (fast)

TRIALS = [  # trial, status, macs, params, val_acc, reference
    (0, "COMPLETED", 3.0e6, 60e3, 0.30, "ShuffleNet 0.25x g=3"),
    (1, "COMPLETED", 10e6, 240e3, 0.45, "ShuffleNet 0.5x g=3"),
    (2, "PRUNED", 40e6, 900e3, 0.20, "ShuffleNet 1x g=3"),
    (3, "COMPLETED", 20e6, 500e3, 0.40, ""),   # dominated by trial 1
    (4, "COMPLETED", 30e6, 800e3, 0.55, ""),
    (5, "INFEASIBLE", 90e6, 2e6, None, ""),
]


def log_search(uri: str, folder: Path, name: str, trials=TRIALS) -> str:
    """A search per the MLflow layout contract, logged by hand; returns the parent run id."""
    parent = Tracker("nas", name, uri=uri)
    parent.set_tags({"nas.kind": "search", "nas.space": "shufflenet", "nas.objectives": "val_acc,macs"})
    rows = []
    for number, status, macs, params, acc, reference in trials:
        child = Tracker("nas", f"{name}-t{number:03d}", uri=uri, parent_run_id=parent.run_id,
                        tags={"nas.kind": "trial", "nas.trial": str(number), "nas.search": name,
                              "nas.status": status})
        child.log_params({"choice.groups": 3, "choice.width": 0.5, "choice.shuffle": True})
        child.log_metrics({"macs": macs, "params": params})
        if acc is not None:
            child.log_metrics({"val_acc": acc / 2, "train_loss": 2.0}, step=1)
            child.log_metrics({"val_acc": acc, "train_loss": 1.0}, step=2)
        child.end()
        rows.append({"trial": number, "status": status, "macs": macs, "params": params,
                     "val_acc": acc, "reference": reference, "mlflow_run_id": child.run_id})
    retrain = Tracker("nas", f"{name}-retrain-t004", uri=uri, parent_run_id=parent.run_id,
                      tags={"nas.kind": "retrain", "nas.trial": "4"})
    retrain.log_metrics({"val_acc": 0.9, "macs": 30e6})
    retrain.end()
    df = pd.DataFrame(rows)
    completed = df[df.status == "COMPLETED"]
    df["pareto"] = df.trial.isin(completed.trial[pareto_mask(completed[["val_acc", "macs"]].to_numpy(float),
                                                            ["max", "min"])])
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "trials.csv", index=False)
    parent.log_artifact(folder / "trials.csv")
    parent.end()
    return parent.run_id


def test_search_from_a_hand_logged_store(tmp_path, monkeypatch, no_env_uri):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = log_search(uri, tmp_path / "fake", "fake")
    log_search(uri, tmp_path / "later", "later", TRIALS[:2])

    latest = dashboard.load_search(uri, "nas")
    assert latest.name == "later" and len(latest.trials) == 2
    search = dashboard.load_search(uri, "nas", "fake")
    assert search.run_id == first and [o.name for o in search.objectives] == ["val_acc", "macs"]
    t = search.trials.set_index("trial")
    assert list(t.index) == [0, 1, 2, 3, 4, 5]  # the retrain run is not a trial
    assert list(t.status) == [s for _, s, *_ in TRIALS]
    assert t.loc[4, "val_acc"] == 0.55  # the last epoch's value
    assert np.isnan(t.loc[5, "val_acc"]) and t.loc[5, "macs"] == 90e6
    assert list(t.reference[:3]) == ["ShuffleNet 0.25x g=3", "ShuffleNet 0.5x g=3", "ShuffleNet 1x g=3"]
    assert t.loc[0, "choice.width"] == 0.5 and t.loc[0, "choice.shuffle"] == "True"
    assert "MLFLOW_TRACKING_URI" not in os.environ  # reading did not redirect later writers

    front = dashboard.front_table(search)
    assert_same_front(front, tmp_path / "fake" / "trials.csv")
    assert list(front.trial) == [0, 1, 4]
    assert "trial" in format_front(front) and "ShuffleNet 0.25x g=3" in format_front(front)

    pixels = assert_png(dashboard.pareto_figure(search, tmp_path / "p.png"), 1600, 500)
    assert pixels.shape[1] == 2 * pixels.shape[0] * 1.5  # two 7.5 x 5 in panels side by side


def test_nas_pareto_one_line_errors(tmp_path, monkeypatch, capsys, no_env_uri):
    monkeypatch.chdir(tmp_path)
    assert main(["pareto", "--experiment", "nas"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: MLflow store") and "does not exist" in err and "\n" not in err
    assert not (tmp_path / "mlflow.db").exists()  # reading never creates a store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Tracker("nas", "a plain run", uri=uri).end()
    assert main(["pareto", "--experiment", "nas"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no search runs in experiment 'nas'") and "\n" not in err
    assert main(["pareto", "--experiment", "elsewhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no MLflow experiment 'elsewhere'") and "nas" in err
    log_search(uri, tmp_path / "fake", "fake")
    assert main(["pareto", "--experiment", "nas", "--search", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "error: no search called 'nope' in experiment 'nas'; searches: fake"
    assert main(["pareto", "--experiment", "nas", "--out", "f.png"]) == 0
    out = capsys.readouterr().out
    assert "search fake" in out and "figure: f.png" in out
    assert_png(tmp_path / "f.png", 1600, 500)


def test_ablation_from_children_while_no_summary_yet(tmp_path, monkeypatch, no_env_uri):
    """An ablation still running has no summary.csv: the cells come from its child runs."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = Tracker("nas", "act", uri=uri, tags={"nas.kind": "ablation", "nas.ablation": "act-1",
                                                 "nas.experiment": "act", "nas.factors": "conv,act"})
    accs = {("ds", "relu"): (0.5, 0.6), ("ds", "selu"): (0.4, 0.44), ("plain", "relu"): (0.7, 0.7)}
    for (conv, act), values in accs.items():
        for seed, acc in enumerate(values):
            child = Tracker("nas", f"act conv={conv} act={act} seed={seed}", uri=uri,
                            parent_run_id=parent.run_id,
                            tags={"nas.kind": "ablation_cell", "nas.ablation": "act-1",
                                  "nas.cell": f"conv={conv} act={act}", "nas.status": "COMPLETED"})
            child.log_params({"factor.conv": conv, "factor.act": act, "seed": seed})
            child.log_metrics({"macs": 4e6 if conv == "ds" else 29e6, "params": 1e5,
                               "val_acc": acc, "test_acc": acc - 0.1})
            child.end()
    failed = Tracker("nas", "act conv=plain act=selu seed=0", uri=uri, parent_run_id=parent.run_id,
                     tags={"nas.kind": "ablation_cell", "nas.ablation": "act-1",
                           "nas.cell": "conv=plain act=selu", "nas.status": "FAILED"})
    failed.end("FAILED", "boom")

    [ablation] = dashboard.load_ablations(uri, "nas")
    assert (ablation.name, ablation.run_name, ablation.factors, ablation.source) == \
        ("act", "act-1", ("conv", "act"), "children")
    s = ablation.summary
    assert list(s.cell) == ["conv=ds act=relu", "conv=ds act=selu", "conv=plain act=relu"]
    np.testing.assert_allclose(s.val_acc_mean, [0.55, 0.42, 0.7])
    np.testing.assert_allclose(s.val_acc_std, [np.std([0.5, 0.6], ddof=1), np.std([0.4, 0.44], ddof=1), 0])
    assert list(s.n_seeds) == [2, 2, 2]
    assert_png(dashboard.ablation_figure([ablation], tmp_path / "a.png"), 700, 450)
    with pytest.raises(dashboard.NasError, match="no ablation 'nope'"):
        dashboard.load_ablations(uri, "nas", ["nope"])


def test_the_reading_side_names_mlflow_things_through_the_layout():
    """Tag, param and metric names come from nas.mlflow_layout, and reading never switches
    MLflow's global tracking URI (an MlflowClient per store)."""
    import inspect
    import re

    from nas import pareto, pareto_plot

    source = inspect.getsource(dashboard) + inspect.getsource(pareto) + inspect.getsource(pareto_plot)
    literals = re.findall(r"""["']((?:nas|mlflow)\.[A-Za-z_.]+|choice\.|factor\.|COMPLETED)["']""", source)
    assert literals == []
    assert "set_tracking_uri(" not in source and "mlflow.search_runs(" not in source


# ----------------------------------------------------------------------------- real runs (slow)

@pytest.mark.slow
def test_pareto_notebook_headless(search_store, no_env_uri):
    """The notebook as a user runs it: kernel in dashboards/, default tracking URI (the
    repository's ./mlflow.db, found from dashboards/), the latest search."""
    cwd = search_store / "dashboards"
    nb = run_notebook("pareto", cwd)
    png = cwd / "out" / "pareto-tiny.png"
    assert_png(png, 1600, 500)
    assert outputs(nb, "image/png"), "the notebook did not display the figure"
    assert outputs(nb, "text/html"), "the notebook did not display the front table"
    front = pd.read_csv(cwd / "out" / "front-tiny.csv")
    assert_same_front(front, search_store / "searches" / "tiny" / "trials.csv")
    # the paper nets are labelled where the trials.csv says so
    refs = pd.read_csv(search_store / "searches" / "tiny" / "trials.csv").set_index("trial").reference
    assert list(front.reference.fillna("")) == [r if isinstance(r, str) else "" for r in refs[front.trial]]


@pytest.mark.slow
def test_nas_pareto_draws_the_notebook_figure(search_store, tmp_path, no_env_uri):
    from matplotlib import image

    cmd = [sys.executable, "-m", "nas.cli", "pareto", "--experiment", "nas"]
    done = subprocess.run([*cmd, "--out", str(tmp_path / "front.png")], cwd=search_store,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.strip() == ""
    expected = front_from_csv(search_store / "searches" / "tiny" / "trials.csv")
    lines = done.stdout.splitlines()
    table = lines[lines.index(next(l for l in lines if l.startswith("trial"))) + 2:]
    assert [int(l.split()[0]) for l in table if l.strip() and l.split()[0].isdigit()] == list(expected.trial)
    pixels = assert_png(tmp_path / "front.png", 1600, 500)
    search = dashboard.load_search(f"sqlite:///{search_store / 'mlflow.db'}", "nas", "tiny")
    np.testing.assert_array_equal(pixels, image.imread(dashboard.pareto_figure(search, tmp_path / "lib.png")))

    named = subprocess.run([*cmd, "--search", "tiny"], cwd=search_store, capture_output=True, text=True,
                           timeout=300)
    assert named.returncode == 0 and (search_store / "pareto-tiny.png").is_file(), named.stderr[-2000:]
    missing = subprocess.run([*cmd, "--search", "nope"], cwd=search_store, capture_output=True,
                             text=True, timeout=300)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: no search called 'nope' in experiment 'nas'; searches: tiny"


ABLATIONS = {"shufflenet_shuffle": 4, "mobilenet_v1_width": 4}  # experiment -> cells


@pytest.fixture(scope="module")
def ablation_store(tmp_path_factory) -> Path:
    """Real `nas ablate` runs (smoke budget, 2 seeds, synthetic data) into a fresh store."""
    workdir = tmp_path_factory.mktemp("ablation_store")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "NAS_FAIL_CELLS")}
    for name in ABLATIONS:
        done = subprocess.run([sys.executable, "-m", "nas.cli", "ablate", str(REPO / "experiments" / f"{name}.yaml"),
                               "--budget", "smoke", "--seeds", "2", "--name", name, "--no-progress",
                               "data.name=synthetic"], cwd=workdir, capture_output=True, text=True,
                              timeout=900, env=env)
        if done.returncode:
            pytest.fail(f"nas ablate {name} failed ({done.returncode}): {done.stderr[-3000:]}")
    return workdir


@pytest.mark.slow
def test_ablations_notebook_headless(ablation_store, tmp_path, no_env_uri):
    uri = f"sqlite:///{ablation_store / 'mlflow.db'}"
    out = tmp_path / "out"
    nb = run_notebook("ablations", tmp_path, TRACKING_URI=uri, OUT_DIR=str(out))
    pixels = assert_png(out / "ablations.png", 1500, 500)
    assert pixels.shape[1] > 2.5 * pixels.shape[0]  # two panels side by side
    assert len(outputs(nb, "text/html")) == len(ABLATIONS), "one table per ablation"
    for name, cells in ABLATIONS.items():
        written = pd.read_csv(ablation_store / "ablations" / name / "summary.csv")
        shown = pd.read_csv(out / f"summary-{name}.csv")
        assert len(shown) == cells and list(shown.cell) == list(written.cell)
        cols = ["val_acc_mean", "val_acc_std", "test_acc_mean", "test_acc_std", "n_seeds"]
        pd.testing.assert_frame_equal(shown[cols], written[cols])
        assert (shown.n_seeds == 2).all()
    # the same cells rebuilt from the child runs (the path used while an ablation still runs)
    for ablation in dashboard.load_ablations(uri):
        assert ablation.source == "summary.csv"
        rebuilt = dashboard.cells_from_children(uri, ablation.run_id, ablation.factors)
        assert list(rebuilt.cell) == list(ablation.summary.cell)
        for factor in ablation.factors:
            assert list(rebuilt[factor]) == list(ablation.summary[factor])
        for col in ("val_acc_mean", "val_acc_std", "test_acc_mean", "test_acc_std", "macs"):
            np.testing.assert_allclose(rebuilt[col].to_numpy(float), ablation.summary[col].to_numpy(float))
