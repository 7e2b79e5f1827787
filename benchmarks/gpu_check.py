"""The steps of `benchmarks/gpu_check.sh` (issue 32): one prepared check that turns a lent GPU
into measured defaults. Each subcommand runs one step and ends with one `GPUCHECK {json}` line
(a StepResult); `report` reads the steps' logs back and prints the table and the PASS/FAIL line.

  throughput  nas's loop / a bare loop and / the seeds' pipeline (benchmarks/train_throughput.py,
              run as it is, its table parsed) for ShuffleNet g3 0.5x and MobileNetV2 1.0x at the
              `gpu` budget's batch size; targets >= 0.95 and <= 0.33
  overhead    `train.cuda_graphs` (and with `train.compile`: reduce-overhead) against eager, the
              capture or compile time included, projected onto one `gpu` trial; the optimizer step
              of nas's own SGD (foreach kernels) against torch.optim's foreach and fused ones
  share       aggregate img/s with 1, 2, 4, 8 trials sharing the device through Ray, each a
              `nas.job.execute` in a Ray task sized by `nas.workers.plan_workers`, as a search runs them
  accuracy    `nas run preset=mobilenet_v2` at the `gpu` budget: >= 93.0% test in <= 5 min training
  search      a 12-trial `nas search` at a reduced `gpu` budget, trials sharing the device, every
              trial in MLflow (read back from the store)
  table       benchmarks/space_table.py on the device, when that file exists (else skipped)

`--dry-run`: every step tiny on the CPU (synthetic data; targets are not applied to timings there).
Step 2's measurements are in gpu_check_launch.py, the reading back in gpu_check_report.py.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gpu_check_launch import GRAPH_VARIANTS, optimizer_step_us, overhead_result, time_variant, within
from gpu_check_report import (StepResult, aggregate_rate, emit, most_at_once, parse_nas_run, parse_step_log,
                              parse_throughput, read, report)

HERE = Path(__file__).resolve().parent
TRIAL_IMAGES, RECIPE_ACC, RECIPE_TRAIN_S = 45_000, 0.93, 300.0  # the `gpu` budget's train split


# ----------------------------------------------------------------------------- shared set-up


@dataclass(frozen=True)
class Net:
    name: str
    preset: str
    width: float


NETS = (Net("shufflenet_g3_0.5x", "shufflenet_v1_g3", 0.5), Net("mobilenet_v2_1.0x", "mobilenet_v2", 1.0))


def gpu_batch() -> int:
    from nas.campaign.budget import get_budget

    return get_budget("search", "gpu").batch_size


def data_settings(args: argparse.Namespace, train: int, val: int) -> dict[str, Any]:
    """`nas run` settings for the check's data: CIFAR-10 under --data-root, or synthetic (dry run)."""
    if args.dry_run:
        return {"data.name": "synthetic", "data.synthetic_train": train + val,
                "data.synthetic_test": 64, "data.val_size": val, "data.train_subset": train}
    return {"data.root": args.data_root, "data.val_size": val, "data.train_subset": train}


def load_train_data(args: argparse.Namespace, images: int, device: Any):
    """(DataBundle, DataConfig): `images` training images, no validation split."""
    from nas.data import DataConfig, load_data

    if args.dry_run:
        dcfg = DataConfig(name="synthetic", val_size=0, synthetic_train=images, synthetic_test=16)
    else:
        dcfg = DataConfig(name="cifar10", root=args.data_root, val_size=0, train_subset=images,
                          download=False)
    return load_data(dcfg, device), dcfg


def cifar_spec(net: Net, width: float | None = None):
    import nas

    return nas.load_preset(net.preset, width=width or net.width, resolution=32, num_classes=10)


class Clock:
    """The step's own time limit, so it can skip what would not fit instead of being killed."""

    def __init__(self, limit_s: float):
        self.start, self.limit = time.perf_counter(), limit_s

    def left(self) -> float:
        return self.limit - (time.perf_counter() - self.start)


# ----------------------------------------------------------------------------- 1. throughput


def throughput_command(args: argparse.Namespace, net: Net) -> list[str]:
    cmd = [sys.executable, str(HERE / "train_throughput.py"), "--part", "loop",
           "--preset", net.preset, "--retries", "0", "--quiet-wait", "0"]
    if args.dry_run:
        return cmd + ["--quick", "--device", "cpu", "--width", "0.25", "--data", "synthetic",
                      "--images", "64", "--threads", "1"]
    return cmd + ["--device", args.device, "--width", str(net.width), "--batch", str(gpu_batch()),
                  "--images", str(20 * gpu_batch()), "--repeats", "3", "--root", args.data_root]


