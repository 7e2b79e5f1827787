"""Search efficiency: how close each trial of a search trains to the bare step of its own net.

Reads a finished search (its folder: `search.json`, `trials.csv`; and the MLflow store its
trials were recorded in: each trial's run holds its per-epoch `img_per_s` and `cpu_s`, its
`nas.precision` tag and its `spec.yaml`), or runs a real N-trial search first (--trials N), and
prints per trained trial

  trial img/s   images of its training passes / their seconds (from the per-epoch img_per_s;
                validation, reporting and start-up are outside it)
  core          CPU seconds of those passes / their seconds / threads: below 1 the trial waited
                for a core another process held (a neighbour on a shared machine, the driver)
  bare img/s    the same net's bare step (forward, loss, backward, optimizer step, on batches
                made beforehand) in the trial's format, batch size and thread count, measured
                here one net at a time
  ratio         trial img/s / bare img/s       (acceptance, on a quiet machine: median >= 0.85)
  cpu ratio     the same per CPU second: the loop's own cost beyond the bare step with the waits
                for a core taken out (steadier on a shared machine; needs cpu_s)
  xK img/s      (--corun K, default the search's trials at a time; 1: off) the bare step of each
                copy with K copies at once, as K side-by-side trials run: what the machine takes
                from trials that share it (caches, memory bandwidth, SMT siblings), and
  ratio xK      trial img/s / that rate: what is left to the trial's own code

then the medians, and the whole-run rate (images all trials trained / the search's wall seconds)
beside the best bare rate of its nets and concurrency x that rate.

    python benchmarks/search_efficiency.py --search searches/NAME            # a finished search
    python benchmarks/search_efficiency.py --search DIR --tracking-uri sqlite:////path/mlflow.db
    python benchmarks/search_efficiency.py --trials 10 --workdir /tmp/eff     # runs a real search
    python benchmarks/search_efficiency.py --trials 2 --concurrency 2 data.train_subset=1000

The store is --tracking-uri, else the search's `mlflow.tracking_uri=` word, else
$MLFLOW_TRACKING_URI, else ./mlflow.db (where `nas search` writes by default). Nothing is timed
while the search runs; the bare steps run after it, so run this on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import nas
from nas import mlflow_layout as ml
from nas.builder import build_model
from nas.campaign.budget import get_budget
from nas.config import TrainConfig, load_run_config
from nas.device import Precision, configure_threads
from nas.optim import OPTIMIZERS, param_groups
from nas.spec import spec_from_dict, spec_to_dict
from nas.table import format_table
from nas.tracking import tracking_uri

TRAINED = ("COMPLETED", "PRUNED")
TARGET = 0.85  # acceptance: the median trial reaches this share of its bare step
FORMATS = {"bf16": "bfloat16", "fp16": "float16", "fp32": None}  # nas.precision tag -> autocast dtype
# pandas, MLflow and the search driver (Ray, Optuna) are imported where they are used: every bare
# step runs in a child process that imports this module, and they add ~2 s to each (3.4 -> 5.3 s
# measured on the 2-core machine).


# ----------------------------------------------------------------------------- the arithmetic


@dataclass(frozen=True)
class Epoch:
    img_per_s: float
    cpu_s: float | None  # None: recorded before nas logged it


@dataclass(frozen=True)
class TrialRate:
    img_per_s: float  # images / seconds over all its training passes
    core: float | None  # CPU seconds / pass seconds / threads
    img_per_cpu_s: float | None
    images: int


def epoch_images(n_train: int, batch_size: int) -> int:
    """Images one training pass trains (nas.train drops the last partial batch when it can)."""
    return n_train if n_train < batch_size else n_train // batch_size * batch_size


def trial_rate(epochs: list[Epoch], images_per_epoch: int, threads: int) -> TrialRate:
    """Every pass trains the same images, so the rate over the trial is a harmonic mean."""
    seconds = sum(images_per_epoch / e.img_per_s for e in epochs)
    images = images_per_epoch * len(epochs)
    cpu = [e.cpu_s for e in epochs]
    if any(c is None for c in cpu) or not sum(cpu):
        return TrialRate(images / seconds, None, None, images)
    return TrialRate(images / seconds, sum(cpu) / seconds / threads, images / sum(cpu), images)


@dataclass(frozen=True)
class Bare:
    img_per_s: float
    img_per_cpu_s: float


@dataclass(frozen=True)
class Row:
    trial: int
    net: str  # its choices' values, "/"-joined in trials.csv's column order
    macs: float
    rate: TrialRate
    bare: Bare
    corun: Bare | None  # each copy's rate with K copies at once


def ratios(row: Row) -> dict[str, float | None]:
    """The row's ratios: trial / bare, per CPU second, and trial / bare among K copies."""
    cpu = None if row.rate.img_per_cpu_s is None else row.rate.img_per_cpu_s / row.bare.img_per_cpu_s
    corun = None if row.corun is None else row.rate.img_per_s / row.corun.img_per_s
    return {"ratio": row.rate.img_per_s / row.bare.img_per_s, "cpu": cpu, "corun": corun}


