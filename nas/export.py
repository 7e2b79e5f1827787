"""A network out of PyTorch: ONNX (run by ONNX Runtime) or an ExecuTorch program lowered to XNNPACK,
each run in its runtime (`FORMATS`: write, open) on `CHECK_INPUTS` random inputs and checked against
PyTorch: max |difference| <= 1e-4 x max |PyTorch output|, at least 1e-4 (float32 kernels reorder
sums; a wrong graph differs by the outputs' own size). Fresh weights get random BatchNorm terms
first: the default init zeroes each residual block's last BN, hiding a wrong branch."""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nas.errors import NasError

CHECK_INPUTS = 3  # random inputs per check
RELATIVE_TOLERANCE = 1e-4  # of the largest |PyTorch output|
ABSOLUTE_TOLERANCE = 1e-4  # the floor
ONNX_OPSET = 17

Session = Callable[[np.ndarray], np.ndarray]  # one input batch -> the network's output


class ExportError(NasError):
    """An export that failed or does not match PyTorch (one line)."""


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    extra: str
    modules: tuple[str, ...]  # what must import for it to work
    write: Callable[[Any, Any, Path], None]  # (module in eval mode, example input, path)
    open: Callable[[Path, int], Session]  # (path, threads) -> session
    runtime: str  # what runs it, as the check's line says


def require(fmt: Format) -> None:
    """One line naming the extra when the format's packages are missing."""
    missing = [m for m in fmt.modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"{fmt.name} needs {', '.join(missing)}: pip install 'nas[{fmt.extra}]'")


def _write_onnx(model: Any, example: Any, path: Path) -> None:
    """The TorchScript exporter, 2-3x faster here than `dynamo=True` (torch 2.9's default), except for
    an adaptive pool to more than 1x1 (dsc_cnn's 3x3 head), which it refuses (printing its graph)."""
    import torch

    pools = (torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveMaxPool2d)
    legacy = all(m.output_size in (1, (1, 1)) for m in model.modules() if isinstance(m, pools))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if legacy:
            torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["image"], output_names=["logits"])
        else:  # its own opset: no version conversion
            torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False,
                              verbose=False, input_names=["image"], output_names=["logits"])


def _open_onnx(path: Path, threads: int) -> Session:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _write_executorch(model: Any, example: Any, path: Path) -> None:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.export.export(model, (example,))
        program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(program.buffer)


def _open_executorch(path: Path, threads: int) -> Session:
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    portable_lib._unsafe_reset_threadpool(threads)  # XNNPACK's pool; the only knob it exposes
    method = Runtime.get().load_program(str(path)).load_method("forward")
    return lambda x: method.execute([torch.from_numpy(x)])[0].numpy()


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", ".onnx", "onnx", ("onnx", "onnxruntime", "onnxscript"), _write_onnx, _open_onnx,
                   "ONNX Runtime (CPU)"),
    "executorch": Format("executorch", ".pte", "executorch", ("executorch",), _write_executorch,
                         _open_executorch, "ExecuTorch (XNNPACK)"),
}


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise ExportError(f"unknown export format {name!r}: use one of {', '.join(FORMATS)}")
    return FORMATS[name]


@dataclass(frozen=True)
class ExportCheck:
    path: Path
    format: str
    size_bytes: int
    max_abs_diff: float
    tolerance: float
    weights: str  # where the weights came from: a checkpoint's path, or "fresh"

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def describe(self) -> str:
        verdict = "ok" if self.ok else "MISMATCH"
        runtime = FORMATS[self.format].runtime
        return (f"{self.path}  {self.size_bytes / 1024:,.1f} KiB  check {verdict}: max |{runtime}"
                f" - PyTorch| {self.max_abs_diff:.2e} (tolerance {self.tolerance:.1e}, {CHECK_INPUTS}"
                f" random inputs; weights {self.weights})")


def tolerance(reference: np.ndarray) -> float:
    return max(ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE * float(np.abs(reference).max()))


