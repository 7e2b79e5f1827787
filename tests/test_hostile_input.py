"""Bad input refused at the door, in one line and before any training (issue 34, items 2-5, 7
and 9): experiment files with a typo, tracking URIs that cannot work, corrupted data files,
YAML alias bombs, the synthetic data's defaults, and the small consistency rules."""

from __future__ import annotations

import pickle
import shlex
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import nas.run
from fake_data import fake_cifar10
from nas.cli import main
from nas.cli_campaign import _resume_hint
from nas.config import load_run_config, resolve_spec
from nas.data import DataConfig, DataError, load_data
from nas.presets import preset_names
from nas.campaign.settings import make_settings
from nas.search.plan import SearchPlan

REPO = Path(__file__).resolve().parents[1]
S = ["data.name=synthetic", "data.val_size=100", "train.epochs=1"]
SMOKE = ["--budget", "smoke", "--no-progress", "data.name=synthetic", "data.val_size=64"]
BOMB = "\n".join(['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
                 + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]) + "\n"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("NAS_DATA", str(tmp_path / "no-data"))


def refused(capsys, argv: list[str], code: int = 2) -> str:
    """Run `nas argv`: exit `code`, one line on stderr, no traceback, no epoch trained."""
    got = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and lines[0].startswith("error: "), (got, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err and "epoch 1" not in out + err
    return lines[0]


def experiment_with(tmp_path: Path, old: str, new: str) -> str:
    text = (REPO / "experiments" / "dsc_cnn_act_conv.yaml").read_text()
    assert old in text
    (tmp_path / "e.yaml").write_text(text.replace(old, new))
    return str(tmp_path / "e.yaml")


# ----------------------------------------------------------------------------- item 2


@pytest.mark.parametrize("old, new, names", [("set: model.act\n", "set: model.actt\n", "actt"),
                                             ("preset: dsc_cnn}", "preset: dsc_cnnn}", "dsc_cnnn")])
def test_experiment_typo_is_refused_before_training(tmp_path, capsys, old, new, names):
    line = refused(capsys, ["ablate", experiment_with(tmp_path, old, new), "--seeds", "1", *SMOKE])
    assert "does not build" in line and names in line
    assert not (tmp_path / "ablations").exists() or not any((tmp_path / "ablations").iterdir())


# ----------------------------------------------------------------------------- item 3


@pytest.mark.parametrize("uri, says", [
    ("sqlite://mlflow.db", "three slashes"),
    ("foo://bar", "unknown scheme"),
    ("postgresql://u@127.0.0.1:1/db", "postgresql"),
    ("mysql://u@127.0.0.1:1/db", "mysql"),
    ("sqlite:///not-a-db.db", "cannot be written as a SQLite database"),
])
def test_bad_tracking_uri_is_refused_before_training(tmp_path, capsys, uri, says):
    (tmp_path / "not-a-db.db").write_text("this is not a database\n" * 100)
    line = refused(capsys, ["run", "preset=dsc_cnn", *S, f"mlflow.tracking_uri={uri}"])
    assert says in line


# ----------------------------------------------------------------------------- item 4


def corrupt_cifar(root: Path, how: str) -> str:
    fake_cifar10(root, per_class=12, test_images=20)
    folder = root / "cifar-10-batches-py"
    name = "test_batch" if how == "test labels" else "data_batch_2"
    batch = pickle.load(open(folder / name, "rb"))
    if how in ("test labels", "train labels"):
        batch["labels"][0] = 99
    elif how == "shape":
        batch["data"] = batch["data"][:, :1000]
    elif how == "length":
        batch["labels"] = batch["labels"][:-1]
    elif how == "no labels":
        del batch["labels"]
    pickle.dump(batch, open(folder / name, "wb"))
    return name


@pytest.mark.parametrize("how", ["test labels", "train labels", "shape", "length", "no labels"])
def test_corrupted_cifar_batch_fails_in_one_line_naming_the_file(tmp_path, capsys, how):
    name = corrupt_cifar(tmp_path / "d", how)
    line = refused(capsys, ["run", "preset=dsc_cnn", f"data.root={tmp_path / 'd'}", "data.val_size=20",
                            "train.epochs=1", "mlflow.enabled=false"])
    assert f"cifar-10-batches-py/{name}:" in line


def test_every_loader_output_is_checked():
    cfg = DataConfig(name="synthetic", synthetic_classes=3)
    assert len(load_data(cfg).train) > 0
    from nas.data_check import check_split
    import numpy as np

    with pytest.raises(DataError, match="outside 0..2"):
        check_split(np.zeros((4, 1, 8, 8), np.uint8), np.array([0, 1, 2, 3]), 3, "here")


# ----------------------------------------------------------------------------- item 5


@pytest.mark.parametrize("argv", [
    ["summary", "spec={f}"],
    ["run", "preset=dsc_cnn", "--config", "{f}", *S],
    ["search", "--space", "{f}", "--trials", "1", *SMOKE],
    ["ablate", "{f}", *SMOKE],
])
def test_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys, argv):
    (tmp_path / "bomb.yaml").write_text(BOMB)
    line = refused(capsys, [a.replace("{f}", str(tmp_path / "bomb.yaml")) for a in argv])
    assert "alias *a0 is not allowed" in line