def step_throughput(args: argparse.Namespace, clock: Clock) -> StepResult:
    figures: dict[str, Any] = {}
    ok, parts = True, []
    for i, net in enumerate(NETS):
        try:
            later = 30 * (len(NETS) - i - 1)  # seconds kept for the nets after this one
            done = subprocess.run(throughput_command(args, net), capture_output=True, text=True,
                                  timeout=max(1.0, clock.left() - later))
            print(done.stdout + done.stderr[-2000:], flush=True)
            got = parse_throughput(done.stdout)
        except (subprocess.TimeoutExpired, ValueError) as err:  # this net fails, the other runs
            ok = False
            parts.append(f"{net.name}: {str(err).splitlines()[0][-160:]}")
            continue
        figures.update({f"{net.name}_{k}": v for k, v in got.items()})
        ok &= got["vs_bare"] >= 0.95 and got["vs_seeds"] <= 0.33
        parts.append(f"{net.name} {got['nas_img_s']:,.0f} img/s, x{got['vs_bare']:.2f} bare, "
                     f"x{got['vs_seeds']:.2f} seeds")
    summary = "; ".join(parts) + " (targets >= 0.95 bare, <= 0.33 seeds)"
    if args.dry_run and len(figures) == 3 * len(NETS):
        return StepResult("throughput", "pass", summary + " [dry run: targets not applied]", figures)
    return StepResult("throughput", "pass" if ok else "FAIL", summary, figures)


# ----------------------------------------------------------------------------- 2. overhead


def step_overhead(args: argparse.Namespace, clock: Clock) -> StepResult:
    import torch
    from nas.device import select_device
    from nas.job import one_line

    device = select_device("cpu" if args.dry_run else args.device)
    batch, images, epochs = (32, 64, 2) if args.dry_run else (gpu_batch(), 40 * gpu_batch(), 4)
    data, dcfg = load_train_data(args, images, device)
    spec = cifar_spec(NETS[0], 0.25 if args.dry_run else None)
    on_cpu = ("eager", "graphs")  # compile+graphs off CUDA is plain torch.compile: not this step's
    variants = GRAPH_VARIANTS if device.type == "cuda" else {k: GRAPH_VARIANTS[k] for k in on_cpu}
    figures: dict[str, Any] = {"optimizer_us": optimizer_step_us(device, spec, 3 if args.dry_run else 200)}
    failed, skipped = [], []
    for name, kw in variants.items():
        if name != "eager" and clock.left() < 20:
            skipped.append(f"{name} skipped ({clock.left():.0f}s left)")
            continue
        try:
            figures[name] = within(clock.left() - 5, lambda: time_variant(
                kw, spec, data, dcfg, epochs, batch, device, (TRIAL_IMAGES, recipe_settings()[1])))
        except TimeoutError as err:  # a compile slower than the cap is a finding, not a failure
            skipped.append(f"{name}: {err}")
        except Exception as err:  # noqa: BLE001 - a capture that fails is this step's FAIL
            failed.append(f"{name}: {one_line(err)[:160]}")
        if "torch._dynamo" in sys.modules:
            torch._dynamo.reset()  # the next variant compiles afresh: its capture time is its own
        print(f"{name}: {figures.get(name)}", flush=True)
        emit(overhead_result(figures, failed, skipped, args.dry_run))  # what finished, if cut short
    return overhead_result(figures, failed, skipped, args.dry_run)


# ----------------------------------------------------------------------------- 3. share


