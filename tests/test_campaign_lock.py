"""One owner per campaign folder (issue 34, items 1 and 8), with real processes: a second
`nas search` / `nas ablate` on a folder another process holds is refused in one line naming that
process, before it touches the folder; the lock goes with its holder, `kill -9` included, and the
next owner takes the stale file over. `--name` cannot leave `--output-dir`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.campaign.lock import LOCK_FILE, acquire, release
from nas.cli import main
from nas.errors import NasError

SYNTH = ["--budget", "smoke", "--no-progress", "data.name=synthetic", "data.val_size=64"]
HOLD = ("import sys, time; from pathlib import Path; from nas.campaign.lock import acquire;"
        " acquire(Path(sys.argv[1]), 'search'); print('held', flush=True); time.sleep(600)")


def hold(folder: Path) -> subprocess.Popen:
    """Another process holding `folder`'s lock (as a running `nas search` does)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def nas(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={k: v for k, v in os.environ.items()
                                                       if k != "MLFLOW_TRACKING_URI"})


def test_second_process_is_refused_naming_the_owner_and_kill_9_frees_the_lock(tmp_path):
    folder = tmp_path / "searches" / "dup"
    owner = hold(folder)
    try:
        second = nas(tmp_path, "search", "--space", "shufflenet", "--name", "dup", "--resume",
                     "--trials", "2", *SYNTH)
        ablate_folder = tmp_path / "ablations" / "dup"
        ablation_owner = hold(ablate_folder)
        try:
            third = nas(tmp_path, "ablate", "dsc_cnn_act_conv", "--name", "dup", "--resume", *SYNTH)
        finally:
            ablation_owner.kill()
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    for done, what in ((second, "search"), (third, "ablation")):
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
        assert lines[0].startswith(f"error: {what} 'dup' is being run by process ")
        assert "Traceback" not in done.stdout + done.stderr
    assert f"process {owner.pid} on " in second.stderr
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]  # the refused one wrote nothing
    # the holder was killed -9: its lock file stays, stale, and is taken over by the next owner
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == owner.pid
    acquire(folder, "search")
    try:
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        release(folder)


def test_lock_is_released_when_its_holder_exits(tmp_path):
    folder = tmp_path / "f"
    done = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path;"
                           " from nas.campaign.lock import acquire; acquire(Path(sys.argv[1]), 'search')",
                           str(folder)], timeout=60)
    assert done.returncode == 0
    acquire(folder, "search")  # free again: not refused
    release(folder)


def test_lock_is_reentrant_in_one_process_and_refuses_another(tmp_path):
    folder = tmp_path / "f"
    acquire(folder, "ablation")
    acquire(folder, "ablation")  # the same process again (a campaign run twice from Python)
    release(folder)
    owner = hold(folder)
    try:
        with pytest.raises(NasError, match=f"being run by process {owner.pid} "):
            acquire(folder, "search")
    finally:
        owner.kill()
        owner.wait()


@pytest.mark.parametrize("name", ["../../esc", "..", "a/b", "/tmp/x", "~x", " x"])
def test_name_stays_inside_the_output_folder(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    for command in (["search", "--space", "shufflenet", "--trials", "1"], ["ablate", "dsc_cnn_act_conv"]):
        code = main([*command, "--name", name, "--output-dir", "out", *SYNTH])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.count("\n") == 0 and "must be a plain folder name" in err, err
    assert not (tmp_path / "esc").exists() and not (tmp_path / "a" / "b" / "out").exists()
