"""Search spaces: the shipped YAML files, sampling (seeded, Optuna, Ray Tune), conditions, paper
presets as points of their spaces, and one-line errors for bad space files and bad points."""

from __future__ import annotations

import dataclasses
import functools
import textwrap

import numpy as np
import optuna
import pytest

import nas
from nas.errors import SpecError
from nas.presets import load_preset
from nas.space import OptunaChooser
from ray_param_space import from_ray, ray_param_space
from nas.plan import plan
from nas.space import RandomChooser, SearchSpace, load_space, parse_space, space_names
from nas.spec import BLOCK_KNOBS, NetSpec

SHIPPED = ["mixed", "mobilenet_v1", "mobilenet_v2", "shufflenet"]
CIFAR = {"resolution": 32, "num_classes": 10}
SAMPLES = 200

optuna.logging.set_verbosity(optuna.logging.WARNING)


@functools.cache
def shipped(name: str) -> SearchSpace:
    """A shipped space, parsed once for the module (loading checks every choice)."""
    return load_space(name)


def valid_fraction(space: SearchSpace, points: list[dict]) -> float:
    valid = 0
    for point in points:
        try:
            spec = space.to_spec(point, **CIFAR)
        except SpecError:
            continue
        counted = nas.count(spec)
        assert counted.params > 0 and counted.macs > 0
        valid += 1
    return valid / len(points)


def filled(spec: NetSpec) -> NetSpec:
    """The spec with every block knob left empty written out as its default (same network),
    and the name and data-set sizes cleared: what "the same architecture" means here."""
    stages = tuple(
        dataclasses.replace(s, **{k: s.knob(k) for k in BLOCK_KNOBS[s.block]}) for s in spec.stages
    )
    return spec.replace(name="", stages=stages, num_classes=10,
                        input=dataclasses.replace(spec.input, resolution=32))


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# ----------------------------------------------------------------------------- shipped spaces


def test_shipped_spaces_are_listed():
    assert space_names() == SHIPPED


FINAL_MAP_AT_32 = {"mobilenet_v1": 2}


@pytest.mark.parametrize("name", SHIPPED)
def test_space_loads_with_description_and_base_trains_at_32(name):
    space = load_space(name)
    assert space.name == name and space.description and space.path.endswith(f"{name}.yaml")
    assert len(space.labels()) == len(set(space.labels())) >= 4
    base = space.to_spec({}, **CIFAR)  # no choice made: the base network
    # the common CIFAR port of the family: MobileNetV1 (kuangliu) keeps every stage stride and
    # ends on 2x2; the MobileNetV2 and ShuffleNet ports end on a 4x4 map
    assert plan(base).stages[-1].out_size == FINAL_MAP_AT_32.get(name, 4)


@pytest.mark.parametrize("name", SHIPPED)
def test_random_samples_are_mostly_valid_and_counted(name):
    space = shipped(name)
    sampler = RandomChooser(seed=1)
    points = [space.sample(sampler) for _ in range(SAMPLES)]
    fraction = valid_fraction(space, points)
    print(f"{name}: {fraction:.1%} of {SAMPLES} random samples build at 32x32")
    assert fraction >= 0.8