def randomize_norms(model: Any, seed: int = 0) -> None:
    """Random BN terms, so every branch shows in the check: scale and variance in [0.5, 1.5],
    shift and mean N(0, 0.1)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))


def example_input(spec: Any, batch: int = 1, seed: int = 0) -> Any:
    import torch

    res = spec.input.resolution
    return torch.randn(batch, spec.input.channels, res, res, generator=torch.Generator().manual_seed(seed))


def write(model: Any, spec: Any, fmt: Format, path: Path, batch: int = 1) -> None:
    """The file alone (no check): what `nas.latency` times."""
    require(fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fmt.write(model.eval(), example_input(spec, batch), path)
    except Exception as err:  # noqa: BLE001 - the exporter's own error, as one line
        raise ExportError(f"{fmt.name} export of {spec.name} failed: {type(err).__name__}:"
                          f" {' '.join(str(err).split())[:300]}") from err


def export(model: Any, spec: Any, fmt: Format, path: Path, *, batch: int = 1,
           weights: str = "fresh") -> ExportCheck:
    """Write `model` (its weights as they are) to `path` and check it in its runtime."""
    import torch

    write(model, spec, fmt, path, batch)
    session = fmt.open(path, 1)
    worst, allowed = 0.0, 0.0
    with torch.inference_mode():
        for seed in range(1, CHECK_INPUTS + 1):
            x = example_input(spec, batch, seed)
            reference = model(x).numpy()
            got = session(x.numpy())
            worst = max(worst, float(np.abs(got - reference).max()))
            allowed = max(allowed, tolerance(reference))
    return ExportCheck(path, fmt.name, path.stat().st_size, worst, allowed, weights)


def model_for(spec: Any, weights: str | Path | None = None) -> tuple[Any, str]:
    """The module to export, in eval mode, and where its weights came from: a `nas run` checkpoint
    (its EMA weights when kept), a bare state dict, or fresh ones."""
    from nas import checkpoint  # torch-bearing (~3 s to import): loaded on use, nas.export loads in 0.2 s
    from nas.builder import build_model

    model = build_model(spec)
    if weights is None:
        randomize_norms(model)
        return model.eval(), "fresh"
    state = checkpoint.load(weights)
    try:
        model.load_state_dict(state.get("ema") or state.get("model") or state)
    except (RuntimeError, TypeError) as err:
        raise ExportError(f"weights {weights} do not fit this spec: {' '.join(str(err).split())[:200]}") from None
    return model.eval(), str(weights)


def export_spec(spec: Any, formats: list[str], out_dir: Path, *, stem: str | None = None,
                weights: str | Path | None = None, batch: int = 1, model: Any = None) -> list[ExportCheck]:
    """Every format of one spec into `out_dir/<stem><suffix>`; `model`: trained weights in memory."""
    chosen = [get_format(name) for name in formats]
    for fmt in chosen:
        require(fmt)
    source = "trained (in memory)"
    if model is None:
        model, source = model_for(spec, weights)
    model = model.cpu().eval()
    stem = stem or spec.name
    return [export(model, spec, fmt, Path(out_dir) / f"{stem}{fmt.suffix}", batch=batch, weights=source)
            for fmt in chosen]


def save_weights(model: Any, path: Path) -> None:
    """Trained weights beside a search's front, for a later `nas export`."""
    from nas.checkpoint import save_atomic  # torch-bearing (~3 s to import): loaded on use

    save_atomic({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, path)


def export_trained(model: Any, spec: Any, folder: Path, stem: str) -> str:
    """`--retrain-top`'s step: weights to `folder/weights/STEM.pt` (for `nas export --front`: lowering
    to ExecuTorch takes 20 s to minutes a net, too long unasked) and ONNX to `folder/export/`.
    Returns the line to print: a missing runtime or a mismatch never stops the search."""
    save_weights(model, folder / "weights" / f"{stem}.pt")
    try:
        return f"  {export_spec(spec, ['onnx'], folder / 'export', stem=stem, model=model)[0].describe()}"
    except ExportError as err:
        return f"  not exported: {err}"
