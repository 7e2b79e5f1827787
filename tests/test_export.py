"""`nas export`: presets and space samples to ONNX, run in ONNX Runtime against PyTorch; the
extra a missing runtime names; a mismatch caught. The full sweep (every preset at 224 and 32 px,
50 random specs of every shipped space) is `slow`; the default run takes a few of each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nas import export
from nas.errors import NasError
from nas.presets import load_preset, preset_names
from nas.space import RandomChooser, load_space, space_names

pytest.importorskip("onnxruntime")


def random_specs(space_name: str, n: int, resolution: int = 32) -> list:
    """The first `n` valid random specs of a space, seeds 0, 1, ..."""
    space, specs, seed = load_space(space_name), [], 0
    while len(specs) < n:
        try:
            spec = space.to_spec(space.sample(RandomChooser(seed)), resolution=resolution, num_classes=10)
            export.model_for(spec)  # over a size cap or invalid: the next seed
            specs.append(spec.replace(name=f"{space_name}-{seed}"))
        except NasError:
            pass
        seed += 1
    return specs


def assert_exports(specs: list, tmp_path: Path) -> None:
    for spec in specs:
        (check,) = export.export_spec(spec, ["onnx"], tmp_path)
        assert check.ok, check.describe()
        assert check.size_bytes == check.path.stat().st_size > 0
        check.path.unlink()


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_at_32_px_matches_pytorch_in_onnx_runtime(name, tmp_path):
    assert_exports([load_preset(name, resolution=32, num_classes=10)], tmp_path)


@pytest.mark.parametrize("space_name", space_names())
def test_random_specs_of_every_space_match_pytorch(space_name, tmp_path):
    assert_exports(random_specs(space_name, 1), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_at_224_px_matches_pytorch(name, tmp_path):
    assert_exports([load_preset(name, resolution=224)], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("space_name", space_names())
def test_50_random_specs_of_every_space_match_pytorch(space_name, tmp_path):
    assert_exports(random_specs(space_name, 50), tmp_path)


class _EagerDiffers(torch.nn.Module):
    """Python control flow the ONNX trace cannot see: run eagerly, it adds 1 to its output."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x)
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return out
        return out + 1.0


def test_a_mismatch_is_caught_and_stated(tmp_path):
    spec = load_preset("dsc_cnn", resolution=32, num_classes=10)
    model, _ = export.model_for(spec)
    check = export.export(_EagerDiffers(model).eval(), spec, export.FORMATS["onnx"], tmp_path / "m.onnx")
    assert not check.ok and check.max_abs_diff == pytest.approx(1.0, abs=1e-4)
    assert "MISMATCH" in check.describe() and "tolerance 1.0e-04" in check.describe()


def test_fresh_weights_have_random_norms_so_every_branch_is_checked():
    spec = load_preset("mobilenet_v2", resolution=32, num_classes=10)
    model, source = export.model_for(spec)
    scales = [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert source == "fresh" and min(float(s.abs().min()) for s in scales) >= 0.5  # no zeroed branch


def test_trained_weights_round_trip_through_a_checkpoint(tmp_path):
    spec = load_preset("dsc_cnn", resolution=32, num_classes=10)
    model, _ = export.model_for(spec)
    export.save_weights(model, tmp_path / "w.pt")
    (check,) = export.export_spec(spec, ["onnx"], tmp_path, weights=tmp_path / "w.pt")
    assert check.ok and check.weights == str(tmp_path / "w.pt")
    other = load_preset("mobilenet_v1", resolution=32, num_classes=10)
    with pytest.raises(export.ExportError, match="do not fit this spec"):
        export.model_for(other, tmp_path / "w.pt")


def nas(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_cli_prints_file_size_and_check(tmp_path):
    done = nas("export", "preset=shufflenet_v1_g8", "resolution=32", "num_classes=10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "shufflenet_v1_g8.onnx" in done.stdout and "KiB  check ok" in done.stdout
    assert (tmp_path / "shufflenet_v1_g8.onnx").is_file()


@pytest.mark.parametrize("args, message", [
    (["export", "preset=dsc_cnn", "--format", "tflite"], "unknown export format 'tflite'"),
    (["latency", "preset=dsc_cnn", "--runtime", "tvm"], "unknown runtime 'tvm'"),
    (["export", "--front", "nowhere"], "no front/trial*.yaml in nowhere"),
])
def test_bad_input_is_one_line(args, message, tmp_path):
    done = nas(*args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert message in done.stderr


def test_a_missing_runtime_names_its_extra(monkeypatch):
    from nas import latency

    absent = export.Format("onnx", ".onnx", "onnx", ("onnxruntime_not_installed",), None, None, "-")
    monkeypatch.setitem(export.FORMATS, "onnx", absent)
    with pytest.raises(export.ExportError, match=r"pip install 'nas\[onnx\]'"):
        export.export_spec(load_preset("dsc_cnn"), ["onnx"], Path("."))
    with pytest.raises(latency.LatencyError, match=r"runtime onnxruntime: .*pip install 'nas\[onnx\]'"):
        latency.check_settings(latency.LatencySettings(runtime="onnxruntime"))


@pytest.mark.slow  # lowering to XNNPACK: 30 s to 4 min a net on 2 shared cores
def test_executorch_program_matches_pytorch(tmp_path):
    pytest.importorskip("executorch")
    spec = load_preset("shufflenet_v1_g3", resolution=32, num_classes=10)
    (check,) = export.export_spec(spec, ["executorch"], tmp_path)
    assert check.ok and check.path.suffix == ".pte", check.describe()


def test_retrained_weights_are_kept_and_exported_where_export_front_finds_them(tmp_path):
    """What `nas search --retrain-top` does with a retrained net, then `nas export --front`."""
    from nas.spec import spec_to_yaml

    spec = load_preset("shufflenet_v1_g2", resolution=32, num_classes=10)
    model, _ = export.model_for(spec)
    line = export.export_trained(model, spec, tmp_path, "trial004")
    assert (tmp_path / "weights" / "trial004.pt").is_file() and (tmp_path / "export" / "trial004.onnx").is_file()
    assert "trial004.onnx" in line and "check ok" in line and "weights trained (in memory)" in line
    (tmp_path / "front").mkdir()
    (tmp_path / "front" / "trial004.yaml").write_text(spec_to_yaml(spec))
    done = nas("export", "--front", str(tmp_path), "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"weights {tmp_path / 'weights' / 'trial004.pt'}" in done.stdout and "check ok" in done.stdout
