"""A measured table of the `shufflenet` search space: the truth search replays are scored on.

Trains a uniform random sample of the space's feasible architectures (its paper references under
the budget's MAC limit first) at the `cpu` search budget (`nas.campaign.budget`: 15,000 training
images, the 2,000 validation images a search selects on, 2 epochs, batch 128), each with two
training seeds, and appends one row per architecture x seed to the table as it finishes:

  arch_index, arch, choices   position in the sample, a short label, the point (JSON)
  macs, params                `nas.count` at 32 px, 10 classes
  seed, budget, *_images      train.seed, the budget's name and its sizes
  val_curve                   val_acc after each epoch (JSON list); val_acc the last of it
  epoch_s, train_s            seconds of each epoch's training pass (JSON list) and their sum:
                              what a search trial spends training
  epoch_cpu_s, train_cpu_s    the same in CPU seconds of the training process: on a CPU the
                              replay's clock (`clock_s`), which a loaded machine does not inflate
  wall_s                      the whole job (build, train, validate, test)
  test_acc                    once at the end, on the whole 10,000-image test set (reporting only)
  device, precision, threads, concurrency, load_avg (the machine's 1-minute load when it ended:
  seconds taken on a shared machine show), status, error, finished

The sample order is fixed (every feasible point of the space, shuffled with SAMPLE_SEED), so a
resumed run, a larger --archs or a run on another machine extends the same list. Each training is
one `nas.job.Job` run by `nas.job.execute`: in this process with --concurrency 1, else as Ray tasks
(`nas.ablate.cells.run_cell`, placed by `nas.workers.plan_workers`, two at a time by default, one
CPU thread each as `nas search` runs them). Rows already in the table are skipped; no new training
starts once the time limit would be passed (judged by the median job so far).

    python benchmarks/space_table.py --time-limit-s 3600            # an hour more of the table
    python benchmarks/space_table.py --device cuda --concurrency 4 --time-limit-s 600
    python benchmarks/space_table.py --tiny --table /tmp/t.csv --time-limit-s 60 --archs 3  # dry run
    python benchmarks/space_table.py --table /tmp/s.csv --archs 0 data.train_subset=3000  # a timing check
    python benchmarks/space_table.py --fidelity                     # tau report from the table
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
TABLE = HERE / "data" / "shufflenet_table.csv"
SPACE = "shufflenet"
SAMPLE_SEED = 31  # the one shuffle of the space every run of this script extends
SEEDS = (0, 1)  # training seeds per architecture (train.seed; 0 is what `nas search` trains)
DEFAULT_ARCHS = 200  # sampled architectures, on top of the references
COLUMNS = ["arch_index", "arch", "choices", "macs", "params", "seed", "budget", "train_images",
           "val_images", "test_images", "epochs", "val_acc", "val_curve", "epoch_s", "train_s",
           "epoch_cpu_s", "train_cpu_s", "wall_s", "test_acc", "device", "precision", "threads", "concurrency", "load_avg", "status",
           "error", "finished"]
TINY_WORDS = ["data.name=synthetic", "data.synthetic_train=640", "data.synthetic_test=64",
              "data.train_subset=256", "data.val_size=100", "train.epochs=2", "train.batch_size=32"]


@dataclass(frozen=True)
class Arch:
    index: int  # position in the fixed sample order
    label: str
    choices: dict[str, Any]
    spec: Any  # nas.NetSpec (frozen, checked)
    macs: int
    params: int
    reference: bool = False  # one of the space's paper networks


def arch_key(choices: dict[str, Any]) -> str:
    """The table's identity of a point: its choices as sorted JSON."""
    return json.dumps(choices, sort_keys=True)


def short_label(choices: dict[str, Any]) -> str:
    """g3 w0.5 d4-8-4 k3 shuf"""
    depths = "-".join(str(choices[f"s{i}.depth"]) for i in range(3))
    return (f"g{choices['groups']} w{choices['width']} d{depths} k{choices['kernel']} "
            + ("shuf" if choices["shuffle"] else "noshuf"))


def sample_order(max_macs: float | None) -> Iterator[Arch]:
    """The references under `max_macs`, then every other feasible point of the space in one
    fixed shuffled order: any prefix is a uniform random sample of the feasible architectures."""
    import nas
    from nas.errors import SpecError
    from nas.space import load_space

    space = load_space(SPACE)
    points = [space.normalize(p) for p in space.points()]
    random.Random(SAMPLE_SEED).shuffle(points)
    named = [(name, space.normalize(p)) for name, p in space.references]
    seen: set[str] = set()
    index = 0
    for label, point in [*named, *((None, p) for p in points)]:
        key = arch_key(point)
        if key in seen:
            continue
        seen.add(key)
        try:
            spec = space.to_spec(point, resolution=32, num_classes=10)
        except SpecError:
            continue
        counted = nas.count(spec)
        if max_macs is not None and counted.macs > max_macs:
            continue
        yield Arch(index, label or short_label(point), point, spec, counted.macs,
                   counted.params, reference=label is not None)
        index += 1


