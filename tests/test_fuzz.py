"""Property tests of bad and good input (hypothesis).

Valid: every architecture drawn from each shipped search space (a hypothesis-driven `Sampler`,
the same protocol Optuna and Ray Tune sample through) builds, runs a forward pass at its
resolution (32 px, batch 1, 10 classes), and `nas.count` equals FlopCounterMode / 2 and the
module's parameter count. A drawn point the space itself cannot build (a group count that does
not divide a rounded width) must be refused with a one-line SpecError, never a model.

Invalid: a valid spec drawn from a space, with one field corrupted (wrong type, negative, huge,
null, missing, unknown key, a knob on a block that ignores it, groups not dividing channels),
must give a one-line SpecError naming that field's path, and no model.

The totals (specs fuzzed, valid built / refused, invalid per corruption) are printed at the end
of the module, also under -q. The fast default takes well under a minute; the `slow` variants
(CI) draw five times as many.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import Any, Sequence

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import nas
from nas.errors import SpecError
from nas.space import load_space as _load_space
from nas.space import space_names
from nas.loading import checked
from nas.spec import spec_from_dict, spec_to_dict

CIFAR = {"resolution": 32, "num_classes": 10}
FAST_VALID, FAST_INVALID = 120, 1000  # per space / in all
SLOW_FACTOR = 5
SPACES = space_names()
TOTALS: Counter = Counter()

NUMERIC = {"channels", "resolution", "kernel", "stride", "repeats", "expansion", "groups", "conv",
           "pool_size", "dropout", "num_classes", "width", "channel_divisor", "min_final_map"}
BOOLEAN = {"shuffle", "residual", "ungrouped_first", "bn", "mid_act", "bias"}
OPTIONAL = {"act", "expansion", "groups", "proj_act", "shuffle", "residual", "ungrouped_first",
            "bn", "mid_act", "bias", "min_final_map"}
REQUIRED_IN_STAGE = ("block", "channels")
KNOB_USERS = {"expansion": {"ir"}, "proj_act": {"ir"}, "groups": {"shuffle"},
              "shuffle": {"shuffle"}, "ungrouped_first": {"shuffle"}, "bn": {"ds", "conv"},
              "mid_act": {"ds"}, "bias": {"ds", "conv"}}
HUGE = (10**9, 1e9, 10**12, 10**400, 1e300)


load_space = functools.cache(_load_space)  # parsing checks every choice: once per space


class HypothesisSampler:
    """`space.sample(HypothesisSampler(data))`: each choice drawn by hypothesis, so failures
    shrink to the simplest architecture (first options, low ends of ranges)."""

    def __init__(self, data: st.DataObject):
        self.data = data

    def categorical(self, label: str, options: Sequence[Any]) -> Any:
        return self.data.draw(st.sampled_from(list(options)), label=label)

    def integer(self, label: str, low: int, high: int, step: int) -> int:
        k = self.data.draw(st.integers(0, (high - low) // step), label=label)
        return low + k * step

    def real(self, label: str, low: float, high: float, log: bool) -> float:
        if log:
            return math.exp(self.data.draw(st.floats(math.log(low), math.log(high)), label=label))
        return self.data.draw(st.floats(low, high), label=label)


def one_line(err: SpecError) -> str:
    message = str(err)
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


def measured(model: torch.nn.Module, spec) -> tuple[int, int]:
    r = spec.input.resolution
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(1, spec.input.channels, r, r))
    assert out.shape == (1, spec.num_classes) and torch.isfinite(out).all()
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Batch-1 forwards of small nets: one thread is as fast and does not fight other tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- valid points


def check_valid_point(space_name: str, data: st.DataObject) -> None:
    space = load_space(space_name)
    params = space.sample(HypothesisSampler(data))
    try:
        spec = space.to_spec(params, **CIFAR)
    except SpecError as err:  # a point of the space that does not build: refused, no model
        one_line(err)
        TOTALS["valid_refused"] += 1
        return
    counted = nas.count(spec)
    model = nas.build_model(spec).eval()
    assert (counted.params, counted.macs) == measured(model, spec), (space_name, params)
    TOTALS["valid_built"] += 1
    TOTALS[f"space.{space_name}"] += 1


@pytest.mark.parametrize("space_name", SPACES)
@settings(max_examples=FAST_VALID, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_space_points_build_run_and_count_exactly(space_name, data):
    check_valid_point(space_name, data)


@pytest.mark.slow
@pytest.mark.parametrize("space_name", SPACES)
@settings(max_examples=FAST_VALID * SLOW_FACTOR, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_space_points_build_run_and_count_exactly_many(space_name, data):
    check_valid_point(space_name, data)


# ----------------------------------------------------------------------------- corruptions


def leaves(data: dict, prefix: str = "") -> list[tuple[str, tuple, str]]:
    """(display path, key path, field name) of every field in a spec dict: `stages[1].kernel`,
    `head.hidden[0]`, `width`."""
    out = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out += [(p, (key, *k), f) for p, k, f in leaves(value, path)]
        elif key == "stages":
            for i, stage in enumerate(value):
                out += [(p, ("stages", i, *k), f) for p, k, f in leaves(stage, f"stages[{i}]")]
        elif key == "hidden":
            out.append((path, (key,), key))
            out += [(f"{path}[{j}]", (key, j), "hidden_item") for j in range(len(value))]
        else:
            out.append((path, (key,), key))
    return out


def get(data: Any, keys: tuple) -> Any:
    for k in keys:
        data = data[k]
    return data


def put(data: Any, keys: tuple, value: Any) -> None:
    get(data, keys[:-1])[keys[-1]] = value


def corrupt(draw, data: dict) -> tuple[str, str, str]:
    """Corrupt one field of `data` in place; returns (kind, path, regex the message must match)."""
    kind = draw(st.sampled_from(["wrong_type", "negative", "huge", "null", "missing",
                                 "unknown_key", "wrong_knob", "groups"]))
    fields = leaves(data)
    numeric = [f for f in fields if f[2] in NUMERIC or f[2] == "hidden_item"]
    if kind == "wrong_type":
        path, keys, name = draw(st.sampled_from(fields))
        text_field = name in {"name", "block", "act", "proj_act", "pool", "conv_scaling"}
        put(data, keys, draw(st.sampled_from([[1, 2], {"a": 1}, 3])) if text_field else
            draw(st.sampled_from(["oops", "3", [1], {"x": 1}] if name != "hidden" else ["oops", 3])))
        return kind, path, re.escape(path)
    if kind in ("negative", "huge"):
        path, keys, name = draw(st.sampled_from(numeric))
        value = draw(st.sampled_from(HUGE)) if kind == "huge" else -draw(st.sampled_from([1, 2, 0.5, 10**9]))
        put(data, keys, value)
        return kind, path, re.escape(path)
    if kind == "null":
        candidates = [f for f in fields if f[2] not in OPTIONAL and f[2] != "hidden_item"]
        path, keys, name = draw(st.sampled_from(candidates))
        put(data, keys, None)
        return kind, path, re.escape(path)
    if kind == "missing":
        i = draw(st.integers(0, len(data["stages"]) - 1))
        key = draw(st.sampled_from(REQUIRED_IN_STAGE))
        del data["stages"][i][key]
        return kind, f"stages[{i}].{key}", re.escape(f"stages[{i}].{key} is required")
    if kind == "unknown_key":
        where = draw(st.sampled_from(["", "input", "stem", "head", "stages"]))
        key = draw(st.sampled_from(["colour", "chanels", "widht", "Kernel", "x" * 500]))
        if where == "stages":
            i = draw(st.integers(0, len(data["stages"]) - 1))
            data["stages"][i][key] = 1
            path = f"stages[{i}].{key}"
        else:
            (get(data, (where,)) if where else data)[key] = 1
            path = f"{where}.{key}" if where else key
        return kind, path, re.escape(path[:40])
    if kind == "wrong_knob":
        i = draw(st.integers(0, len(data["stages"]) - 1))
        block = data["stages"][i]["block"]
        knob = draw(st.sampled_from([k for k, users in KNOB_USERS.items() if block not in users]))
        data["stages"][i][knob] = {"expansion": 4.0, "proj_act": "relu", "groups": 2,
                                   "shuffle": True, "ungrouped_first": True, "bn": False,
                                   "mid_act": False, "bias": True}[knob]
        path = f"stages[{i}].{knob}"
        return kind, path, re.escape(path) + ".*does not apply"
    # groups: a shuffle stage at width 1.0 whose bottleneck (channels/4) the groups do not split
    i = draw(st.integers(0, len(data["stages"]) - 1))
    stage = data["stages"][i]
    for key in ("expansion", "proj_act", "bn", "mid_act", "bias"):
        stage.pop(key, None)
    g = draw(st.sampled_from([2, 3, 4, 8]))
    stage.update(block="shuffle", groups=g, channels=4 * (g * draw(st.integers(8, 40)) + 1))
    data["width"] = 1.0
    return kind, f"stages[{i}]", r"stages\[\d+\]\.(groups|channels)"


@st.composite
def corrupted_specs(draw):
    space = load_space(draw(st.sampled_from(SPACES)))
    params = space.sample(HypothesisSampler(draw(st.data())))
    try:
        spec = space.to_spec(params, **CIFAR)
    except SpecError:
        spec = space.to_spec({}, **CIFAR)  # the base network
    data = spec_to_dict(spec)
    kind, path, pattern = corrupt(draw, data)
    return data, kind, path, pattern


def check_invalid(case) -> None:
    data, kind, path, pattern = case
    model = None
    with pytest.raises(SpecError) as info:
        spec = checked(spec_from_dict(data))
        model = nas.build_model(spec)
    assert model is None
    message = one_line(info.value)
    assert re.search(pattern, message), f"{kind} at {path}: {message!r}"
    assert len(message) < 600, message
    TOTALS["invalid"] += 1
    TOTALS[f"invalid.{kind}"] += 1


@settings(max_examples=FAST_INVALID, deadline=None, suppress_health_check=list(HealthCheck))
@given(corrupted_specs())
def test_corrupted_specs_give_one_line_naming_the_field(case):
    check_invalid(case)


@pytest.mark.slow
@settings(max_examples=FAST_INVALID * SLOW_FACTOR, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(corrupted_specs())
def test_corrupted_specs_give_one_line_naming_the_field_many(case):
    check_invalid(case)


# ----------------------------------------------------------------------------- hostile files


FILE_CASES, DATA_CASES, CHUNK = 1000, 200, 50  # the slow suite's hostile files and data folders
FILE_ARGV = {  # how each kind of file reaches nas (none of these trains: a valid file would print)
    "spec": lambda f: ["summary", f"spec={f}"],
    "config": lambda f: ["run", "preset=dsc_cnn", "--config", str(f), "--show-config"],
    "space": lambda f: ["search", "--space", str(f), "--trials", "1", *SMOKE_WORDS],
    "experiment": lambda f: ["ablate", str(f), *SMOKE_WORDS],
}
SMOKE_WORDS = ["--budget", "smoke", "--no-progress", "data.name=synthetic", "mlflow.enabled=false"]


def cli_outcome(argv: list[str]) -> tuple[int, str]:
    """`nas argv` in this process: (exit code, stderr); an exception escaping it is a traceback."""
    import contextlib
    import io

    from nas.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as ended:
            code = ended.code if isinstance(ended.code, int) else 2
    return code, err.getvalue()


def refused_in_one_line(argv: list[str], what: str) -> str | None:
    """None when `nas argv` exits non-zero with one `error:` line; else what went wrong."""
    try:
        code, err = cli_outcome(argv)
    except BaseException as exc:  # noqa: BLE001 - the traceback a user would have seen
        return f"{what}: {type(exc).__name__}: {str(exc)[:300]}"
    lines = err.strip().splitlines()
    if code == 0 or len(lines) != 1 or not lines[0].startswith("error: ") or len(lines[0]) > 1200:
        return f"{what}: exit {code}, stderr {err[-600:]!r}"
    TOTALS["hostile.refused"] += 1
    return None


def all_refused(start: int, case) -> None:
    """Cases `start` .. `start + CHUNK`: `case(seed)` -> (argv, description), each refused."""
    failures = []
    for seed in range(start, start + CHUNK):
        argv, what = case(seed)
        failures += [f for f in [refused_in_one_line(argv, f"seed {seed} {what}")] if f]
    assert not failures, "\n".join(failures)


@pytest.fixture
def no_ray(monkeypatch, tmp_path):
    """A hostile file must be refused before any worker starts: reaching Ray fails the case."""
    import nas.workers

    def refuse(*args, **kwargs):
        raise AssertionError("a hostile file got as far as starting Ray")

    monkeypatch.setattr(nas.workers, "init_ray", refuse)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("NAS_DATA", str(tmp_path / "data"))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("start", range(0, FILE_CASES, CHUNK))
def test_hostile_files_are_refused_in_one_line(no_ray, tmp_path, start):
    from hostile_files import hostile_file

    def case(seed: int) -> tuple[list[str], str]:
        kind, how, path = hostile_file(seed, tmp_path)
        TOTALS[f"hostile.{kind}.{how}"] += 1
        return FILE_ARGV[kind](path), f"{kind} {how}"

    all_refused(start, case)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("start", range(0, DATA_CASES, CHUNK))
def test_corrupted_data_folders_are_refused_in_one_line(no_ray, tmp_path, start):
    from hostile_files import corrupted_data

    def case(seed: int) -> tuple[list[str], str]:
        what, words = corrupted_data(seed, tmp_path / f"d{seed}")
        TOTALS["hostile.data"] += 1
        return ["run", "preset=dsc_cnn", *words, "train.epochs=1", "mlflow.enabled=false", "--no-progress"], what

    all_refused(start, case)


# ----------------------------------------------------------------------------- report


@pytest.fixture(scope="module", autouse=True)
def report_totals(request):
    """Print the case counts when the module ends (past the output capture, so -q shows it)."""
    yield
    if not TOTALS:
        return
    kinds = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(TOTALS.items())
                      if k.startswith("invalid."))
    line = (f"fuzz totals: {TOTALS['valid_built'] + TOTALS['valid_refused']} space points"
            f" ({TOTALS['valid_built']} built, ran and counted exactly; {TOTALS['valid_refused']}"
            f" refused with one line), {TOTALS['invalid']} corrupted specs refused ({kinds}),"
            f" {TOTALS['hostile.refused']} hostile files and data folders refused in one line"
            f" ({TOTALS['hostile.data']} data folders)")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)


def test_fuzz_ran_enough_cases():
    """Runs last in the module: the strategies must not be mostly rejections."""
    if not TOTALS:
        pytest.skip("the property tests did not run first")
    for name in SPACES:  # each space that ran built nearly every point it drew
        if TOTALS[f"space.{name}"]:
            assert TOTALS[f"space.{name}"] >= 0.9 * FAST_VALID, TOTALS
    if TOTALS["invalid"]:
        assert TOTALS["invalid"] >= FAST_INVALID * 0.9, TOTALS
        assert all(TOTALS[f"invalid.{k}"] > 0 for k in ("wrong_type", "negative", "huge", "null",
                                                         "missing", "unknown_key", "wrong_knob",
                                                         "groups")), TOTALS
