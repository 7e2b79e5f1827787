"""Every seed document is one command: the README's seed table, run at smoke size.

The commands are parsed out of the README section "The seed documents: one command each" (so
this checks the real text) and each is run in-process through `nas.cli.main` with extra words
that make it tiny and offline (synthetic data, one epoch, CPU, a throw-away SQLite MLflow).
`device=npu` in a README command is replaced by `device=cpu`: there is no Ascend NPU here.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from nas.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## The seed documents: one command each"


def seed_commands() -> list[tuple[str, str]]:
    """(seed file, command) for every `nas ...` code span in the table's command column."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in body.splitlines():
        if not line.startswith("| `0"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"a seed row needs 4 cells: {line[:80]}"
        seed = cells[0].strip("`")
        for cmd in re.findall(r"`(nas [^`]+)`", cells[2]):
            rows.append((seed, cmd))
    return rows


COMMANDS = seed_commands()
TINY = ["data.name=synthetic", "data.val_size=64", "data.synthetic_train=256",
        "data.synthetic_test=64", "train.epochs=1", "train.batch_size=64", "device=cpu"]
# 224-px ImageNet-size nets: tens of seconds on two cores
SLOW = ("data.resize=224",)


def test_table_has_every_seed():
    seeds = sorted(p.name for p in (README.parents[1] / "shared" / "seeds").glob("0*.txt"))
    listed = {s for s, _ in COMMANDS}
    if seeds:
        assert listed == set(seeds)
    assert len(listed) == 5 and len(COMMANDS) >= 5


def smoke_argv(cmd: str, tmp: Path) -> list[str]:
    """The README command plus the words that make it tiny and offline (later words win)."""
    words = shlex.split(cmd)
    assert words[0] == "nas" and words[1] in ("run", "ablate"), cmd
    # no Ascend NPU here: a README command's device=npu runs as device=cpu
    words = [w for w in words[1:] if not w.startswith("device=")]
    mlflow = f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db"
    if words[0] == "ablate":
        return [*words, "--budget", "smoke", "--seeds", "1", "data.name=synthetic", "device=cpu", mlflow]
    tiny = TINY + [mlflow]
    if any(w in ("preset=dsc_cnn", "preset=plain_cnn") for w in words):
        tiny.append("data.synthetic_shape=[1,28,28]")  # the 1-channel 28x28 nets
    return [*words, *tiny]


def params(i: int, seed: str, cmd: str):
    marks = [pytest.mark.slow] if any(s in cmd for s in SLOW) else []
    return pytest.param(cmd, marks=marks, id=f"{seed[:3]}-{i}-{cmd.split()[1]}")


@pytest.mark.parametrize("cmd", [params(i, s, c) for i, (s, c) in enumerate(COMMANDS)])
def test_seed_command_runs(cmd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(smoke_argv(cmd, tmp_path)) == 0, cmd