# ----------------------------------------------------------------------------- item 7


@pytest.mark.parametrize("preset", preset_names())
def test_synthetic_defaults_work_with_every_preset(preset):
    cfg = load_run_config([f"preset={preset}", "data.name=synthetic"])
    data = load_data(cfg.data)
    assert len(data.val) > 0 and len(data.train) > len(data.val)
    resolve_spec(cfg, data)


def test_too_large_validation_split_names_the_setting_that_helps():
    with pytest.raises(DataError, match=r"lower data.val_size$"):
        load_data(DataConfig(name="synthetic", val_size=5000))


# ----------------------------------------------------------------------------- item 9


def test_version(capsys):
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0 and capsys.readouterr().out.startswith("nas ")


def test_retry_failed_needs_resume(capsys):
    assert "--retry-failed needs --resume" in refused(
        capsys, ["ablate", "dsc_cnn_act_conv", "--retry-failed", *SMOKE])


def test_run_takes_no_progress(capsys):
    assert main(["run", "preset=dsc_cnn", "--no-progress", "--show-config"]) == 0
    assert "progress: false" in capsys.readouterr().out


def test_spec_folder_is_named_a_folder(tmp_path, capsys):
    assert "is a folder, not a YAML file" in refused(capsys, ["summary", f"spec={tmp_path}"])


def test_one_message_per_rule_and_no_files_left(tmp_path, capsys):
    line = refused(capsys, ["run", "preset=dsc_cnn", *S, "train.lr=-1"])
    assert line == "error: train.lr=-1 must be > 0"
    line = refused(capsys, ["search", "--space", "shufflenet", "--trials", "1", *SMOKE, "train.lr=-1"])
    assert line == "error: train.lr=-1 must be > 0"
    assert list(tmp_path.iterdir()) == []  # no mlflow.db, no searches/


@pytest.mark.parametrize("objectives", ["test_acc,macs", "val_acc,test_acc", "foo,macs"])
def test_objective_errors_agree_that_test_acc_is_not_searched(capsys, objectives):
    line = refused(capsys, ["search", "--space", "shufflenet", "--objectives", objectives, *SMOKE])
    assert "cannot be searched on; use val_acc, macs, params, latency, latency_ms" in line


def test_unreachable_size_limit_is_refused_before_sampling(tmp_path, capsys):
    line = refused(capsys, ["search", "--space", "shufflenet", "--trials", "2", "--no-references",
                            *SMOKE, "max_macs=1"])
    assert "no architecture of space 'shufflenet' meets max_macs=1" in line
    assert not (tmp_path / "searches").exists() or not any((tmp_path / "searches").iterdir())


def test_printed_resume_command_quotes_names(capsys):
    settings = make_settings(SearchPlan, ["data.root=/my data"], space="shufflenet", trials=3, name="my search")
    outcome = SimpleNamespace(name="my search", trials=pd.DataFrame({"status": ["COMPLETED"]}))
    _resume_hint(settings, outcome)
    command = capsys.readouterr().out.split("go on with: ")[1]
    assert shlex.split(command)[shlex.split(command).index("--name") + 1] == "my search"
    assert "data.root=/my data" in shlex.split(command)


def test_ctrl_c_during_run_says_how_to_resume(monkeypatch, capsys):
    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(nas.run, "run", interrupted)
    assert main(["run", "preset=dsc_cnn", *S]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"interrupted; continue with: nas run preset=dsc_cnn {' '.join(S)} resume=true"


@pytest.mark.parametrize("argv, says", [
    (["search", "--space", "shufflenet", "--per-trial", "0.5", "--gpus-per-trial", "0.5"], "not both"),
    (["search", "--space", "shufflenet", "--per-trial", "0.5", "--accelerator", "cpu"], "needs --accelerator"),
    (["search", "--space", "shufflenet", "--gpus-per-trial", "1", "--accelerator", "npu"], "contradicts"),
    (["search", "--space", "shufflenet", "--no-asha", "--scheduler", "moasha"], "contradicts --no-asha"),
    (["ablate", "dsc_cnn_act_conv", "--per-cell", "0.5", "--accelerator", "cpu"], "needs --accelerator"),
])
def test_flags_that_contradict_or_need_another_refuse(capsys, argv, says):
    assert says in refused(capsys, [*argv, *SMOKE])
