"""One owner for configuration: the same `key=value` words mean the same in `nas run`,
`nas search` (trials, front files, --retrain-top) and `nas ablate`; a word a sub-command cannot
honour is refused with one line naming it; options and words mix in any order."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import yaml

from nas.ablate.experiment import load_experiment
from nas.ablate.grid import build_grid, resolve_data
from nas.campaign.budget import get_budget
from nas.cli import main, parse
from nas.config import load_run_config, spec_overrides
from nas.words import RunOverrides, parse_words

SYNTH = ["data.name=synthetic", "data.val_size=64", "data.synthetic_train=320",
         "data.synthetic_test=64", "train.batch_size=64"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_options_and_words_mix_in_any_order_for_every_sub_command():
    args = parse(["search", "--space", "x", "a=1", "--trials", "3", "b=2"])
    assert args.space == "x" and args.trials == 3 and args.words == ["a=1", "b=2"]
    args = parse(["ablate", "shufflenet_shuffle", "train.lr=0.1", "--seeds", "2", "data.root=/d"])
    assert args.words == ["shufflenet_shuffle", "train.lr=0.1", "data.root=/d"] and args.seeds == 2
    args = parse(["run", "preset=dsc_cnn", "--show-config", "train.epochs=2"])
    assert args.show_config and args.words == ["preset=dsc_cnn", "train.epochs=2"]
    args = parse(["summary", "preset=dsc_cnn", "--json", "width=0.5"])
    assert args.json and args.words == ["preset=dsc_cnn", "width=0.5"]


def test_ablate_list_prints_no_warning(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["ablate", "--list"]) == 0
    out = capsys.readouterr()
    assert "shufflenet_shuffle" in out.out and "Warning" not in out.err


def test_one_function_turns_the_run_config_into_spec_overrides():
    cfg = load_run_config(["model.head.dropout=0.3", "width=0.5", "model.stages.*.kernel=5"])
    assert spec_overrides(cfg) == {"head.dropout": 0.3, "stages.*.kernel": 5, "width": 0.5}


@pytest.mark.parametrize("word, choice", [("width=0.5", "width"), ("model.stages.*.groups=2", "groups"),
                                          ("model.stages.1.groups=2", "groups")])
def test_search_refuses_a_word_its_space_chooses(workdir, capsys, word, choice):
    assert main(["search", "--space", "shufflenet", "--budget", "smoke", word, *SYNTH]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert f"{word.partition('=')[0]}= cannot be set" in err and repr(choice) in err
    assert not (workdir / "searches").exists()  # refused before anything started


def test_ablation_honours_spec_words_and_refuses_its_factors():
    exp = load_experiment("shufflenet_shuffle")
    smoke = get_budget("ablation", "smoke")
    words = RunOverrides(parse_words([*SYNTH, "model.head.dropout=0.3"]))
    grid = build_grid(exp, smoke, words, (0,), resolve_data(exp, smoke, words))
    assert grid and all(p.valid and p.spec.head.dropout == 0.3 for p in grid)
    assert main(["ablate", "shufflenet_shuffle", "--budget", "smoke", "model.stages.*.shuffle=false"]) == 2


@pytest.mark.slow
def test_search_trials_front_and_retrain_all_get_the_words(workdir):
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", "shufflenet", "--budget", "smoke",
           "--no-progress", "--no-references", "--trials", "2", "--name", "d1", "--retrain-top", "1",
           "model.head.dropout=0.3", "train.epochs=1", *SYNTH]
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=600,
                          env={**os.environ})
    assert done.returncode == 0, done.stderr[-3000:]
    fronts = list((workdir / "searches" / "d1" / "front").glob("*.yaml"))
    assert fronts and all(yaml.safe_load(p.read_text())["head"]["dropout"] == 0.3 for p in fronts)
    retrained = [p for p in (workdir / "runs").glob("*/spec.yaml")]
    assert retrained and all(yaml.safe_load(p.read_text())["head"]["dropout"] == 0.3 for p in retrained)
