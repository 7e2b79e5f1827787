"""Faults injected on purpose, and what must survive them.

Bad input (fast, in-process through `nas.cli.main` plus a few real processes): malformed YAML,
wrong types, unknown keys, empty/binary/huge files, duplicate keys, Python-object tags and
absurd sizes given to `nas summary spec=`, `nas search --space` and `nas run` (--config and
key=value) -> exit 2 with one `error: ...` line, no traceback, no model built, no data loaded.
Unsafe files: YAML tags that would run code, pickle-bearing checkpoints and planted CIFAR batch
pickles are refused (and the code does not run); the sources use only the safe loaders.
Preflight: an unwritable or full output folder and an unreachable or silent MLflow server make
`nas run` and `nas search` exit 2 with one line within seconds.
Kill -9 (slow): `nas search` killed while trials run, then `--resume`: every trial finished
before the kill is present once in MLflow and in the Optuna history, the search reaches the
asked number of trials, and tests/integrity.py passes (runs the kill left RUNNING are KILLED).
This is the stricter twin of test_search.py's kill test (that one: one trial at a time, no
ASHA; this one: two at a time with ASHA, killed mid-trial, full store integrity).
NaN (slow): a search whose every trial diverges records them FAILED and finishes.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from integrity import assert_none_lost, check_store, completed_before, query_live_db
from nas.cli import main

REPO = Path(__file__).resolve().parents[1]
SYNTH = ["data.name=synthetic", "data.val_size=64", "data.synthetic_train=320",
         "data.synthetic_test=64", "train.batch_size=64"]
MOBILENET_V1 = yaml.safe_load((REPO / "nas" / "presets" / "mobilenet_v1.yaml").read_text())["spec"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("NAS_MIN_FREE_MB", raising=False)
    return tmp_path


def test_one_hook_names_each_injected_fault(monkeypatch):
    """Trials, Tune stops and ablation cells are all asked through `nas.faults.injected(point)`."""
    from nas.faults import injected

    monkeypatch.setenv("NAS_FAIL_TRIALS", "1, 5")
    monkeypatch.setenv("NAS_STOP_TUNE_AT", "3")
    monkeypatch.setenv("NAS_FAIL_CELLS", "width=0.5,groups=3 shuffle=false@1")
    assert injected("trial 5") == "injected fault in trial 5" and injected("trial 3") is None
    assert injected("tune 3") == "injected Tune stop at trial 3" and injected("tune 5") is None
    assert injected("width=0.5@2") == "injected fault in cell width=0.5 seed 2"
    assert injected("groups=3 shuffle=false@1") and injected("groups=3 shuffle=false@0") is None
    assert injected("s1-retrain-t005") is None and injected("") is None


@pytest.fixture
def nothing_built(monkeypatch):
    """Fail the test if a refused input got as far as building a model or loading data."""
    def boom(*args, **kwargs):
        raise AssertionError("a model was built or data loaded for input that should be refused")

    monkeypatch.setattr("nas.builder.Net.__init__", boom)
    monkeypatch.setattr("nas.run.load_data", boom)
    monkeypatch.setattr("nas.search.driver.load_data", boom)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def spec_yaml(**changes) -> str:
    data = {**MOBILENET_V1, **changes}
    return yaml.safe_dump(data)


def stage0(**changes) -> str:
    stages = [dict(MOBILENET_V1["stages"][0], **changes)] + MOBILENET_V1["stages"][1:]
    return spec_yaml(stages=stages)


# ----------------------------------------------------------------------------- bad input

BAD_SPECS = {  # file content -> a fragment the one-line error must contain
    "malformed": ("stages: [ {block: ds\n", r"line \d+, column \d+: malformed YAML"),
    "tab_indent": ("name: x\n\tstages: []\n", "malformed YAML"),
    "empty": ("", "the file is empty"),
    "only_comment": ("# nothing\n", "the file is empty"),
    "list_root": ("- 1\n- 2\n", "spec must be a mapping of fields, got list"),
    "scalar_root": ("42\n", "spec must be a mapping of fields, got int"),
    "wrong_type": (stage0(repeats="two"), "stages[0].repeats must be an integer, got 'two'"),
    "wrong_type_bool": (spec_yaml(width=True), "width must be a number, got True"),
    "wrong_type_list": (spec_yaml(head=[1, 2]), "head must be a mapping"),
    "unknown_key": (spec_yaml(widht=0.5), "widht is not a field of spec; did you mean 'width'?"),
    "unknown_nested": (stage0(chanels=32), "stages[0].chanels is not a field of stages[0]"),
    "duplicate_key": ("name: twice\n" + spec_yaml(), "key 'name' is given twice"),
    "huge_width": (spec_yaml(width=1e9), "width=1000000000.0 must be > 0 and <= 16.0"),
    "huge_repeats": (stage0(repeats=1000000), "stages[0].repeats=1000000 must be between 1 and 64"),
    "huge_channels": (stage0(channels=10**12), "stages[0].channels=1000000000000 must be between"),
    "huge_resolution": (spec_yaml(input={"channels": 3, "resolution": 10**9}),
                        "input.resolution=1000000000 must be between 8 and"),
    "huge_integer": (spec_yaml(num_classes=10**400), "num_classes=1000000000"),
    "huge_total": (spec_yaml(width=16.0, input={"channels": 3, "resolution": 2048}),
                   "multiply-adds per image, over the 1e+12 cap (most in stages["),
    "nan": (spec_yaml(width=float("nan")), "width must be a finite number, got nan"),
    "inf": (spec_yaml(width=float("inf")), "width must be a finite number, got inf"),
    "negative": (stage0(channels=-8), "stages[0].channels=-8 must be between 1 and"),
    "python_object": ("name: !!python/object/apply:os.system ['touch PWNED']\n",
                      "could not determine a constructor for the tag"),
}


def refused_with(workdir: Path, capsys, case: str, text: str, argv) -> str:
    """Write `text` as the case's YAML file, run the CLI on it, and return its one-line error
    after checking the exit code 2 and that no YAML tag ran code."""
    path = workdir / f"{case}.yaml"
    path.write_text(text)
    assert main(argv(path)) == 2
    assert not (workdir / "PWNED").exists()
    return one_line_error(capsys)


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_bad_spec_file_is_one_line_exit_2(workdir, capsys, nothing_built, case):
    text, expected = BAD_SPECS[case]
    message = refused_with(workdir, capsys, case, text, lambda path: ["summary", f"spec={path}"])
    assert expected in message or re.search(expected, message), message


def test_binary_and_oversized_files_are_refused_unread(workdir, capsys, nothing_built):
    binary = workdir / "net.yaml"
    binary.write_bytes(b"\x00\xff\xfe\x80 not yaml")
    assert main(["summary", f"spec={binary}"]) == 2
    assert "not a text (UTF-8) file" in one_line_error(capsys)
    big = workdir / "big.yaml"
    with open(big, "wb") as f:  # sparse: 11 MB on paper, nothing read
        f.truncate(11 * 1024**2)
    assert main(["summary", f"spec={big}"]) == 2
    assert "too large for a YAML file" in one_line_error(capsys)
    assert main(["summary", f"spec={workdir}"]) == 2  # a folder
    assert "is a folder, not a YAML file" in one_line_error(capsys)


BAD_SPACES = {
    "malformed": ("base: shufflenet_v1_g3\nchoices: {width: {options: [0.5, 1.0}\n", "malformed YAML"),
    "empty": ("", "the file is empty"),
    "wrong_type": ("base: shufflenet_v1_g3\nchoices: 5\n", "choices must be a non-empty mapping"),
    "unknown_key": ("base: shufflenet_v1_g3\nchoicez: {}\n", "choicez is not a key here; did you mean 'choices'?"),
    "unknown_choice_key": ("base: shufflenet_v1_g3\nchoices: {width: {option: [1.0], set: width}}\n",
                           "choices.width.option is not a key here"),
    "huge_base": ("base: {stages: [{block: ds, channels: 32}], width: 1.0e9}\nchoices: {k: {options: [3], set: stages.*.kernel}}\n",
                  "base: width=1000000000.0 must be > 0"),
    "huge_first_option": ("base: shufflenet_v1_g3\nchoices: {d: {range: {low: 1000000, high: 1000001}, set: stages.0.repeats}}\n",
                          "stages[0].repeats=1000000 must be between 1 and 64"),
    "wrong_option_type": ("base: shufflenet_v1_g3\nchoices: {w: {options: [1.0, wide], set: width}}\n",
                          "width must be a number, got 'wide'"),
    "python_object": ("base: !!python/object/apply:os.system ['touch PWNED']\nchoices: {}\n",
                      "could not determine a constructor"),
}


@pytest.mark.parametrize("case", list(BAD_SPACES))
def test_bad_search_space_file_is_one_line_exit_2(workdir, capsys, nothing_built, case):
    text, expected = BAD_SPACES[case]
    started = time.perf_counter()
    message = refused_with(workdir, capsys, case, text, lambda path: [
        "search", "--space", str(path), "--budget", "smoke", "--trials", "1", "--no-progress"])
    assert expected in message, message
    assert time.perf_counter() - started < 30
    assert not (workdir / "searches").exists() or not any((workdir / "searches").iterdir())


BAD_CONFIGS = {
    "malformed": ("train: {epochs: [\n", "malformed YAML"),
    "list_root": ("- 1\n", "must be a mapping of keys"),
    "duplicate_key": ("train: {lr: 0.1}\ntrain: {lr: 9}\n", "key 'train' is given twice"),
    "python_object": ("train: !!python/object/apply:os.system ['touch PWNED']\n", "could not determine a constructor"),
    "unknown_key": ("trian: {epochs: 3}\n", "did you mean 'train'?"),
    "wrong_type": ("train: {epochs: three}\n", "train.epochs must be an integer, got 'three'"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_run_config_file_is_one_line_exit_2(workdir, capsys, nothing_built, case):
    text, expected = BAD_CONFIGS[case]
    path = workdir / "run.yaml"
    path.write_text(text)
    assert main(["run", "preset=dsc_cnn", "mlflow.enabled=false", "--config", str(path)]) == 2
    assert expected in one_line_error(capsys)
    assert not (workdir / "PWNED").exists()


@pytest.mark.parametrize("argv,expected", [
    (["width=1e9"], "width=1000000000.0 must be > 0 and <= 16.0"),
    (["model.stages.0.repeats=1000000"], "stages[0].repeats=1000000 must be between 1 and 64"),
    (["model.stages.0.channels=16384", "width=16"], "over the 16384 cap"),
    (["resolution=2048", "width=16"], "over the 1e+12 cap"),
    (["model.head.hidden=[65536,65536]", "width=4"], "parameters, over the 1e+09 cap (most in head)"),
    (["model.stages.0.kernel=1e6"], "stages[0].kernel=1000000 must be an odd kernel size"),
    (["model.stages.0.colour=red"], "stages[0].colour is not a field of stages[0]"),
])
def test_absurd_sizes_refused_before_any_allocation(workdir, capsys, nothing_built, argv, expected):
    assert main(["run", "preset=mobilenet_v1", "mlflow.enabled=false", *argv]) == 2
    assert expected in one_line_error(capsys)


def test_console_script_refuses_without_traceback(workdir):
    bad = workdir / "bad.yaml"
    bad.write_text(BAD_SPECS["huge_repeats"][0])
    space = workdir / "space.yaml"
    space.write_text(BAD_SPACES["malformed"][0])
    for argv in (["summary", f"spec={bad}"], ["search", "--space", str(space), "--budget", "smoke"]):
        done = subprocess.run([sys.executable, "-m", "nas.cli", *argv], cwd=workdir,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- unsafe files


def test_sources_load_yaml_and_checkpoints_safely():
    """Every YAML load goes through the safe loaders, every torch.load is weights_only, no
    unrestricted pickle.load."""
    for path in (REPO / "nas").rglob("*.py"):
        text = path.read_text()
        for line in text.splitlines():
            if re.search(r"\byaml\.(load|unsafe_load|full_load|load_all)\(", line):
                assert "StrictSafeLoader" in line, f"{path}: {line.strip()}"
            assert not re.search(r"Loader=yaml\.(Loader|UnsafeLoader|FullLoader)", line), f"{path}: {line}"
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"
            assert "OmegaConf.load(" not in line, f"{path}: OmegaConf.load is not strict: {line}"
            assert not re.search(r"\bpickle\.loads?\(", line), f"{path}: unrestricted unpickling: {line}"


class _RunsCode:
    """Unpickling this would create a file: proof that nothing was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_bearing_checkpoint_is_refused(workdir, capsys):
    import torch

    from nas import checkpoint
    from nas.errors import NasError

    marker = workdir / "PWNED"
    evil = workdir / "evil.pt"
    torch.save({"model": {}, "extra": _RunsCode(marker)}, evil)
    with pytest.raises(NasError, match="holds pickled Python objects"):
        checkpoint.load(evil)
    truncated = workdir / "cut.pt"
    truncated.write_bytes(evil.read_bytes()[:64])
    with pytest.raises(NasError, match="truncated or not a nas checkpoint"):
        checkpoint.load(truncated)
    assert not marker.exists()
    # through `nas run resume=true`: the planted checkpoint sits where the run would resume from
    args = ["run", "preset=dsc_cnn", *SYNTH, "data.synthetic_train=128", "train.epochs=1",
            "progress=false", "mlflow.enabled=false"]
    assert main(args) == 0
    capsys.readouterr()
    (ckpt,) = workdir.glob("runs/*/checkpoint.pt")
    torch.save({"epoch": 1, "extra": _RunsCode(marker)}, ckpt)
    assert main([*args, "resume=true"]) == 2
    assert "holds pickled Python objects" in one_line_error(capsys)
    assert not marker.exists()