def pick(n_sampled: int, max_macs: float | None) -> list[Arch]:
    """The references under the MAC limit, then the first `n_sampled` sampled architectures."""
    out: list[Arch] = []
    for arch in sample_order(max_macs):
        if not arch.reference and sum(not a.reference for a in out) >= n_sampled:
            break
        out.append(arch)
    return out


# ----------------------------------------------------------------------------- the table file

def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _upgrade_header(path: Path) -> None:
    """A table written with fewer columns is rewritten with today's (new cells left empty)."""
    with open(path, newline="") as f:
        header = next(csv.reader(f), COLUMNS)
    if header != COLUMNS:
        rows = read_rows(path)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in COLUMNS} for r in rows)


def append_row(path: Path, row: dict[str, Any]) -> None:
    """One finished training, on disk at once (a kill loses only what was running)."""
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        _upgrade_header(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in COLUMNS})
        f.flush()
        os.fsync(f.fileno())


def result_row(arch: Arch, seed: int, budget: str, result: Any, sizes: dict[str, int],
               concurrency: int, threads: int) -> dict[str, Any]:
    """A table row from a `nas.job.JobResult`."""
    curve = [h.get("val_acc") for h in result.history]
    epoch_s = [round(float(h.get("epoch_s", 0.0)), 3) for h in result.history]
    cpu_s = [round(float(h.get("cpu_s", 0.0)), 3) for h in result.history]
    return {"arch_index": arch.index, "arch": arch.label, "choices": arch_key(arch.choices),
            "macs": arch.macs, "params": arch.params, "seed": seed, "budget": budget, **sizes,
            "test_images": result.test_images or sizes["test_images"], "epochs": len(curve),
            "val_acc": curve[-1] if curve else "", "val_curve": json.dumps(curve),
            "epoch_s": json.dumps(epoch_s), "train_s": round(sum(epoch_s), 3),
            "epoch_cpu_s": json.dumps(cpu_s), "train_cpu_s": round(sum(cpu_s), 3),
            "wall_s": round(result.wall_s, 3), "test_acc": "" if result.test_acc is None else result.test_acc,
            "device": result.device, "precision": result.precision, "threads": threads,
            "concurrency": concurrency, "load_avg": round(os.getloadavg()[0], 2),
            "status": result.status.value, "error": result.error,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}


@dataclass(frozen=True)
class Measured:
    """An architecture of the table with every seed's completed training."""

    label: str
    choices: dict[str, Any]
    macs: int
    val_curve: dict[int, list[float]]  # seed -> val_acc after each epoch
    epoch_s: dict[int, list[float]]  # seed -> seconds of each epoch's training pass (see clock_s)
    test_acc: dict[int, float]  # seed -> accuracy on the test set


def clock_s(row: dict[str, str]) -> list[float]:
    """A training's clock, per epoch: on a CPU its process's CPU seconds (a second training or
    anything else on a shared machine does not inflate them; one thread each, as a search
    trains), else (a GPU, or rows from before the CPU clock) wall seconds."""
    if row.get("device", "").startswith("cpu") and row.get("epoch_cpu_s"):
        return json.loads(row["epoch_cpu_s"])
    return json.loads(row["epoch_s"])


def load_table(path: Path) -> list[Measured]:
    """The table's architectures trained to the end with every seed in SEEDS, in sample order."""
    rows = [r for r in read_rows(path) if r["status"] == "COMPLETED" and r["test_acc"]]
    if not rows:
        raise SystemExit(f"{path}: no completed rows; fill it with benchmarks/space_table.py")
    by_arch: dict[str, list[dict[str, str]]] = {}
    for r in sorted(rows, key=lambda r: int(r["arch_index"])):
        by_arch.setdefault(r["choices"], []).append(r)
    out = []
    for key, arch_rows in by_arch.items():
        seeds = {int(r["seed"]): r for r in arch_rows}
        if not set(SEEDS) <= set(seeds):
            continue
        r0 = arch_rows[0]
        out.append(Measured(r0["arch"], json.loads(key), int(r0["macs"]),
                            {s: json.loads(seeds[s]["val_curve"]) for s in SEEDS},
                            {s: clock_s(seeds[s]) for s in SEEDS},
                            {s: float(seeds[s]["test_acc"]) for s in SEEDS}))
    return out


# ----------------------------------------------------------------------------- fidelity