def median_of(rows: list[Row], key: str) -> float | None:
    values = [r[key] for r in map(ratios, rows) if r[key] is not None]
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class WholeRun:
    images: int
    wall_s: float
    img_per_s: float
    best_bare: float  # the fastest bare step among the search's nets
    ceiling: float  # concurrency x best_bare


def whole_run(rows: list[Row], wall_s: float, concurrency: int) -> WholeRun:
    images = sum(r.rate.images for r in rows)
    best = max(r.bare.img_per_s for r in rows)
    return WholeRun(images, wall_s, images / wall_s, best, concurrency * best)


# ----------------------------------------------------------------------------- the bare step


def bare_step(job: dict[str, Any]) -> None:
    """In a child process (--bare-step JSON): the bare step of job["spec"]; prints "ready" after
    its warm-up, waits for a line on stdin, then prints one JSON line per timed pass."""
    configure_threads(job["threads"])
    cfg = TrainConfig(**job["train"])
    name, _, layout = job["fmt"].partition("+")
    dtype = FORMATS.get(name)
    precision = Precision(getattr(torch, dtype) if dtype else None, layout == "channels_last")
    net = spec_from_dict(job["spec"])
    torch.manual_seed(0)
    model = build_model(net)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = OPTIMIZERS[cfg.optimizer](param_groups(model, cfg.weight_decay), cfg)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    shape = (cfg.batch_size, net.input.channels, net.input.resolution, net.input.resolution)
    memory = torch.channels_last if precision.channels_last else torch.contiguous_format
    batches = [(torch.randn(shape).contiguous(memory_format=memory),
                torch.randint(0, net.num_classes, (cfg.batch_size,))) for _ in range(4)]
    device = torch.device("cpu")

    def one_pass(steps: int) -> None:
        for i in range(steps):
            x, y = batches[i % len(batches)]
            with precision.autocast(device):
                loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    one_pass(2)  # warm-up: oneDNN's kernels, the allocator
    print("ready", flush=True)
    sys.stdin.readline()  # all copies start together
    for _ in range(job["repeats"]):
        cpu, wall = _cpu_s(), time.perf_counter()
        one_pass(job["steps"])
        images = job["steps"] * cfg.batch_size
        print(json.dumps([images / (time.perf_counter() - wall), images / (_cpu_s() - cpu)]), flush=True)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_bare(spec: dict, fmt: str, train: dict, threads: int, *, copies: int = 1,
                 steps: int = 6, repeats: int = 3) -> Bare:
    """Median rate of one copy, with `copies` fresh processes stepping at once (nothing else of
    this script runs meanwhile)."""
    job = json.dumps({"spec": spec, "fmt": fmt, "train": train, "threads": threads,
                      "steps": steps, "repeats": repeats})
    procs = [subprocess.Popen([sys.executable, __file__, "--bare-step", job], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    try:
        for p in procs:
            _expect(p, "ready")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [json.loads(_expect(p)) for p in procs for _ in range(repeats)]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return Bare(statistics.median(r[0] for r in results), statistics.median(r[1] for r in results))


def _expect(proc: subprocess.Popen, want: str | None = None) -> str:
    line = proc.stdout.readline().strip()
    if not line or (want is not None and line != want):
        raise RuntimeError(f"bare step process {proc.pid} ended (exit {proc.poll()}); its last line: {line!r}")
    return line


# ----------------------------------------------------------------------------- the search's records


@dataclass(frozen=True)
class Search:
    folder: Path
    uri: str
    threads: int
    concurrency: int
    train: dict[str, Any]  # the trials' TrainConfig fields
    parent_run_id: str


def open_search(folder: Path, uri: str | None) -> Search:
    state = json.loads((folder / "search.json").read_text())
    settings = state["settings"]
    budget = get_budget("search", settings["budget"])
    cfg = load_run_config(settings["overrides"], base=budget.run_layer())
    threads = max(1, int(settings["cpus_per_trial"]))  # as the search's driver sizes a trial
    concurrency = settings.get("concurrency") or max(1, (os.cpu_count() or 1) // threads)
    return Search(folder, uri or tracking_uri(cfg.mlflow.tracking_uri), threads, int(concurrency),
                  asdict(cfg.train), state["parent_run_id"])


@dataclass(frozen=True)
class Recorded:
    trial: int
    net: str  # its choices' values, "/"-joined
    macs: float
    epochs: list[Epoch]
    fmt: str  # the nas.precision tag
    spec: dict[str, Any]


def read_trials(search: Search, client: Any) -> list[Recorded]:
    """The trained trials: choices and MACs from trials.csv, the rest from their MLflow runs."""
    import pandas as pd

    table = pd.read_csv(search.folder / ml.TRIALS_CSV)
    choices = [c for c in table.columns if c.startswith(ml.CHOICE_PREFIX)]
    out = []
    for _, row in table[table["status"].isin(TRAINED)].iterrows():
        run_id = row["mlflow_run_id"]
        rates = {m.step: m.value for m in client.get_metric_history(run_id, "img_per_s")}
        cpu = {m.step: m.value for m in client.get_metric_history(run_id, "cpu_s")}
        if not rates:
            continue
        net = "/".join(str(row[c]) if pd.notna(row[c]) else "-" for c in choices)
        out.append(Recorded(int(row["trial"]), net, float(row["macs"]),
                            [Epoch(rates[s], cpu.get(s)) for s in sorted(rates)],
                            client.get_run(run_id).data.tags.get(ml.PRECISION, "fp32"),
                            _spec_of(client, run_id)))
    return out


def _spec_of(client: Any, run_id: str) -> dict[str, Any]:
    """The spec the trial trained (its run's spec.yaml)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as tmp:
        return spec_to_dict(nas.load_spec(client.download_artifacts(run_id, "spec.yaml", tmp)))


def search_wall_s(search: Search, client: Any) -> float:
    run = client.get_run(search.parent_run_id)
    wall = run.data.metrics.get(ml.WALL_TIME_S)
    return wall if wall else (run.info.end_time - run.info.start_time) / 1000


# ----------------------------------------------------------------------------- the report


def measure_rows(search: Search, trials: list[Recorded], n_train: int, corun: int, steps: int,
                 repeats: int) -> list[Row]:
    """The bare step of each distinct net once (alone, then with `corun` copies at once)."""
    per_epoch = epoch_images(n_train, search.train["batch_size"])
    cache: dict[str, tuple[Bare, Bare | None]] = {}
    rows = []
    for t in trials:
        key = json.dumps([t.spec, t.fmt], sort_keys=True)
        if key not in cache:
            alone = measure_bare(t.spec, t.fmt, search.train, search.threads, steps=steps, repeats=repeats)
            together = (measure_bare(t.spec, t.fmt, search.train, search.threads, copies=corun,
                                     steps=steps, repeats=repeats) if corun > 1 else None)
            cache[key] = (alone, together)
            print(f"  trial {t.trial}: bare {alone.img_per_s:.1f} img/s"
                  + (f", x{corun} {together.img_per_s:.1f} each" if together else ""), flush=True)
        rows.append(Row(t.trial, t.net, t.macs, trial_rate(t.epochs, per_epoch, search.threads),
                        *cache[key]))
    return rows


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_report(rows: list[Row], run: WholeRun, corun: int, concurrency: int) -> None:
    header = ["trial", "net", "MMACs", "trial img/s", "core", "bare img/s", "ratio", "cpu ratio"]
    if corun > 1:
        header += [f"x{corun} img/s", f"ratio x{corun}"]
    table = []
    for r in sorted(rows, key=lambda r: r.trial):
        q = ratios(r)
        line = [r.trial, r.net, f"{r.macs / 1e6:.2f}", f"{r.rate.img_per_s:.1f}", _fmt(r.rate.core, ".2f"),
                f"{r.bare.img_per_s:.1f}", f"{q['ratio']:.2f}", _fmt(q["cpu"], ".2f")]
        if corun > 1:
            line += [_fmt(r.corun.img_per_s if r.corun else None, ".1f"), _fmt(q["corun"], ".2f")]
        table.append(line)
    print(format_table(header, table, align="rlr" + "r" * (len(header) - 3)))
    median = median_of(rows, "ratio")
    print(f"\nmedian ratio trial / bare: {median:.3f} over {len(rows)} trials  -> target >= {TARGET}:"
          f" {'PASS' if median >= TARGET else 'FAIL'}")
    print(f"median cpu ratio (per CPU second): {_fmt(median_of(rows, 'cpu'), '.3f')};"
          f" median ratio to the bare step x{corun}: {_fmt(median_of(rows, 'corun'), '.3f')}")
    print(f"whole run: {run.images:,} images trained in {run.wall_s:.0f} s = {run.img_per_s:.1f} img/s;"
          f" best bare step of its nets {run.best_bare:.1f} img/s, x{concurrency} trials at a time"
          f" {run.ceiling:.1f} img/s (whole run / that: {run.img_per_s / run.ceiling:.2f})")


def run_search(args: argparse.Namespace, workdir: Path) -> Path:
    """A real search through the product's API, MLflow in its own SQLite file."""
    from nas.search import driver

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    settings = driver.SearchSettings(space=args.space, trials=args.trials, name="efficiency",
                                     output_dir=str(workdir / "searches"), progress=False,
                                     concurrency=args.concurrency, budget=args.budget,
                                     overrides=[*args.words, f"mlflow.tracking_uri={uri}",
                                                "mlflow.experiment=search-efficiency"])
    started = time.perf_counter()
    outcome = driver.search(settings)
    print(f"search {outcome.name}: {time.perf_counter() - started:.0f} s", flush=True)
    return outcome.folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--search", help="a finished search's folder (holds search.json, trials.csv)")
    parser.add_argument("--tracking-uri", help="its MLflow store (default: as the search had it)")
    parser.add_argument("--trials", type=int, help="run a real search of this many trials first")
    parser.add_argument("--space", default="shufflenet")
    parser.add_argument("--budget", default=None, help="search budget (default: the search's own)")
    parser.add_argument("--concurrency", type=int, default=None, help="trials at once (the search's)")
    parser.add_argument("--workdir", help="where --trials puts its search (default: a temporary folder)")
    parser.add_argument("--corun", type=int, default=None,
                        help="bare copies at once (default: the search's trials at a time; 1: off)")
    parser.add_argument("--steps", type=int, default=6, help="bare steps per timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per bare measurement")
    parser.add_argument("words", nargs="*", help="key=value words for --trials (data.train_subset=...)")
    parser.add_argument("--bare-step", help=argparse.SUPPRESS)  # a child process of measure_bare
    args = parser.parse_args(argv)
    if args.bare_step:
        bare_step(json.loads(args.bare_step))
        return 0
    if (args.search is None) == (args.trials is None):
        parser.error("give exactly one of --search DIR or --trials N")
    with tempfile.TemporaryDirectory(prefix="nas-eff-") as tmp:
        workdir = Path(args.workdir or tmp).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        folder = Path(args.search) if args.search else run_search(args, workdir)
        return report(folder, args)


def report(folder: Path, args: argparse.Namespace) -> int:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    search = open_search(folder, args.tracking_uri)
    client = MlflowClient(search.uri)
    trials = read_trials(search, client)
    if not trials:
        print(f"{folder}: no trained trial with img_per_s in {search.uri}")
        return 1
    n_train = int(client.get_run(search.parent_run_id).data.params["data_sizes.train"])
    corun = search.concurrency if args.corun is None else args.corun
    columns = pd.read_csv(folder / ml.TRIALS_CSV, nrows=0).columns
    print("net = " + "/".join(c[len(ml.CHOICE_PREFIX):] for c in columns if c.startswith(ml.CHOICE_PREFIX)))
    print(f"{folder}: {len(trials)} trained trials, {search.threads} thread(s) each, {search.concurrency}"
          f" at a time, batch {search.train['batch_size']}, {n_train} train images; bare steps"
          f" ({args.repeats} x {args.steps} steps, alone{f' and x{corun}' if corun > 1 else ''}):", flush=True)
    rows = measure_rows(search, trials, n_train, corun, args.steps, args.repeats)
    print_report(rows, whole_run(rows, search_wall_s(search, client), search.concurrency), corun,
                 search.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