def test_planted_cifar_batch_cannot_run_code(workdir, capsys):
    """CIFAR's python batches are pickles: only numpy array reconstruction may be imported."""
    folder = workdir / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    marker = workdir / "PWNED"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": _RunsCode(marker), "labels": [0]}, f)
    code = main(["run", "preset=dsc_cnn", f"data.root={workdir / 'data'}", "data.download=false",
                 "mlflow.enabled=false", "progress=false"])
    assert code == 2
    message = one_line_error(capsys)
    assert "data_batch_1" in message and "data batches hold arrays only" in message, message
    assert not marker.exists()


# ----------------------------------------------------------------------------- preflight


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A socket that accepts connections and never answers (a hung MLflow server)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


def unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o500)
        return folder / "out"
    # root ignores permission bits; sysfs refuses new regular files to everyone
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            pass
    except OSError:
        return Path("/sys/nas-out")
    pytest.skip("no unwritable folder available to root here")


COMMANDS = {
    "run": lambda extra, out: ["run", "preset=dsc_cnn", *SYNTH, "progress=false",
                               f"output_dir={out}", *extra],
    "search": lambda extra, out: ["search", "--space", "shufflenet", "--budget", "smoke",
                                  "--trials", "1", "--no-progress", "--output-dir", str(out),
                                  *SYNTH, *extra],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("fault", ["unwritable_folder", "folder_is_a_file", "disk_full",
                                   "server_refuses", "server_silent", "server_env"])
def test_preflight_fails_fast_with_one_line(workdir, capsys, monkeypatch, nothing_built,
                                            silent_server, command, fault):
    out, extra, expected = workdir / "out", [], ""
    if fault == "unwritable_folder":
        out, expected = unwritable_folder(workdir), "cannot write in"
    elif fault == "folder_is_a_file":
        (workdir / "afile").write_text("x")
        out, expected = workdir / "afile" / "out", "is not a folder"
    elif fault == "disk_full":
        monkeypatch.setenv("NAS_MIN_FREE_MB", str(10**12))
        expected = "MB free on its disk (need 1,000,000,000,000 MB"
    elif fault == "server_refuses":
        extra, expected = [f"mlflow.tracking_uri=http://127.0.0.1:{closed_port()}"], "is unreachable"
    elif fault == "server_silent":
        extra, expected = [f"mlflow.tracking_uri={silent_server}"], "is unreachable (timed out)"
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
        expected = "is unreachable"
    started = time.perf_counter()
    assert main(COMMANDS[command](extra, out)) == 2
    assert expected in one_line_error(capsys)
    assert time.perf_counter() - started < 20  # the silent server costs its 5 s timeout
    assert not (workdir / "mlflow.db").exists()


# ----------------------------------------------------------------------------- kill -9, resume


def _running_children(db: Path) -> int:
    """Runs RUNNING in the MLflow store, minus the search's parent."""
    rows = query_live_db(db, "select count(*) from runs where status = 'RUNNING'")
    return rows[0][0] - 1 if rows else 0


def search_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "nas.cli", "search", "--space", "shufflenet", "--budget", "smoke",
            "--no-progress", *args, *SYNTH]


