"""`nas ablate`: experiment files, grids, bad input, data.resize, the data fallback, tables
(fast); every shipped experiment end-to-end at the smoke budget on synthetic data with real
Ray and a real SQLite MLflow, fault injection and resume (slow)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from nas.campaign.budget import get_budget
from nas.ablate.experiment import experiment_files, load_experiment
from nas.ablate.report import display_frame, summary_frame
from nas.ablate.grid import build_grid as build_units, check_overrides, resolve_data
from fake_data import fake_cifar10
from nas.cli import main
from nas.data import DataConfig, DataError, Loader, load_data
from nas.errors import NasError, SpecError
from nas.words import RunOverrides, parse_words

REPO = Path(__file__).resolve().parents[1]
SYNTH = ["data.name=synthetic"]


def parsed(words: list[str]) -> RunOverrides:
    """The words as the CLI hands them to the ablation (parsed once)."""
    return RunOverrides(parse_words(words))

EXPECTED_CELLS = {
    "mobilenet_v1_width": ["width=1.0", "width=0.75", "width=0.5", "width=0.25"],
    "mobilenet_v1_resolution": ["resolution=32", "resolution=27", "resolution=23", "resolution=18"],
    "mobilenet_v1_conv": ["block=ds", "block=conv"],
    "mobilenet_v2_proj_act": ["proj_act=linear", "proj_act=relu6", "proj_act=relu"],
    "mobilenet_v2_residual": ["residual=true", "residual=false"],
    "shufflenet_groups": [f"groups={g}" for g in (1, 2, 3, 4, 8)],
    "shufflenet_shuffle": ["groups=3 shuffle=true", "groups=3 shuffle=false",
                           "groups=8 shuffle=true", "groups=8 shuffle=false"],
    "dsc_cnn_act_conv": [f"conv={c} act={a}" for c in ("ds", "plain") for a in ("relu", "relu6", "selu")],
}

# the published numbers each file must carry (paper column), per cell
PAPER = {
    "mobilenet_v1_width": {"width=1.0": ("70.6", "569M"), "width=0.75": ("68.4", "325M"),
                           "width=0.5": ("63.7", "149M"), "width=0.25": ("50.6", "41M")},
    "mobilenet_v1_resolution": {"resolution=27": ("69.1", "418M"), "resolution=18": ("64.4", "186M")},
    "mobilenet_v1_conv": {"block=conv": ("71.7", "4866M", "29.3M"), "block=ds": ("70.6", "569M", "4.2M")},
    "shufflenet_groups": {"groups=1": ("33.6",), "groups=2": ("32.7",), "groups=3": ("32.6",),
                          "groups=4": ("32.8",), "groups=8": ("32.4",)},
    "shufflenet_shuffle": {"groups=3 shuffle=true": ("32.6",), "groups=3 shuffle=false": ("34.5",),
                           "groups=8 shuffle=true": ("32.4",), "groups=8 shuffle=false": ("37.6",)},
}


# ----------------------------------------------------------------------------- files and grids


def test_every_experiment_parses_with_its_grid_and_paper_numbers():
    files = {p.stem: p for p in experiment_files()}
    assert set(files) == set(EXPECTED_CELLS)
    for name, path in files.items():
        exp = load_experiment(path)
        assert exp.name == name and exp.paper is not None and exp.paper.source
        assert [c.label for c in exp.cells()] == EXPECTED_CELLS[name]
        assert len(exp.seeds) >= 2
        for label, numbers in PAPER.get(name, {}).items():
            assert all(n in exp.paper_for(label) for n in numbers), (name, label)
    for name in ("shufflenet_groups", "shufflenet_shuffle"):  # the papers report error, not accuracy
        assert "ImageNet top-1 classification error" in load_experiment(name).paper.metric


def test_every_cell_builds_at_the_ci_shapes():
    """All cells of all files are valid nets on the synthetic stand-in (1x28x28 for the 1-channel
    file), and the factor really changes the net it says it changes."""
    smoke = get_budget("ablation", "smoke")
    counts = {}
    for path in experiment_files():
        exp = load_experiment(path)
        data = resolve_data(exp, smoke, parsed(SYNTH))
        units = build_units(exp, smoke, parsed(SYNTH), exp.seeds[:1], data)
        assert [u.error for u in units if not u.valid] == []
        counts[exp.name] = {u.cell.label: (u.macs, u.params, u.spec) for u in units}
    width = counts["mobilenet_v1_width"]
    assert width["width=1.0"][0] > width["width=0.5"][0] > width["width=0.25"][0]
    res = counts["mobilenet_v1_resolution"]
    macs = [res[f"resolution={r}"][0] for r in (32, 27, 23, 18)]
    assert macs == sorted(macs, reverse=True) and len({res[k][1] for k in res}) == 1
    assert res["resolution=18"][2].input.resolution == 18
    conv = counts["mobilenet_v1_conv"]
    assert conv["block=conv"][0] > 5 * conv["block=ds"][0]
    proj = counts["mobilenet_v2_proj_act"]
    assert {proj[k][2].stages[1].proj_act for k in proj} == {"linear", "relu6", "relu"}
    assert {s.residual for s in counts["mobilenet_v2_residual"]["residual=false"][2].stages} == {False}
    shuffle = counts["shufflenet_shuffle"]
    assert shuffle["groups=8 shuffle=false"][2].stages[0].shuffle is False
    assert shuffle["groups=8 shuffle=false"][2].stages[0].groups == 8
    small = counts["dsc_cnn_act_conv"]
    assert small["conv=ds act=selu"][2].input.channels == 1
    assert small["conv=ds act=selu"][2].act == "selu"
    assert small["conv=plain act=relu"][0] > 5 * small["conv=ds act=relu"][0]


BAD_FILES = {
    "unknown_key": ("name: x\nbase: {preset: mobilenet_v1}\nfactor: []\n", "factor is not a field"),
    "malformed": ("name: x\nbase: {preset: mobilenet_v1\n", "malformed YAML"),
    "seeds_type": ("name: x\nbase: {preset: mobilenet_v1}\nfactors: [{name: width, set: width, values: [1.0, 0.5]}]\n"
                   "seeds: [0, one]\n", "seeds[1] must be an integer"),
    "factor_key": ("name: x\nbase: {preset: mobilenet_v1}\nfactors: [{name: width, sett: width, values: [1.0]}]\n",
                   "factors[0].sett is not a field"),
    "no_set": ("name: x\nbase: {preset: mobilenet_v1}\nfactors: [{name: width, values: [1.0, 0.5]}]\n",
               "factors[0].set is required"),
    "duplicate": ("name: x\nbase: {preset: mobilenet_v1}\nfactors: [{name: width, set: width, values: [0.5, 0.5]}]\n",
                  "factors[0].values lists 0.5 more than once"),
    "paper_cell": ("name: x\nbase: {preset: mobilenet_v1}\nfactors: [{name: width, set: width, values: [1.0]}]\n"
                   "paper: {source: s, table: t, cells: {width=2.0: '1%'}}\n", "paper.cells.'width=2.0'"),
    "three_factors": ("name: x\nbase: {preset: mobilenet_v1}\nfactors: [{name: a, set: width, values: [1]},"
                      " {name: b, set: train.lr, values: [1]}, {name: c, set: train.epochs, values: [1]}]\n",
                      "one or two factors"),
    "no_base_net": ("name: x\nbase: {}\nfactors: [{name: width, set: width, values: [1.0]}]\n",
                    "preset: NAME or spec: PATH"),
    "budget": ("name: x\nbase: {preset: mobilenet_v1}\nfactors: [{name: width, set: width, values: [1.0]}]\n"
               "budget: huge\n", "budget='huge' must be one of"),
    "not_mapping": ("- 1\n- 2\n", "an experiment file is a mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_fail_with_one_line_naming_the_field(tmp_path, case):
    text, expected = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_experiment(path)
    message = str(err.value)
    assert "\n" not in message and expected in message and str(path) in message


def test_cli_errors_are_one_line_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_FILES["unknown_key"][0])
    assert main(["ablate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "did you mean 'factors'" in err
    assert main(["ablate", "no_such_experiment"]) == 2
    assert "mobilenet_v1_width" in capsys.readouterr().err
    assert main(["ablate", "mobilenet_v1_width", "--budget", "smoke", "width=0.5"]) == 2
    assert "width= cannot be overridden" in capsys.readouterr().err
    assert main(["ablate", "mobilenet_v1_width", "--budget", "smoke", "train.lrr=0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "lrr" in err and "\n" not in err
    assert main(["ablate", "mobilenet_v1_width", "--resume"]) == 2
    assert "--resume needs --name" in capsys.readouterr().err


def test_overrides_may_not_flatten_the_grid():
    exp = load_experiment("shufflenet_shuffle")
    for word in ("preset=shufflenet_v1_g3", "model.stages.*.shuffle=true", "train.seed=3"):
        with pytest.raises(NasError):
            check_overrides(exp, parsed([word]))
    check_overrides(exp, parsed(["train.lr=0.05", "data.root=/x"]))


def test_invalid_factor_value_is_a_one_line_cell_error_before_training(tmp_path):
    path = tmp_path / "groups.yaml"
    path.write_text("name: bad_groups\nbase: {preset: shufflenet_v1_g3}\n"
                    "factors: [{name: groups, set: model.stages.*.groups, values: [3, 5]}]\n")
    exp = load_experiment(path)
    smoke = get_budget("ablation", "smoke")
    units = build_units(exp, smoke, parsed(SYNTH), (0, 1), resolve_data(exp, smoke, parsed(SYNTH)))
    by_label = {u.key: u for u in units}
    assert by_label["groups=3@0"].valid and by_label["groups=3@1"].valid
    bad = by_label["groups=5@1"]
    assert not bad.valid and "does not divide" in bad.error and "\n" not in bad.error


# ----------------------------------------------------------------------------- data


def test_data_resize_once_on_load():
    base = DataConfig(name="synthetic", val_size=40, synthetic_train=200, synthetic_test=50)
    full = load_data(base)
    small = load_data(DataConfig(**{**base.__dict__, "resize": 20}))
    assert small.resolution == 20 and small.train.images.shape[1:] == (3, 20, 20)
    assert small.train.images.dtype == torch.uint8 and small.test.images.shape == (50, 3, 20, 20)
    assert torch.equal(small.train.labels, full.train.labels) and small.mean == full.mean
    ref = F.interpolate(full.val.images.float(), size=(20, 20), mode="bilinear", align_corners=False,
                        antialias=True).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(small.val.images, ref)
    same = load_data(DataConfig(**{**base.__dict__, "resize": 32}))
    assert torch.equal(same.train.images, full.train.images)
    x, _ = next(iter(Loader(small.train, 16, mean=small.mean, std=small.std, train=True,
                            cfg=DataConfig(name="synthetic"), generator=torch.Generator().manual_seed(0))))
    assert x.shape == (16, 3, 20, 20)
    with pytest.raises(DataError, match="data.resize=0"):
        DataConfig(name="synthetic", resize=0)


def test_one_channel_experiment_falls_back_to_grayscale_cifar(tmp_path):
    fake_cifar10(tmp_path)
    exp = load_experiment("dsc_cnn_act_conv")
    smoke = get_budget("ablation", "smoke")
    words = parsed([f"data.root={tmp_path}", "data.download=false"])
    data = resolve_data(exp, smoke, words)
    assert data.note == "cifar10 (grayscale) (fallback: fashion_mnist, mnist not found)"
    bundle = next(iter(data.bundles.values()))
    assert bundle.channels == 1 and bundle.resolution == 32
    units = build_units(exp, smoke, words, (0,), data)
    assert all(u.valid and u.spec.input.channels == 1 for u in units)
    # naming the data set on the command line turns the fallback off
    with pytest.raises(DataError, match="MNIST not found"):
        resolve_data(exp, smoke, RunOverrides({**words.values, "data.name": "mnist"}))


# ----------------------------------------------------------------------------- tables


def test_summary_is_mean_and_std_over_completed_seeds():
    exp = load_experiment("mobilenet_v2_residual")
    rows = []
    for cell, accs in (("residual=true", (0.5, 0.7)), ("residual=false", (0.4, None))):
        for seed, acc in enumerate(accs):
            rows.append({"cell": cell, "residual": cell.split("=")[1], "seed": seed, "macs": 8.8e7,
                         "params": 2.2e6, "val_acc": acc, "test_acc": acc, "epochs": 1,
                         "status": "COMPLETED" if acc is not None else "FAILED",
                         "error": "" if acc is not None else "RuntimeError: boom"})
    summary = summary_frame(exp, pd.DataFrame(rows), "synthetic")
    on, off = summary.iloc[0], summary.iloc[1]
    assert on.val_acc_mean == pytest.approx(0.6) and on.val_acc_std == pytest.approx(math.sqrt(0.02))
    assert on.n_seeds == 2 and on.status == "COMPLETED" and "higher" in on.paper
    assert off.n_seeds == 1 and off.status == "PARTIAL" and math.isnan(off.val_acc_std)
    table = display_frame(exp, summary, 2)
    assert list(table.columns) == ["residual", "MACs", "params", "val acc %", "test acc %", "seeds",
                                   "paper (Fig. 6b)"]
    assert table["val acc %"].tolist() == ["60.0 ± 14.1", "40.0"]
    assert table["seeds"].tolist() == ["2/2", "1/2"]


# ----------------------------------------------------------------------------- end to end (Ray)


def _runs(workdir: Path):
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nas")
    return client, client.search_runs([exp.experiment_id], max_results=5000)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("NAS_FAIL_CELLS", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_every_experiment_runs_at_smoke_budget_end_to_end(workdir, capsys):
    """All shipped files (and one with an invalid level) in one process: one Ray, one MLflow."""
    import ray

    from nas.ablate.driver import ablate
    from nas.ablate.plan import AblatePlan
    from nas.campaign.settings import make_settings

    bad = workdir / "bad_groups.yaml"
    bad.write_text("name: bad_groups\nbase: {preset: shufflenet_v1_g3}\n"
                   "factors: [{name: groups, set: model.stages.*.groups, values: [3, 5]}]\n")
    paths = [*experiment_files(), bad]
    try:
        outcomes = {}
        for path in paths:
            print(path.stem, flush=True)
            outcomes[path.stem] = ablate(make_settings(AblatePlan, SYNTH, experiment=str(path), seeds=2,
                                                       budget="smoke", name=path.stem, progress=False))
    finally:
        ray.shutdown()
    printed = capsys.readouterr().out
    assert "invalid cell groups=5: " in printed
    client, runs = _runs(workdir)
    parents = {r.data.tags["nas.ablation"]: r for r in runs if r.data.tags.get("nas.kind") == "ablation"}
    children = [r for r in runs if r.data.tags.get("nas.kind") == "ablation_cell"]
    assert set(parents) == {p.stem for p in paths}
    for name, out in outcomes.items():
        exp = load_experiment(workdir / "bad_groups.yaml" if name == "bad_groups" else name)
        labels = [c.label for c in exp.cells()]
        summary = pd.read_csv(out.folder / "summary.csv")
        results = pd.read_csv(out.folder / "results.csv")
        assert summary["cell"].tolist() == labels and len(results) == 2 * len(labels)
        for f in exp.factors:
            assert f.name in summary.columns and f.name in results.columns
        assert {"macs", "params", "val_acc_mean", "val_acc_std", "test_acc_mean", "test_acc_std",
                "n_seeds", "paper"} <= set(summary.columns)
        valid = summary[summary["status"] != "INFEASIBLE"]
        assert (valid["status"] == "COMPLETED").all() and (valid["n_seeds"] == 2).all(), name
        assert valid["test_acc_std"].between(0, 1).all() and valid["val_acc_mean"].between(0, 1).all()
        assert out.report.startswith(exp.name) and "data: synthetic" in out.report
        assert "±" in out.report or name == "bad_groups"
        if exp.paper:
            assert f"paper ({exp.paper.table})" in out.report and exp.paper.source in out.report
        parent = parents[name]
        assert parent.info.run_name == exp.name and parent.info.status == "FINISHED"
        assert parent.data.tags["nas.factors"] == ",".join(f.name for f in exp.factors)
        assert {"results.csv", "summary.csv"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
        mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert len(mine) == len(results)
        for child in mine:
            assert child.data.tags["nas.ablation"] == name and child.data.tags["nas.cell"] in labels
            assert {f"factor.{f.name}" for f in exp.factors} | {"seed"} <= set(child.data.params)
            if child.data.tags["nas.status"] == "COMPLETED":
                assert {"macs", "params", "val_acc", "test_acc", "train_loss"} <= set(child.data.metrics)
                assert "train.epochs" in child.data.params and "data.name" in child.data.params
    invalid = outcomes["bad_groups"].summary.set_index("cell").loc["groups=5"]
    assert invalid["status"] == "INFEASIBLE" and "does not divide" in invalid["error"]
    small = pd.read_csv(outcomes["dsc_cnn_act_conv"].folder / "summary.csv")
    assert len(small) == 6 and (small["data"] == "synthetic").all()


def nas_ablate(workdir: Path, *args: str, env: dict | None = None, timeout: int = 600):
    cmd = [sys.executable, "-m", "nas.cli", "ablate", "dsc_cnn_act_conv", "--budget", "smoke",
           "--no-progress", *args, *SYNTH]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "NAS_FAIL_CELLS": "", **(env or {})})


@pytest.mark.slow
def test_failed_cell_recorded_and_resume_skips_finished_cells(workdir):
    done = nas_ablate(workdir, "--seeds", "1", "--name", "r1", env={"NAS_FAIL_CELLS": "conv=ds act=selu"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "failed conv=ds act=selu: RuntimeError: injected fault in cell conv=ds act=selu seed 0" in done.stdout
    folder = workdir / "ablations" / "r1"
    first = pd.read_csv(folder / "results.csv", keep_default_na=False)
    assert len(first) == 6 and (first["status"] == "COMPLETED").sum() == 5
    assert first.set_index("cell").loc["conv=ds act=selu", "status"] == "FAILED"

    # two seeds now: the six seed-0 units (the FAILED one too) are not run again
    done = nas_ablate(workdir, "--seeds", "2", "--name", "r1", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 to run, 6 done or invalid" in done.stdout
    second = pd.read_csv(folder / "results.csv", keep_default_na=False)
    assert len(second) == 12
    seed0 = second[second["seed"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(seed0, first)  # same runs, same numbers: not re-run
    summary = pd.read_csv(folder / "summary.csv").set_index("cell")
    assert summary.loc["conv=ds act=selu", "n_seeds"] == 1 and summary.loc["conv=ds act=relu", "n_seeds"] == 2
    assert "1/2" in done.stdout and "2/2" in done.stdout

    done = nas_ablate(workdir, "--seeds", "2", "--name", "r1", "--resume", "--retry-failed")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 to run" in done.stdout
    third = pd.read_csv(folder / "results.csv")
    assert (third["status"] == "COMPLETED").all() and len(third) == 12
    client, runs = _runs(workdir)
    parents = [r for r in runs if r.data.tags.get("nas.kind") == "ablation"]
    children = [r for r in runs if r.data.tags.get("nas.kind") == "ablation_cell"]
    assert len(parents) == 1 and len(children) == 12  # the retried failure's old run is deleted
    assert {c.data.tags["nas.status"] for c in children} == {"COMPLETED"}
    state = json.loads((folder / "state.json").read_text())
    assert {u["run_id"] for u in state["points"].values()} == {c.info.run_id for c in children}


@pytest.mark.slow
def test_resume_after_kill_runs_only_what_was_left(workdir):
    """kill -9 mid-run: --resume closes nothing twice, reuses the killed units' runs, and ends
    with one COMPLETED child per cell and seed."""
    import signal
    import time

    cmd = [sys.executable, "-m", "nas.cli", "ablate", "dsc_cnn_act_conv", "--budget", "smoke",
           "--no-progress", "--name", "k1", "--concurrency", "1", *SYNTH]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "NAS_FAIL_CELLS": ""})
    state_file = workdir / "ablations" / "k1" / "state.json"
    deadline = time.time() + 300
    finished = []
    while time.time() < deadline and len(finished) < 2:
        time.sleep(0.5)
        if state_file.exists():
            try:
                units = json.loads(state_file.read_text()).get("points", {})  # none before the first cell starts
            except ValueError:
                continue
            finished = [k for k, u in units.items() if u["status"] == "COMPLETED"]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(finished) < 12, "the run ended before it could be killed"
    done = nas_ablate(workdir, "--name", "k1", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    results = pd.read_csv(workdir / "ablations" / "k1" / "results.csv")
    assert len(results) == 12 and (results["status"] == "COMPLETED").all()
    _, runs = _runs(workdir)
    children = [r for r in runs if r.data.tags.get("nas.kind") == "ablation_cell"]
    assert len(children) == 12 and all(c.info.status == "FINISHED" for c in children)
    parent = [r for r in runs if r.data.tags.get("nas.kind") == "ablation"][0]
    assert parent.info.status == "FINISHED"


@pytest.mark.slow
def test_a_child_run_the_state_missed_is_adopted_on_resume(workdir):
    """A kill between a child run's creation and the state file leaves a run the state does not
    know: the resume reopens it for its point instead of creating a second one."""
    done = nas_ablate(workdir, "--seeds", "1", "--name", "o1")
    assert done.returncode == 0, done.stderr[-3000:]
    client, runs = _runs(workdir)
    parent = [r for r in runs if r.data.tags.get("nas.kind") == "ablation"][0]
    orphan = client.create_run(parent.info.experiment_id, run_name="orphan", tags={
        "mlflow.parentRunId": parent.info.run_id, "nas.kind": "ablation_cell", "nas.ablation": "o1",
        "nas.cell": "conv=ds act=relu", "nas.point": "conv=ds act=relu@1"}).info.run_id
    done = nas_ablate(workdir, "--seeds", "2", "--name", "o1", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    _, runs = _runs(workdir)
    children = [r for r in runs if r.data.tags.get("nas.kind") == "ablation_cell"]
    assert len(children) == 12 and all(c.info.status == "FINISHED" for c in children)
    state = json.loads((workdir / "ablations" / "o1" / "state.json").read_text())
    assert state["points"]["conv=ds act=relu@1"]["run_id"] == orphan
