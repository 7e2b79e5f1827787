"""An installed `nas` (not editable) finds its shipped spaces and experiments from any folder.

The source is copied aside (so nobody's `build/` leftovers reach the wheel), installed with
`pip install --no-deps --no-build-isolation --target SITE`, and every command runs from an empty
folder with `PYTHONPATH=SITE` and `python -m nas.cli`, so the installed copy is the one used
(checked: `nas.__file__` lies under SITE).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = ("pyproject.toml", "setup.py", "README.md", "nas", "search_spaces", "experiments")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("pkg")
    src = root / "src"
    src.mkdir()
    for name in SOURCE:
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(item, src / name)
    site = root / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                           "--no-index", "--quiet", "--target", str(site), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    empty = root / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    return {"site": site, "cwd": empty, "env": env}


def run(installed: dict, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=installed["cwd"], env=installed["env"],
                          capture_output=True, text=True, timeout=timeout)


def test_the_installed_copy_is_the_one_imported(installed):
    done = run(installed, "-c", "import nas; print(nas.__file__)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip()).is_relative_to(installed["site"])


def test_every_subpackage_and_data_file_is_in_the_wheel(installed):
    """setup.py finds packages by their __init__.py: a nas/ folder of modules without one would
    be missing from every install (it works in a checkout, as a namespace package)."""
    nas = installed["site"] / "nas"
    for folder in sorted({p.parent for p in (REPO / "nas").rglob("*.py")}):
        rel = folder.relative_to(REPO / "nas")
        for py in folder.glob("*.py"):
            assert (nas / rel / py.name).is_file(), (
                f"nas/{rel}/{py.name} is not installed: give nas/{rel} an __init__.py")
    for folder, target in (("search_spaces", "search_spaces"), ("experiments", "experiments"),
                           ("nas/presets", "presets")):
        shipped = sorted(p.name for p in (REPO / folder).glob("*.yaml"))
        assert shipped and shipped == sorted(p.name for p in (nas / target).glob("*.yaml")), folder


def test_installed_lists_spaces_and_experiments_from_any_folder(installed):
    done = run(installed, "-m", "nas.cli", "ablate", "--list")
    assert done.returncode == 0, done.stderr[-2000:]
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    assert listed == {p.stem for p in (REPO / "experiments").glob("*.yaml")}
    code = ("from nas.space import space_names, load_space; from nas.ablate.experiment import "
            "load_experiment; print(space_names(), load_space('shufflenet').name, "
            "load_experiment('shufflenet_shuffle').path)")
    done = run(installed, "-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "['mixed', 'mobilenet_v1', 'mobilenet_v2', 'shufflenet'] shufflenet" in done.stdout
    assert str(installed["site"]) in done.stdout  # the experiment file read is the installed one


@pytest.mark.slow
def test_installed_smoke_search_from_an_empty_folder(installed):
    done = run(installed, "-m", "nas.cli", "search", "--space", "shufflenet", "--trials", "2",
               "--budget", "smoke", "--no-references", "--no-progress", "data.name=synthetic",
               timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert list((installed["cwd"] / "searches").glob("*/trials.csv")), done.stdout[-2000:]
