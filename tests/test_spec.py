"""Spec loading, YAML round trips, overrides and one-line errors naming the field and the fix."""

from __future__ import annotations

import pytest

import nas
from nas.cli import main
from nas.errors import SpecError
from nas.spec import spec_from_dict, spec_to_dict, spec_to_yaml

BASE = {
    "name": "t",
    "input": {"channels": 3, "resolution": 32},
    "stem": {"channels": 24, "stride": 1},
    "stages": [
        {"block": "ds", "channels": 48},
        {"block": "ir", "channels": 96, "stride": 2, "expansion": 4},
        {"block": "shuffle", "channels": 240, "stride": 2, "groups": 3, "repeats": 2},
    ],
    "num_classes": 10,
}


def with_change(path: str, value):
    from nas.spec import apply_overrides
    return apply_overrides(BASE, {path: value})


def error_of(data) -> str:
    with pytest.raises(SpecError) as info:
        nas.build_model(spec_from_dict(data))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_base_spec_builds():
    assert nas.count(spec_from_dict(BASE)).params > 0


@pytest.mark.parametrize("path,value,expected", [
    ("stages.0.block", "dsc", "stages[0].block='dsc' is not one of ds, ir, shuffle, conv; did you mean 'ds'?"),
    ("stages.0.chanels", 48, "stages[0].chanels is not a field of stages[0]; did you mean 'channels'?"),
    ("stages.2.channels", 200, "stages[2].groups=3 does not divide 200 channels"),
    ("width", 0, "width=0.0 must be > 0"),
    ("width", -0.5, "width=-0.5 must be > 0"),
    ("width", 1e9, "width=1000000000.0 must be > 0 and <= 16.0"),
    ("stages.1.stride", 3, "stages[1].stride=3 must be 1 or 2"),
    ("stages.0.repeats", -1, "stages[0].repeats=-1 must be between 1 and 64"),
    ("stages.0.repeats", 1000000, "stages[0].repeats=1000000 must be between 1 and 64"),
    ("stages.0.repeats", "two", "stages[0].repeats must be an integer, got 'two'"),
    ("stages.0.repeats", True, "stages[0].repeats must be an integer, got True"),
    ("stages.0.kernel", 4, "stages[0].kernel=4 must be an odd kernel size"),
    ("stages.0.expansion", 6, "stages[0].expansion does not apply to block 'ds' (only to ir); remove it"),
    ("stages.1.groups", 2, "stages[1].groups does not apply to block 'ir' (only to shuffle)"),
    ("stages.1.proj_act", "relu7", "stages[1].proj_act='relu7' is not one of"),
    ("act", "rleu", "did you mean 'relu'?"),
    ("head.dropout", 1.5, "head.dropout=1.5 must be in [0, 1)"),
    ("stages.2.channels", 48, "stages[2].channels=48 must exceed the 96 input channels"),
    ("stages", [], "stages is empty"),
    ("input.resolution", 100000, "input.resolution=100000 must be between 8 and 2048"),
    ("stages.1.bn", False, "stages[1].bn does not apply to block 'ir' (only to ds, conv)"),
    ("stages.2.mid_act", False, "stages[2].mid_act does not apply to block 'shuffle' (only to ds)"),
    ("stages.0.bias", "yes", "stages[0].bias must be"),
    ("stem.scaling", "half", "stem.scaling='half' is not one of full, pow2"),
])
def test_bad_specs_give_one_line_errors(path, value, expected):
    assert expected in error_of(with_change(path, value))


def test_missing_required_field_and_wrong_root_type():
    assert "stages[0].channels is required" in error_of({"stages": [{"block": "ds"}]})
    assert "must be a mapping" in error_of(["not", "a", "mapping"])


def test_yaml_round_trip(tmp_path):
    spec = nas.load_preset("mobilenet_v2", width=0.75)
    path = tmp_path / "net.yaml"
    path.write_text(spec_to_yaml(spec))
    again = nas.load_spec(path)
    assert again == spec
    assert spec_from_dict(spec_to_dict(spec)) == spec


def test_load_spec_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [ {block: ds\n")
    with pytest.raises(SpecError, match=r"bad.yaml: line \d+, column \d+: malformed YAML"):
        nas.load_spec(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(SpecError, match="the file is empty"):
        nas.load_spec(empty)
    with pytest.raises(SpecError, match="no such file"):
        nas.load_spec(tmp_path / "missing.yaml")
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(SpecError, match="malformed YAML"):
        nas.load_spec(unsafe)


def test_overrides_by_alias_path_and_wildcard():
    spec = nas.load_preset("mobilenet_v1", width=0.5, resolution=160, num_classes=10, in_channels=1,
                           **{"stages.2.kernel": 5, "stages[3].act": "relu6", "stages.*.residual": True})
    assert (spec.width, spec.input.resolution, spec.num_classes, spec.input.channels) == (0.5, 160, 10, 1)
    assert spec.stages[2].kernel == 5 and spec.stages[3].act == "relu6"
    assert all(s.residual for s in spec.stages)
    with pytest.raises(SpecError, match="there is no stage 9"):
        nas.load_preset("mobilenet_v1", **{"stages.9.kernel": 5})
    with pytest.raises(SpecError, match="did you mean 'width'"):
        nas.load_preset("mobilenet_v1", widht=0.5)


def test_cli_summary_json_and_errors(capsys):
    assert main(["summary", "preset=mobilenet_v2", "--json"]) == 0
    assert capsys.readouterr().out.strip() == '{"params": 3504872, "macs": 300774272}'
    assert main(["summary", "preset=shufflenet_v1_g3", "stages.1.channels=200"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: preset shufflenet_v1_g3: stages[1].groups=3 does not divide 200 channels")
    assert err.count("\n") == 1
    assert main(["summary", "preset=nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_cli_summary_table_and_presets(capsys, tmp_path):
    assert main(["summary", "preset=shufflenet_v1_g3", "resolution=32", "num_classes=10"]) == 0
    out = capsys.readouterr().out
    assert "960x4x4" in out and "total" in out
    path = tmp_path / "net.yaml"
    path.write_text(spec_to_yaml(nas.load_preset("dsc_cnn")))
    assert main(["summary", f"spec={path}", "in_channels=3", "--json"]) == 0
    assert '"params"' in capsys.readouterr().out
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "mobilenet_v1" in out and "4,231,976" in out and "9/9 match" in out


def test_console_script_exit_code_for_bad_spec():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "nas.cli", "summary", "preset=mobilenet_v1", "width=-1"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: preset mobilenet_v1: width=-1.0 must be > 0 and <= 16.0 (1.0 is the paper's net)"
    assert "Traceback" not in done.stderr


def test_spec_layer_loads_checked_specs_from_files(tmp_path):
    from nas.loading import checked, load_spec
    path = tmp_path / "net.yaml"
    path.write_text(spec_to_yaml(spec_from_dict(BASE)))
    assert load_spec(path, width=0.5) == checked(spec_from_dict({**BASE, "width": 0.5}))
    assert nas.load_spec is load_spec