@pytest.mark.slow
def test_kill_9_mid_trial_then_resume_loses_nothing(workdir):
    # --no-asha: a pruned trial is not COMPLETED, and at 6 trials early stopping could finish the
    # search before two COMPLETED ones (CI saw 3 completed, 3 pruned, the last two at the end)
    name, trials, run_all = "k9", 6, "--no-asha"
    log = open(workdir / "killed.log", "w")
    proc = subprocess.Popen(search_cmd("--trials", str(trials), "--name", name, "--concurrency", "2",
                                       run_all),
                            cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    folder = workdir / "searches" / name
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        if len(completed_before(folder)) >= 2 and _running_children(workdir / "mlflow.db") >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, f"the search ended before the kill: {(workdir / 'killed.log').read_text()[-2000:]}"
    before = completed_before(folder)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its Ray workers, everything in the group
    proc.wait()
    log.close()
    killed_mid_trial = _running_children(workdir / "mlflow.db")
    assert len(before) >= 2 and killed_mid_trial >= 1
    done = subprocess.run(search_cmd("--trials", str(trials), "--name", name, "--resume",
                                     "--concurrency", "2", run_all),
                          cwd=workdir, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "database is locked" not in done.stdout + done.stderr
    summary = check_store(workdir, name)
    assert assert_none_lost(workdir, name, before) == 0
    df = pd.read_csv(folder / "trials.csv")
    trained = df[df.status.isin(["COMPLETED", "PRUNED", "FAILED"])]
    assert len(trained) == trials, df[["trial", "status"]]
    killed = df[df.status == "KILLED"]
    assert len(killed) >= 1  # the trials running at the kill, closed on resume and re-sampled
    print(f"kill -9 with {killed_mid_trial} trial(s) running, {len(before)} finished before:"
          f" {summary}; finished trials lost: 0")


@pytest.mark.slow
def test_diverging_trials_are_recorded_failed_and_the_search_finishes(workdir):
    done = subprocess.run(search_cmd("--trials", "2", "--name", "nan", "--concurrency", "2",
                                     "--no-references", "train.lr=1e30", "train.schedule=constant"),
                          cwd=workdir, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]  # nothing produced a result (issue 34)
    assert done.stderr.strip().splitlines()[-1].startswith("error: no trial produced a result (2 failed)")
    df = pd.read_csv(workdir / "searches" / "nan" / "trials.csv")
    assert list(df.status) == ["FAILED", "FAILED"]
    assert df.error.str.contains("loss became NaN/inf").all()
    summary = check_store(workdir, "nan")
    assert summary["failed"] == 2


def test_tune_stop_fails_started_trials_and_requeues_unstarted_ones(workdir):
    """Ray Tune stopping with one trial training and one point handed to it but not started:
    the started one is FAILED (its run closed with the error); the unstarted one did not run, so
    it is INTERRUPTED, has its own MLflow run, does not count against the trial budget, and is
    queued to train next (the CI failure at stop 36: it was FAILED, without a run, and counted)."""
    from types import SimpleNamespace

    import optuna

    from nas import mlflow_layout as ml
    from nas.campaign.recorder import CampaignRecorder
    from nas.campaign.state import State
    from nas.config import MlflowConfig
    from nas.search.recorder import SearchRecorder
    from nas.search.session import trained_count
    from nas.search.tuner import NOT_STARTED, _stop_running
    from nas.status import Status

    study = optuna.create_study(directions=["maximize"])
    campaign = CampaignRecorder(MlflowConfig(), "s")
    recorder = SearchRecorder(campaign, "s")
    s = SimpleNamespace(study=study, recorder=recorder, state=State(workdir / "state.json"),
                        closed={}, plan=SimpleNamespace(trials=3))
    s.closed = s.state.closed
    done = study.ask({"groups": optuna.distributions.IntDistribution(1, 8)})
    study.tell(done, [0.5])
    training = study.ask({"groups": optuna.distributions.IntDistribution(1, 8)})
    recorder.start(training.number, {"groups": training.params["groups"]}, None, 1000, 10)
    handed = study.ask({"groups": optuna.distributions.IntDistribution(1, 8)})
    handed.set_user_attr(ml.MACS, 2000)

    assert _stop_running(s, Status.FAILED, "worker lost: killed") == [training.number]
    assert s.closed[str(training.number)]["status"] == "FAILED"
    assert s.closed[str(handed.number)] == {"status": "INTERRUPTED", "error": NOT_STARTED}
    assert trained_count(s) == 2  # the completed and the FAILED one ran; the unstarted one is not spent
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [handed.params]  # what the next ask gets
    campaign.parent.end()
    runs = {r.data.tags[ml.TRIAL]: r for r in campaign.parent.client.search_runs(
        [campaign.parent.experiment_id], f"tags.{ml.PARENT_RUN_ID} = '{campaign.parent.run_id}'")}
    assert runs[str(training.number)].data.tags[ml.STATUS] == "FAILED"
    unstarted = runs[str(handed.number)]
    assert unstarted.data.tags[ml.STATUS] == "INTERRUPTED" and unstarted.info.status == "KILLED"
    assert unstarted.data.params[f"{ml.CHOICE_PREFIX}groups"] == str(handed.params["groups"])
    assert unstarted.data.metrics[ml.MACS] == 2000


def test_a_resumed_search_maps_each_trial_to_its_trial_run_not_its_retrain_run(workdir):
    """`--retrain-top` runs carry their trial's number as a tag; a resumed search must still map
    the trial to the trial's own run (trials.csv's mlflow_run_id, leftovers closed on resume)."""
    from nas import mlflow_layout as ml
    from nas.campaign.recorder import CampaignRecorder
    from nas.config import MlflowConfig
    from nas.search.recorder import SearchRecorder
    from nas.status import Status

    campaign = CampaignRecorder(MlflowConfig(), "s")
    SearchRecorder(campaign, "s").start(4, {"groups": 3}, None, 1000, 10)
    campaign.finish(4, Status.COMPLETED)
    trial_run = campaign.run_ids[4]
    campaign.child("s-retrain-t004", "s-retrain-t004", {ml.KIND: ml.KIND_RETRAIN, ml.TRIAL: "4"})
    campaign.finish("s-retrain-t004", Status.COMPLETED)
    assert campaign.run_ids["s-retrain-t004"] != trial_run
    campaign.parent.end()

    resumed = SearchRecorder(CampaignRecorder(MlflowConfig(), "s", campaign.parent.run_id), "s")
    assert resumed.run_ids == {4: trial_run}