def test_random_sampler_is_deterministic():
    space = shipped("mixed")

    def draw(seed: int) -> list[dict]:
        sampler = RandomChooser(seed)
        return [space.sample(sampler) for _ in range(20)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_conditional_choices_exist_only_when_their_condition_holds():
    space = shipped("mixed")
    sampler = RandomChooser(seed=2)
    seen = {"ir": 0, "shuffle": 0, "ds": 0}
    for _ in range(SAMPLES):
        point = space.sample(sampler)
        for i in range(4):
            block = point[f"s{i}.block"]
            seen[block] += 1
            assert (f"s{i}.exp" in point) == (block == "ir"), point
            assert (f"s{i}.groups" in point) == (block == "shuffle"), point
    assert min(seen.values()) > 100  # every block type is sampled


# a ds base whose s0.exp exists only when s0.block=ir (lines of a space file, dedented)
CONDITIONAL = """\
    base: {stem: {channels: 16, stride: 1}, stages: [{block: ds, channels: 32}], num_classes: 10,
           input: {resolution: 32}}
    choices:
      s0.block: {options: [ds, ir], set: stages.0.block}
      s0.exp: {options: [4, 6], set: stages.0.expansion, when: {s0.block: ir}}
"""


def test_points_lists_a_finite_space_as_sample_draws_it(tmp_path):
    shufflenet = list(shipped("shufflenet").points())
    assert len(shufflenet) == 5 * 3 * 3 * 5 * 3 * 2 * 2  # groups width depths(3) kernel shuffle
    assert len({tuple(sorted(p.items())) for p in shufflenet}) == len(shufflenet)
    assert {"groups": 3, "width": 0.5, "s0.depth": 4, "s1.depth": 8, "s2.depth": 4, "kernel": 3,
            "shuffle": True} in shufflenet
    # a conditional choice appears exactly where its condition holds, as in sample()
    text = CONDITIONAL + """\
      s0.depth: {range: {low: 1, high: 3, step: 2}, set: stages.0.repeats}
    """
    points = list(load_space(str(write(tmp_path, text))).points())
    assert points == [{"s0.block": "ds", "s0.depth": 1}, {"s0.block": "ds", "s0.depth": 3},
                      {"s0.block": "ir", "s0.exp": 4, "s0.depth": 1},
                      {"s0.block": "ir", "s0.exp": 4, "s0.depth": 3},
                      {"s0.block": "ir", "s0.exp": 6, "s0.depth": 1},
                      {"s0.block": "ir", "s0.exp": 6, "s0.depth": 3}]
    floats = GOOD + "  lr_like: {range: {low: 0.1, high: 0.9}, set: head.dropout}\n"
    space = load_space(str(write(tmp_path, floats, "floats.yaml")))
    assert "lr_like is a float range: its values cannot be listed" in error_of(lambda: list(space.points()))


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_shufflenet_presets_are_points_of_the_space(groups):
    space = shipped("shufflenet")
    point = {"groups": groups, "width": 1.0, "s0.depth": 4, "s1.depth": 8, "s2.depth": 4,
             "kernel": 3, "shuffle": True}
    got = space.to_spec(point, **CIFAR)
    assert filled(got) == filled(load_preset(f"shufflenet_v1_g{groups}", **CIFAR))
    assert nas.count(got) == nas.count(load_preset(f"shufflenet_v1_g{groups}", **CIFAR))


def test_shufflenet_half_width_is_the_paper_point():
    space = shipped("shufflenet")
    point = {"groups": 3, "width": 0.5, "s0.depth": 4, "s1.depth": 8, "s2.depth": 4,
             "kernel": 3, "shuffle": True}
    assert filled(space.to_spec(point)) == filled(load_preset("shufflenet_v1_g3", width=0.5))


def test_mobilenet_presets_are_points_of_their_spaces():
    v1 = {"width": 1.0, "s1.depth": 2, "s2.depth": 2, "s3.depth": 6, "s4.depth": 2, "kernel": 3,
          "act": "relu"}
    assert shipped("mobilenet_v1").to_spec(v1) == load_preset("mobilenet_v1")
    v2 = {"width": 1.0, **{f"s{i}.exp": 6 for i in range(1, 7)}, "s1.depth": 2, "s2.depth": 3,
          "s3.depth": 4, "s4.depth": 3, "s5.depth": 3, "kernel": 3, "proj_act": "identity"}
    got = shipped("mobilenet_v2").to_spec(v2, **CIFAR)
    assert filled(got) == filled(load_preset("mobilenet_v2", **CIFAR))
    assert nas.count(shipped("mobilenet_v2").to_spec(v2)).params == 3504872


def test_partial_points_keep_the_base_and_driver_values_are_accepted():
    space = shipped("mobilenet_v2")
    assert space.to_spec({}) == load_preset("mobilenet_v2")
    # pandas gives 6.0 for an int column with gaps; `_`-keys and None are bookkeeping / absent
    spec = space.to_spec({"s1.exp": 6.0, "s2.depth": 4.0, "_nas_trial": 3, "s3.exp": None})
    assert spec.stages[1].expansion == 6 and spec.stages[2].repeats == 4


# ----------------------------------------------------------------------------- Optuna


@pytest.mark.parametrize("name", SHIPPED)
def test_optuna_trials_sample_the_space(name):
    space = shipped(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    points = []
    for _ in range(30):
        trial = study.ask()
        point = space.sample(OptunaChooser(trial))
        assert trial.params == point  # same labels, same values: what the driver stores
        points.append(point)
        study.tell(trial, 0.0)
    assert valid_fraction(space, points) >= 0.8
    assert len({tuple(sorted(p.items())) for p in points}) > 20


def test_optuna_stores_non_scalar_options_as_text_and_to_spec_reads_them_back():
    space = parse_space({
        "base": "dsc_cnn",
        "choices": {"hidden": {"options": [[], [128], [256, 128]], "set": "head.hidden"},
                    "pool_size": {"options": [1, 3], "set": "head.pool_size"}},
    })
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        point = space.sample(OptunaChooser(trial))
        assert isinstance(point["hidden"], list) and isinstance(trial.params["hidden"], str)
        assert space.to_spec(trial.params) == space.to_spec(point)
        assert space.to_spec(point).head.hidden == tuple(point["hidden"])
        study.tell(trial, 0.0)


# ----------------------------------------------------------------------------- Ray Tune


def noop_trainable(config: dict) -> None:
    pass


def ray_points(space: SearchSpace, n: int, seed: int) -> list[dict]:
    """`n` configs from Tune's default random search, without starting Ray."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    generator = BasicVariantGenerator(random_state=seed)
    generator.add_configurations({"t": {"run": noop_trainable, "config": ray_param_space(space),
                                        "num_samples": n}})
    return [generator.next_trial().config for _ in range(n)]


def test_ray_param_space_resolves_conditions_through_the_variant_generator():
    space = shipped("mixed")
    configs = ray_points(space, 60, seed=0)
    seen = set()
    for config in configs:
        for i in range(4):
            block = config[f"s{i}.block"]
            seen.add(block)
            assert (config[f"s{i}.exp"] is not None) == (block == "ir"), config
            assert (config[f"s{i}.groups"] is not None) == (block == "shuffle"), config
            if block == "ir":
                assert config[f"s{i}.exp"] in (2, 4, 6)
    assert seen == {"ds", "ir", "shuffle"}
    points = [from_ray(c) for c in configs]
    assert valid_fraction(space, points) >= 0.8
    # to_spec takes Ray's config as is: None means "not chosen", `_draws` is bookkeeping
    assert space.to_spec(configs[0], **CIFAR) == space.to_spec(points[0], **CIFAR)
    assert ray_points(space, 5, seed=3) == ray_points(space, 5, seed=3)  # seeded


@pytest.mark.parametrize("name", SHIPPED)
def test_ray_param_space_samples_every_shipped_space(name):
    from ray.tune.search.variant_generator import generate_variants

    space = shipped(name)
    rng = np.random.default_rng(0)
    points = [from_ray(next(generate_variants({"config": ray_param_space(space)},
                                              random_state=rng))[1]["config"])
              for _ in range(30)]
    for point in points:
        assert space.normalize(point) == point  # every value is in its choice's domain
    assert valid_fraction(space, points) >= 0.8


def test_ray_ranges_cover_both_ends():
    space = parse_space({"base": "dsc_cnn", "choices": {
        "depth": {"range": {"low": 1, "high": 3}, "set": "stages.1.repeats"},
        "even": {"range": {"low": 2, "high": 6, "step": 2}, "set": "stages.2.repeats"},
        "drop": {"range": {"low": 0.01, "high": 0.5, "log": True}, "set": "head.dropout"}}})
    points = [from_ray(c) for c in ray_points(space, 80, seed=1)]
    assert {p["depth"] for p in points} == {1, 2, 3}
    assert {p["even"] for p in points} == {2, 4, 6}
    assert all(0.01 <= p["drop"] <= 0.5 for p in points)
    assert {RandomChooser(s).integer("x", 2, 6, 2) for s in range(50)} == {2, 4, 6}


# ----------------------------------------------------------------------------- errors


def write(tmp_path, text: str, name: str = "space.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """\
base: shufflenet_v1_g3
choices:
  width: {options: [0.5, 1.0], set: width}
  s0.depth: {range: {low: 2, high: 4}, set: stages.0.repeats}
"""


@pytest.mark.parametrize("text,expected", [
    ("", "the file is empty"),
    ("base: [unclosed\n", "malformed YAML"),
    ("- 1\n- 2\n", "must be a mapping with base: and choices:"),
    (GOOD + "descripton: x\n", "descripton is not a key here; did you mean 'description'?"),
    ("choices: {w: {options: [1.0], set: width}}\n", "base is required"),
    ("base: shufflenet_v1_g5\nchoices: {w: {options: [1.0], set: width}}\n",
     "base: unknown preset 'shufflenet_v1_g5'; did you mean"),
    (GOOD.replace("set: width}", "sett: width}"),
     "choices.width.sett is not a key here; did you mean 'set'?"),
    (GOOD.replace("set: width}", "set: widht}"), "choices.width: widht is not a field of spec;"
     " did you mean 'width'?"),
    (GOOD.replace("stages.0.repeats", "stages.0.repeat"),
     "choices.s0.depth: stages[0].repeat is not a field of stages[0]; did you mean 'repeats'?"),
    (GOOD.replace("stages.0.repeats", "stages.5.repeats"), "there is no stage 5"),
    (GOOD + "  k: {options: [3, 5], set: stages.*.kernel, when: {s0.dpth: 3}}\n",
     "choices.k.when.s0.dpth is not an earlier choice; did you mean 's0.depth'?"),
    (GOOD + "  k: {options: [3, 5], set: stages.*.kernel, when: {s0.depth: 7}}\n",
     "choices.k.when: s0.depth=7 must be between 2 and 4"),
    (GOOD.replace("[0.5, 1.0]", "[20.0, 1.0]"), "choices.width: width=20.0 must be > 0 and <= 16.0"
     " (1.0 is the paper's net) (at width=20.0)"),
    (GOOD.replace("[0.5, 1.0]", "[0.5, fat]"), "choices.width: width must be a number, got 'fat'"),
    (GOOD.replace("{options: [0.5, 1.0], set: width}", "{set: width}"),
     "choices.width. needs exactly one of options"),
    (GOOD.replace("{options: [0.5, 1.0], set: width}", "{options: [0.5, 1.0]}"),
     "choices.width sets nothing"),
    (GOOD.replace("high: 4", "high: 5, step: 2"), "choices.s0.depth.range.high=5 is not low=2 plus"
     " a multiple of step=2; use 4"),
    (GOOD.replace("high: 4", "high: 4, log: true"), "choices.s0.depth.range.log applies to float"
     " ranges"),
    (GOOD.replace("set: width}", "set: width, values: {0.7: {}}}"),
     "choices.width.values.0.7 is not an option (options: 0.5, 1.0)"),
    (GOOD.replace("width:", "_width:"), "label '_width' must start with a letter"),
])
def test_bad_space_files_give_one_line_errors(tmp_path, text, expected):
    path = write(tmp_path, text)
    message = error_of(load_space, str(path))
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_bracket_paths_and_aliases_work_in_set():
    space = parse_space({"base": "mobilenet_v1", "choices": {
        "kernel": {"options": [5], "set": "stages[*].kernel"},
        "s3.depth": {"options": [4], "set": "stages[3].repeats"},
        "res": {"options": [160], "set": "resolution"}}})
    spec = space.to_spec({"kernel": 5, "s3.depth": 4, "res": 160})
    assert {s.kernel for s in spec.stages} == {5}
    assert spec.stages[3].repeats == 4 and spec.input.resolution == 160
    # a caller's override of a field a choice wrote is refused, not silently applied
    assert "override resolution=32 would overwrite choice 'res'" in \
        error_of(space.to_spec, {"res": 160}, resolution=32)


def test_unknown_space_name_suggests_a_shipped_one():
    assert "did you mean 'shufflenet'?" in error_of(load_space, "shufflenett")


def test_options_that_do_not_build_are_allowed_but_the_first_must(tmp_path):
    text = GOOD + "  groups: {options: [3, 5], set: stages.*.groups}\n"  # 5 does not divide 240
    space = load_space(str(write(tmp_path, text, "ok.yaml")))
    assert "ok: stages[0].groups=5 does not divide the 216-channel branch" in \
        error_of(space.to_spec, {"groups": 5})
    bad_first = GOOD + "  groups: {options: [5, 3], set: stages.*.groups}\n"
    assert "choices.groups: stages[0].groups=5 does not divide" in \
        error_of(load_space, str(write(tmp_path, bad_first, "bad.yaml")))


def test_conditional_parents_are_met_when_checking_the_first_option(tmp_path):
    # mixed's base stages are ds: s1.exp only builds with s1.block=ir, which the check sets
    text = CONDITIONAL + """\
      s0.typo: {options: [4], set: stages.0.expansionn, when: {s0.block: [ir]}}
    """
    message = error_of(load_space, str(write(tmp_path, text)))
    assert "choices.s0.typo: stages[0].expansionn is not a field" in message
    assert "(at s0.block=ir, s0.typo=4)" in message


@pytest.mark.parametrize("point,overrides,expected", [
    ({"widht": 0.5}, {}, "shufflenet: unknown choice 'widht'; did you mean 'width'?"),
    ({"width": 0.3}, {}, "shufflenet: width=0.3 is not one of 0.25, 0.5, 1.0"),
    ({"shuffle": 1}, {}, "shuffle=1 is not one of true, false"),
    ({"s1.depth": 9}, {}, "s1.depth=9 must be between 4 and 8"),
    ({"s1.depth": 4.5}, {}, "s1.depth=4.5 must be an integer"),
    ({"width": 0.5}, {"width": 1.0}, "override width=1.0 would overwrite choice 'width'"),
])
def test_bad_points_give_one_line_errors(point, overrides, expected):
    assert expected in error_of(shipped("shufflenet").to_spec, point, **overrides)


def test_a_conditional_choice_without_its_condition_is_refused():
    space = shipped("mixed")
    message = error_of(space.to_spec, {"s1.block": "ds", "s1.exp": 6})
    assert message == "mixed: s1.exp is only chosen when s1.block=ir (got s1.block=ds); drop it"