def share_plans(resources: dict[str, float], kind: str, counts: tuple[int, ...]) -> dict[int, Any]:
    """k -> the worker plan for k trials at once on one device (a 1/k share each), as
    `nas search --per-trial 1/k` makes it; on CPUs, k trials splitting the cores."""
    from nas.workers import plan_workers

    plans = {}
    for k in counts:
        if kind == "cpu":
            cpus = max(1.0, float(resources.get("CPU", 1)) // k)
            plans[k] = plan_workers(resources, accelerator="cpu", cpus_each=cpus, concurrency=k)
        else:
            plans[k] = plan_workers(resources, accelerator=kind, share=1 / k, concurrency=k)
    return plans


def share_trial(job: Any, kind: str, data: Any) -> list[tuple[float, float, int]]:
    """One trial in a Ray task, as a search trial runs: `nas.job.execute` on the granted device."""
    import dataclasses

    from nas.job import execute
    from nas.workers import worker_device

    marks: list[tuple[float, float, int]] = []

    def report(metrics: dict[str, Any]) -> None:
        end = time.time()
        marks.append((end - metrics["epoch_s"], end, round(metrics["img_per_s"] * metrics["epoch_s"])))

    result = execute(dataclasses.replace(job, device=worker_device(kind)), data, report).result
    if result.error:
        raise RuntimeError(result.error)
    return marks


def share_job(args: argparse.Namespace, images: int, epochs: int, threads: int) -> Any:
    """The trial every share size runs: ShuffleNet g3 0.5x (0.25x in a dry run), no validation."""
    from nas.config import RunConfig, TrainConfig
    from nas.data import DataConfig
    from nas.job import Job
    spec = cifar_spec(NETS[0], 0.25 if args.dry_run else None)
    cfg = RunConfig(data=DataConfig(val_size=0, train_subset=images),
                    train=TrainConfig(epochs=epochs, batch_size=32 if args.dry_run else gpu_batch()))
    return Job(spec, cfg, threads=threads, test=False)


def step_share(args: argparse.Namespace, clock: Clock) -> StepResult:
    import ray
    from nas.device import select_device
    from nas.job import one_line
    from nas.workers import init_ray

    device = select_device("cpu" if args.dry_run else args.device)
    # epochs: enough that every trial's later epochs overlap the others' despite start-up jitter
    counts, images, epochs = ((1, 2), 64, 3) if args.dry_run else ((1, 2, 4, 8), 20 * gpu_batch(), 6)
    kind = "cpu" if device.type == "cpu" else device.type
    data, _ = load_train_data(args, images, "cpu")
    plans = share_plans(init_ray(), kind, counts)
    data_ref, task = ray.put(data), ray.remote(share_trial)
    rates: dict[int, float] = {}
    errors: dict[int, str] = {}
    last_s = 0.0
    for k, plan in plans.items():
        if clock.left() < 1.5 * last_s + 5:
            print(f"{k} trials: skipped, {clock.left():.0f}s left", flush=True)
            break
        start = time.perf_counter()
        job = share_job(args, images, epochs, max(1, int(plan.cpus_each)))
        try:
            rates[k] = aggregate_rate(ray.get([task.options(**plan.task_options()).remote(job, kind, data_ref)
                                               for _ in range(k)]))
        except Exception as err:  # noqa: BLE001 - e.g. out of device memory at this size
            rates[k], errors[k] = math.nan, one_line(err)[-120:]
        last_s = time.perf_counter() - start
        print(f"{k} trials, {plan.describe()}: {rates[k]:,.0f} img/s together ({last_s:.1f}s) "
              f"{errors.get(k, '')}", flush=True)
    ray.shutdown()
    return share_result(rates, len(counts), args.dry_run, errors)


def share_result(rates: dict[int, float], wanted: int, dry_run: bool,
                 errors: dict[int, str] | None = None) -> StepResult:
    """Aggregate img/s by trials per device; a size that did not run, failed, or whose trials
    never trained at the same time (so no shared rate exists) fails the step outside a dry run."""
    errors = errors or {}
    shown = {k: errors.get(k, "no overlap") if math.isnan(v) else f"{v:,.0f}" for k, v in rates.items()}
    valid = {k: v for k, v in rates.items() if not math.isnan(v)}
    best = max(valid, key=valid.get) if valid else 1
    summary = ", ".join(f"{k}: {v}" for k, v in shown.items()) + " img/s"
    if valid and 1 in valid:
        summary += f"; best {best} a device (x{valid[best] / valid[1]:.2f} one trial's)"
    ok = len(valid) == wanted
    if len(rates) < wanted:
        summary += f"; {wanted - len(rates)} sizes not run within the cap"
    if dry_run:
        ok, summary = True, summary + " [dry run]"
    return StepResult("share", "pass" if ok else "FAIL", summary,
                      {"img_s": rates, "best_trials_per_device": best})


# ----------------------------------------------------------------------------- 4. accuracy


def recipe_settings() -> tuple[dict[str, Any], int]:
    """The documented `gpu` recipe as `nas run` settings (the budget's own run layer), and its epochs."""
    from nas.campaign.budget import get_budget

    budget = get_budget("search", "gpu")
    settings = {f"{section}.{key}": value for section, layer in budget.run_layer().items()
                if isinstance(layer, dict) for key, value in layer.items() if value is not None}
    return settings, budget.epochs


def as_words(settings: dict[str, Any]) -> list[str]:
    return [f"{key}={value}" for key, value in settings.items()]


def affordable_epochs(recipe: int, img_s: float | None, train_cap_s: float, images: int) -> int:
    """The recipe's epochs when they fit the training cap at the measured rate, else as many as fit
    (at least 1): the step then reports what that reaches, and fails for not running the recipe."""
    if not img_s or not math.isfinite(img_s):
        return recipe
    return max(1, min(recipe, int(train_cap_s * img_s / images)))


def accuracy_settings(args: argparse.Namespace, out: Path) -> tuple[dict[str, Any], int]:
    """`nas run preset=mobilenet_v2` settings: the `gpu` recipe on the check's data (a dry run: one
    epoch of a tiny synthetic set at width 0.25), and the recipe's epochs."""
    settings, recipe = recipe_settings()
    if args.dry_run:
        recipe = 1
        settings.update({"width": 0.25, "train.batch_size": 64, **data_settings(args, 128, 64)})
    else:
        settings["data.root"] = args.data_root
    settings.update({"train.epochs": recipe, "device": "cpu" if args.dry_run else args.device,
                     "output_dir": out, "mlflow.tracking_uri": f"sqlite:///{out}/mlflow.db",
                     "progress": "true"})
    return settings, recipe


def step_accuracy(args: argparse.Namespace, clock: Clock) -> StepResult:
    out = Path(args.out) / "accuracy"
    out.mkdir(parents=True, exist_ok=True)
    settings, recipe = accuracy_settings(args, out)
    measured = parse_step_log("throughput", read(Path(args.out) / "throughput.log"), 0, 0).figures
    img_s = None if args.dry_run else measured.get(f"{NETS[1].name}_nas_img_s")
    train_cap = min(RECIPE_TRAIN_S, clock.left() - 45)  # start-up, data, per-epoch val, test
    epochs = settings["train.epochs"] = affordable_epochs(recipe, img_s, train_cap, TRIAL_IMAGES)
    cmd = [sys.executable, "-m", "nas.cli", "run", "preset=mobilenet_v2", *as_words(settings)]
    print(" ".join(cmd), flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1.0, clock.left() - 2),
                          cwd=out)  # MLflow's artifacts folder goes beside its store, not here
    print(done.stdout, done.stderr[-1500:], flush=True)
    if done.returncode:
        return StepResult("accuracy", "FAIL", f"nas run exit {done.returncode}: {done.stderr.strip()[-160:]}")
    got = parse_nas_run(done.stdout)
    summary = (f"{got['epochs']:.0f}/{recipe} epochs, {got['train_s']:.0f}s training "
               f"({got['wall_s']:.0f}s wall), test {100 * got['test_acc']:.2f}%")
    ok = epochs == recipe and got["test_acc"] >= RECIPE_ACC and got["train_s"] <= RECIPE_TRAIN_S
    if epochs < recipe:
        summary += (f" (the recipe's {recipe} epochs would not fit the {train_cap:.0f}s cap at "
                    f"{img_s:,.0f} img/s)")
    if args.dry_run:
        return StepResult("accuracy", "pass", summary + " [dry run: target not applied]", got)
    return StepResult("accuracy", "pass" if ok else "FAIL", summary + " (target >= 93.0% in <= 300s)", got)


