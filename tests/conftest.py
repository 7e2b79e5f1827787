"""Shared fixtures. `cifar10_root` builds the real CIFAR-10 batches once per session."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR10 = REPO.parent / "shared" / "data" / "cifar10"


def _readme_sums(readme: Path) -> dict[str, str]:
    """{file name: sha256} from the README's `<sha256>  <name>` lines."""
    pairs = re.findall(r"^\s*([0-9a-f]{64})\s+(\S+)\s*$", readme.read_text(), re.M)
    return {name: digest for digest, name in pairs}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _mismatches(folder: Path, sums: dict[str, str]) -> list[str]:
    return [n for n, d in sums.items() if not (folder / n).is_file() or _sha256(folder / n) != d]


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    """A data root holding the real `cifar-10-batches-py/`, checked against the README's sha256.

    Built by ../shared/data/cifar10/make_batches.py into $NAS_TEST_DATA (else <repo>/.nas/test-data,
    git-ignored) and reused while its checksums match; skips when the shared copy is absent.
    """
    script = SHARED_CIFAR10 / "make_batches.py"
    if not script.is_file():
        pytest.skip(f"real CIFAR-10 unavailable: {script} is absent")
    sums = _readme_sums(SHARED_CIFAR10 / "README.md")
    assert len(sums) == 7, f"expected 7 sha256 sums in {SHARED_CIFAR10 / 'README.md'}, found {sums}"
    out = Path(os.environ.get("NAS_TEST_DATA") or REPO / ".nas" / "test-data").expanduser()
    folder = out / "cifar-10-batches-py"
    if not _mismatches(folder, sums):
        return out
    tmp = out / f".build-{os.getpid()}"  # build aside, then move in: never reuse half a build
    shutil.rmtree(tmp, ignore_errors=True)
    run = subprocess.run([sys.executable, str(script), str(tmp)], capture_output=True, text=True)
    if run.returncode:
        pytest.fail(f"{script} failed ({run.returncode}): {run.stderr[-2000:]}")
    if bad := _mismatches(tmp / "cifar-10-batches-py", sums):
        pytest.fail(f"sha256 of {bad} in {tmp} differ from {SHARED_CIFAR10 / 'README.md'}")
    shutil.rmtree(folder, ignore_errors=True)
    try:
        os.replace(tmp / "cifar-10-batches-py", folder)
    except OSError:  # another worker moved its build in first
        if _mismatches(folder, sums):
            raise
    shutil.rmtree(tmp, ignore_errors=True)
    return out


SEARCH_STORE_ARGS = ["--space", "shufflenet", "--budget", "smoke", "--trials", "4", "--name", "tiny",
                     "--no-progress", "data.name=synthetic", "data.val_size=64",
                     "data.synthetic_train=320", "data.synthetic_test=64", "train.batch_size=64"]


@pytest.fixture(scope="session")
def search_store(tmp_path_factory) -> Path:
    """A folder where a tiny real `nas search` ran (search `tiny`, MLflow experiment `nas`):
    mlflow.db, mlartifacts/, searches/tiny/. Shared by the dashboard, `nas pareto` and MLflow UI
    tests; they only read it (or write beside it)."""
    workdir = tmp_path_factory.mktemp("search_store")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([sys.executable, "-m", "nas.cli", "search", *SEARCH_STORE_ARGS], cwd=workdir,
                          capture_output=True, text=True, timeout=900, env=env)
    if done.returncode:
        pytest.fail(f"the tiny search failed ({done.returncode}): {done.stderr[-3000:]}")
    return workdir
