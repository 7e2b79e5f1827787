"""Specs from files and the full buildability check: `load_spec(path, **overrides)` and
`checked(spec)`. It sits above the plan and the counter so the check needs no lazy import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.counting import count_plan
from nas.errors import SpecError
from nas.limits import check_size
from nas.plan import plan
from nas.spec import NetSpec, apply_overrides, spec_from_dict
from nas.yaml_io import read_yaml


def checked(spec: NetSpec) -> NetSpec:
    """`spec`, after the full check (field ranges, channel arithmetic of the plan, the size caps
    of `nas.limits`), so what loads can build; SpecError (one line naming the field) if not."""
    net_plan = plan(spec)
    check_size(net_plan, count_plan(net_plan))
    return spec


def load_spec(path: str | Path, **overrides: Any) -> NetSpec:
    """Load a spec YAML (a NetSpec mapping, or a preset file with a `spec:` section), checked."""
    data = read_yaml(path)
    if data is None:
        raise SpecError(f"{path}: the file is empty; write a spec (see presets/ for examples)")
    if isinstance(data, dict) and "spec" in data and "stages" not in data:
        data = data["spec"]
    try:
        return checked(spec_from_dict(apply_overrides(data, overrides)))
    except SpecError as err:
        raise type(err)(f"{path}: {err}") from None  # keeps UnknownNameError