# ----------------------------------------------------------------------------- 5. search


def search_command(args: argparse.Namespace, out: Path, name: str, trials: int) -> list[str]:
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", "shufflenet", "--trials", str(trials),
           "--name", name, "--output-dir", str(out), "--no-progress", "--no-references",
           f"mlflow.tracking_uri=sqlite:///{out}/mlflow.db"]
    if args.dry_run:
        return cmd + ["--budget", "smoke", "--accelerator", "cpu", "--concurrency", "2",
                      *as_words(data_settings(args, 128, 64))]
    return cmd + ["--budget", "gpu", "--accelerator", "cuda", "--per-trial", "0.25",
                  *as_words(data_settings(args, 10_000, 2_000)), "train.epochs=3"]


def trial_runs(uri: str, name: str) -> list[Any]:
    """The search's trial runs in the MLflow store (every one the driver recorded)."""
    from mlflow.tracking import MlflowClient

    from nas import mlflow_layout as layout

    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    where = f"tags.`{layout.KIND}` = '{layout.KIND_TRIAL}' and tags.`{layout.SEARCH}` = '{name}'"
    return client.search_runs(ids, where, max_results=10_000)


def step_search(args: argparse.Namespace, clock: Clock) -> StepResult:
    from nas import mlflow_layout as layout

    trials, out = (3 if args.dry_run else 12), Path(args.out) / "search"
    name = f"gpucheck-{time.strftime('%Y%m%d-%H%M%S')}"  # a new search, also in a reused --out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = subprocess.run(search_command(args, out, name, trials), capture_output=True, text=True,
                          timeout=max(1.0, clock.left() - 10), cwd=out)
    wall = time.perf_counter() - start
    print(done.stdout[-4000:], done.stderr[-1500:], flush=True)
    runs = trial_runs(f"sqlite:///{out}/mlflow.db", name)
    numbers = {r.data.tags.get(layout.TRIAL) for r in runs}
    statuses = statistics.multimode([r.data.tags.get(layout.STATUS, "?") for r in runs] or ["none"])
    spans = [(r.info.start_time, r.info.end_time) for r in runs if r.info.end_time]
    at_once = most_at_once(spans)
    figures = {"wall_s": wall, "trials_in_mlflow": len(numbers), "most_at_once": at_once,
               "exit": done.returncode}
    summary = (f"{len(numbers)}/{trials} trials in MLflow (mostly {statuses[0]}), up to {at_once} "
               f"at once, {wall:.0f}s wall, exit {done.returncode}")
    ok = done.returncode == 0 and len(numbers) == trials and (args.dry_run or (at_once > 1 and wall <= 120))
    return StepResult("search", "pass" if ok else "FAIL", summary + ("" if args.dry_run else
                      " (target: 12 of 12, shared, <= 120s)"), figures)


