"""The YAML files shipped with nas as package data (`nas.search_spaces`, `nas.experiments`): in a
checkout or `pip install -e .` they are the repository's `search_spaces/` and `experiments/`
folders (pyproject.toml maps the packages onto them), so any folder finds them."""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def shipped_files(package: str) -> dict[str, Path]:
    """{name: path} of the YAML files shipped in `package`, sorted by name."""
    found = {entry.name[: -len(".yaml")]: Path(str(entry))  # installed unzipped: a real file
             for entry in importlib.resources.files(package).iterdir()
             if entry.name.endswith(".yaml") and entry.is_file()}
    return dict(sorted(found.items()))