def _rank_stats() -> Any:
    """benchmarks/fidelity.py's Kendall tau-b, bootstrap interval and residuals on log MACs."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import fidelity

    return fidelity


def _tau_cell(x: list[float], y: list[float]) -> str:
    f = _rank_stats()
    if len(x) < 3:
        return "-"
    lo, hi = f.tau_ci95(x, y)
    return f"{f.kendall_tau_b(x, y):.2f} [{lo:.2f}, {hi:.2f}]"


def report(path: Path) -> int:
    """Kendall tau between the two training seeds (the noise ceiling), beyond what log10 MACs
    explains, and within each width; 95% intervals by bootstrap over architectures."""
    from nas.table import format_table

    f, archs = _rank_stats(), load_table(path)
    a, b = SEEDS
    macs = [m.macs for m in archs]
    epochs = min(len(m.val_curve[a]) for m in archs)
    measures = {f"val_acc@{e}": (lambda m, s, e=e: m.val_curve[s][e - 1]) for e in range(1, epochs + 1)}
    measures["test_acc"] = lambda m, s: m.test_acc[s]
    rows = []
    for name, get in measures.items():
        x, y = [get(m, a) for m in archs], [get(m, b) for m in archs]
        truth = [m.test_acc[b] for m in archs]
        rows.append([name, _tau_cell(x, y), _tau_cell(f.beyond_cost(x, macs), f.beyond_cost(y, macs)),
                     _tau_cell(x, truth), _tau_cell(f.beyond_cost(x, macs), f.beyond_cost(truth, macs))])
    rows.append(["MACs alone", "-", "-", _tau_cell([float(c) for c in macs], [m.test_acc[b] for m in archs]), "-"])
    print(f"{path}: {len(archs)} architectures x seeds {a}, {b}; Kendall tau-b [95% bootstrap interval]")
    print(format_table(["measure (seed 0)", "vs seed 1", "beyond MACs", "vs seed 1 test_acc",
                        "beyond MACs"], rows, align="lllll"))
    final, truth = [m.val_curve[a][epochs - 1] for m in archs], [m.test_acc[b] for m in archs]
    lo, hi = f.tau_difference_ci95(final, [float(c) for c in macs], truth)
    print(f"val_acc@{epochs} minus MACs alone, tau against seed {b}'s test_acc: "
          f"{f.kendall_tau_b(final, truth) - f.kendall_tau_b([float(c) for c in macs], truth):+.2f}"
          f" [{lo:+.2f}, {hi:+.2f}] (paired bootstrap)")
    widths = sorted({m.choices["width"] for m in archs})
    rows = []
    for w in widths:
        sub = [m for m in archs if m.choices["width"] == w]
        last = [m.val_curve[a][epochs - 1] for m in sub]
        rows.append([w, len(sub), _tau_cell(last, [m.val_curve[b][epochs - 1] for m in sub]),
                     _tau_cell(last, [m.test_acc[b] for m in sub])])
    print(f"\nwithin each width (val_acc@{epochs} of seed {a}):")
    print(format_table(["width", "archs", "vs seed 1 val_acc", "vs seed 1 test_acc"], rows, align="rrll"))
    return 0


# ----------------------------------------------------------------------------- running

def run_config(args: argparse.Namespace, seed: int) -> Any:
    from nas.campaign.budget import get_budget
    from nas.config import load_run_config

    words = [f"train.seed={seed}", f"device={args.device}"]
    if args.data_root:
        words.append(f"data.root={args.data_root}")
    return load_run_config([*words, *(TINY_WORDS if args.tiny else []), *args.overrides],
                           base=get_budget("search", "cpu").run_layer())


def todo_list(args: argparse.Namespace, done: set[tuple[str, int]]) -> list[tuple[Arch, int]]:
    from nas.campaign.budget import get_budget

    archs = pick(args.archs, get_budget("search", "cpu").default_max_macs)
    return [(a, s) for a in archs for s in SEEDS if (arch_key(a.choices), s) not in done]


def _existing(path: Path, budget: str) -> set[tuple[str, int]]:
    rows = read_rows(path)
    other = {r["budget"] for r in rows} - {budget}
    if other:
        raise SystemExit(f"{path} holds rows of budget {', '.join(sorted(other))}, not {budget!r};"
                         " use another --table")
    return {(r["choices"], int(r["seed"])) for r in rows}


class Clock:
    """Whether another training still fits the time limit (the median job so far as its guess)."""

    def __init__(self, limit_s: float):
        self.start, self.limit_s, self.jobs = time.perf_counter(), limit_s, []

    def fits(self) -> bool:
        guess = statistics.median(self.jobs) if self.jobs else 0.0
        return time.perf_counter() - self.start + guess <= self.limit_s

    def done(self, wall_s: float) -> None:
        self.jobs.append(wall_s)


def _in_process(jobs: list, data: Any, clock: Clock, on_done) -> None:
    from nas.job import execute

    for item, job in jobs:
        if not clock.fits():
            return
        on_done(item, execute(job, data).result)


def _on_ray(jobs: list, data: Any, clock: Clock, on_done, args: argparse.Namespace) -> None:
    """`args.concurrency` Ray tasks at once through the product's task loop
    (`nas.campaign.tasks.run_tasks`), each `nas.ablate.cells.run_cell` (the ablation's task: the
    device Ray assigned, then `nas.job.execute`); none starts past the time limit."""
    import ray

    from nas.ablate.cells import run_cell
    from nas.campaign.tasks import run_tasks
    from nas.workers import init_ray, plan_workers

    workers = plan_workers(init_ray(), accelerator=args.device, concurrency=args.concurrency)
    print(f"  {workers.describe()}", flush=True)
    task = ray.remote(run_cell).options(**workers.task_options(), max_retries=1)
    ref = ray.put(data)
    run_tasks(jobs, lambda point: task.remote(point[1], ref, workers.kind), workers.concurrency,
              lambda point, result: on_done(point[0], result), more=clock.fits)


def fill(args: argparse.Namespace) -> int:
    from nas.data import load_data
    from nas.job import Job

    budget = "tiny" if args.tiny else "custom" if args.overrides else "cpu"
    table = Path(args.table)
    todo = todo_list(args, _existing(table, budget))
    cfgs = {s: run_config(args, s) for s in SEEDS}
    data = load_data(cfgs[SEEDS[0]].data, "cpu")
    sizes = {"train_images": len(data.train), "val_images": len(data.val), "test_images": len(data.test)}
    threads = 1 if args.device == "cpu" else 0
    print(f"space table {table}: budget {budget} ({sizes['train_images']} train, {sizes['val_images']}"
          f" val, {sizes['test_images']} test images, {cfgs[0].train.epochs} epochs); {len(todo)}"
          f" trainings to go; time limit {args.time_limit_s:g} s", flush=True)
    jobs = [((a, s), Job(a.spec, cfgs[s], threads=threads)) for a, s in todo]
    clock, counts = Clock(args.time_limit_s), {"done": 0, "failed": 0}

    def on_done(item: tuple[Arch, int], result: Any) -> None:
        arch, seed = item
        append_row(table, result_row(arch, seed, budget, result, sizes, args.concurrency, threads))
        clock.done(result.wall_s)
        counts["done" if not result.error else "failed"] += 1
        shown = "-" if result.test_acc is None else f"{result.test_acc:.4f}"
        print(f"  #{arch.index} {arch.label} seed {seed}: val {result.val_acc} test {shown}"
              f" in {result.wall_s:.0f}s {result.error}", flush=True)

    if args.concurrency <= 1:
        _in_process(jobs, data, clock, on_done)
    else:
        _on_ray(jobs, data, clock, on_done, args)
    left = len(todo) - counts["done"] - counts["failed"]
    print(f"{counts['done']} trained, {counts['failed']} failed, {left} left"
          f" ({len(read_rows(table))} rows in {table})")
    return 1 if counts["failed"] and not counts["done"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--data-root", default=os.environ.get("NAS_DATA"),
                        help="CIFAR-10 folder (default: $NAS_DATA, else nas's cache)")
    parser.add_argument("--table", default=str(TABLE), help=f"the CSV (default {TABLE.relative_to(HERE.parent)})")
    parser.add_argument("--time-limit-s", type=float, default=math.inf,
                        help="start no training that would end past this many seconds")
    parser.add_argument("--concurrency", type=int, default=2, help="trainings at once (1: in this process)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--archs", type=int, default=DEFAULT_ARCHS,
                        help=f"sampled architectures besides the references (default {DEFAULT_ARCHS})")
    parser.add_argument("--tiny", action="store_true",
                        help="synthetic data, 256 images x 2 epochs: a dry run (use another --table)")
    parser.add_argument("--fidelity", action="store_true", help="print the fidelity report, train nothing")
    parser.add_argument("overrides", nargs="*",
                        help="more `nas run` key=value words (data.train_subset=3000: a shorter check);"
                             " rows are then of budget `custom`: use another --table")
    args = parser.parse_args(argv)
    if args.fidelity:
        return report(Path(args.table))
    if (args.tiny or args.overrides) and Path(args.table).resolve() == TABLE.resolve():
        raise SystemExit("--tiny or changed-budget rows never go into the shipped table: pass"
                         " --table /tmp/other.csv")
    return fill(args)


if __name__ == "__main__":
    sys.exit(main())