# ----------------------------------------------------------------------------- 6. space table


def step_table(args: argparse.Namespace, clock: Clock) -> StepResult:
    script = HERE / "space_table.py"
    if not script.exists():
        return StepResult("table", "skip", "benchmarks/space_table.py does not exist yet: skipped")
    table = Path(args.table or Path(args.out) / "space_table.csv").resolve()
    cmd = [sys.executable, str(script), "--data-root", args.data_root or str(Path(args.out) / "data"),
           "--table", str(table), "--time-limit-s", str(max(5, int(clock.left() - 15)))]
    cmd += ["--tiny", "--device", "cpu"] if args.dry_run else ["--concurrency", "4", "--device", args.device]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1.0, clock.left() - 2),
                          cwd=args.out)
    print(done.stdout[-4000:], done.stderr[-1500:], flush=True)
    rows = max(0, len(read(table).splitlines()) - 1)
    status = "pass" if done.returncode == 0 else "FAIL"
    return StepResult("table", status, f"exit {done.returncode}, {table.name} has {rows} rows",
                      {"rows": rows, "exit": done.returncode})


# ----------------------------------------------------------------------------- report and CLI

STEPS: dict[str, Callable[[argparse.Namespace, Clock], StepResult]] = {
    "throughput": step_throughput, "overhead": step_overhead, "share": step_share,
    "accuracy": step_accuracy, "search": step_search, "table": step_table,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=[*STEPS, "report"])
    p.add_argument("--out", required=True, help="the folder for logs, stores and the table")
    p.add_argument("--dry-run", action="store_true", help="tiny, on the CPU, synthetic data")
    p.add_argument("--device", default="cuda")
    p.add_argument("--data-root", default=None, help="folder holding cifar-10-batches-py/")
    p.add_argument("--time-limit-s", type=float, default=60.0, help="this step's cap")
    p.add_argument("--table", default=None, help="space table CSV (default OUT/space_table.csv)")
    p.add_argument("--steps", default=",".join(STEPS), help="report: which steps' logs")
    args = p.parse_args(argv)
    args.out = str(Path(args.out).resolve())  # the steps run tools in folders of their own
    args.data_root = args.data_root and str(Path(args.data_root).expanduser().resolve())
    if args.step == "report":
        return report(Path(args.out), args.steps.split(","))
    try:
        result = STEPS[args.step](args, Clock(args.time_limit_s))
    except Exception as err:  # noqa: BLE001 - one step's failure is a FAIL line, the check goes on
        from nas.job import one_line  # a user error's message, anything else "Type: message"

        result = StepResult(args.step, "FAIL", one_line(err)[:200])
    emit(result)
    sys.stdout.flush()
    os._exit(0)  # now: a compile interrupted at its cap may leave worker pools that delay exit


if __name__ == "__main__":
    sys.exit(main())
