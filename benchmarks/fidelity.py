"""Does the search budget predict full training? Rank agreement between two fidelities.

Trains N architectures of the `shufflenet` space (its paper references that fit the search
budget's MAC limit, then seeded random feasible samples) on real CIFAR-10 twice, each run one
`nas.job.Job` recorded in MLflow (experiment `fidelity`, a run per arch x budget):

  search     the `cpu` search budget, read from `nas.campaign.budget.get_budget("search", "cpu")`
             (today 15,000 training images, 2,000 validation, 2 epochs, batch 128; the study in
             benchmarks/results/fidelity_3000x4_15000x4/ ran the former 3,000 x 4 with 500
             validation images against 15,000 x 4: --search-* and --ref-* flags)
  reference  --ref-train images (30,000) x --ref-epochs (5), batch 128: 5x the `cpu` search
             budget's training compute (15,000 x 2) spent on twice its images, nearer full
             training; validated on --ref-val (2,000) images (nas.data.split_indices nests a
             smaller search validation set inside these, so the reference runs never train on
             it; at today's budgets both read the same 2,000)

and prints Kendall's tau-b and Spearman's rho between the two budgets' final validation
accuracies, then tau of cheaper candidate budgets read off the same runs' learning curves, with
the CPU-minutes each would cost for all N archs (training + validation, one thread per run):

  search@k      epoch k of the search runs (what ASHA's rungs at 1 and 2 epochs see)
  reference@k   epoch k of the reference runs ("more images, fewer epochs": reference@1 costs
                what the search budget does); an optimistic stand-in for a k-epoch run: the
                schedule (OneCycle over the whole run) is not finished at epoch k, and epoch k
                shares the run (and the validation images) with the final value it is compared with

so the best tau per CPU-minute can be picked. The MAC count alone is printed as the baseline, and
every tau also "beyond MACs" (of the residuals of val_acc on log10 MACs): a Pareto search needs the
better net at a given cost, and across the space cost alone ranks most of it. Results (a run's
curve when it ends, an arch's row when both are in, so `--resume` after an interruption trains
only what did not finish):

  benchmarks/results/fidelity.csv         arch, choices (JSON), macs, params,
                                          search_budget_val_acc, reference_budget_val_acc,
                                          search_run_id, reference_run_id, search_cpu_s, reference_cpu_s
  benchmarks/results/fidelity_curves.csv  arch, budget, epoch, val_acc, train_images, val_images,
                                          epoch_cpu_s, run_id

    python /work/shared/data/cifar10/make_batches.py /tmp/cifar       # once, offline CIFAR-10
    python benchmarks/fidelity.py --data-root /tmp/cifar --archs 16 --workers 2   # 2-5 h on 2 cores
    python benchmarks/fidelity.py --data-root /tmp/cifar --resume                  # after Ctrl-C
    python benchmarks/fidelity.py --report --also benchmarks/results/fidelity_3000x4_15000x4
                                                     # the tables again, with a former study's budgets
    python benchmarks/fidelity.py --data-root /tmp/cifar --search-only --search-train 30000 \
        --search-epochs 1 --out /tmp/c30000x1        # a candidate budget's runs alone, then
    python benchmarks/fidelity.py --report --also /tmp/c30000x1   # ranked against the reference
    python benchmarks/fidelity.py --out benchmarks/results/fidelity_3000x4_15000x4 --export-curves
                                                     # -> benchmarks/data/shufflenet_curves.csv (its source)
    python benchmarks/fidelity.py --quick            # 4 archs, synthetic data, tiny budgets: CI

`--export-curves` writes the table search_quality.py's stand-in objective is fitted to (the
choices, MACs and per-epoch val_acc of every run; `--searches DIR...` adds the trials those `nas
search` folders trained to the full `cpu` budget, budget `cpu`); see benchmarks/data/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from nas.stats import bootstrap_ci95, check_paired, kendall_tau_b, spearman_rho

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CURVES_EXPORT = HERE / "data" / "shufflenet_curves.csv"
SPACE = "shufflenet"
EXPERIMENT = "fidelity"
COLUMNS = ["arch", "choices", "macs", "params", "search_budget_val_acc", "reference_budget_val_acc",
           "search_run_id", "reference_run_id", "search_cpu_s", "reference_cpu_s"]
CURVE_COLUMNS = ["arch", "budget", "epoch", "val_acc", "train_images", "val_images", "epoch_cpu_s",
                 "run_id"]
EXPORT_COLUMNS = ["arch", "choices", "macs", "params", "budget", "train_images", "val_images",
                  "epochs", "epoch", "val_acc"]
QUICK_DATA = ["data.name=synthetic", "data.synthetic_train=640", "data.synthetic_test=64"]
SAMPLE_TRIES = 2000  # seeded random samples tried for the non-reference archs


# ----------------------------------------------------------------------------- rank statistics
# Kendall's tau, Spearman's rho and the bootstrap are nas.stats'; these wrap them for the archs.

def tau_ci95(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """How sure a tau from 16 architectures is."""
    check_paired(x, y)
    return bootstrap_ci95(lambda idx: kendall_tau_b([x[i] for i in idx], [y[i] for i in idx]), len(x))


def tau_difference_ci95(a: Sequence[float], b: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Paired bootstrap of tau(a, y) - tau(b, y) over the same archs: whether one budget ranks
    better than another, or the two differ by less than 16 archs can tell."""
    check_paired(a, y)
    check_paired(b, y)
    pick = lambda v, idx: [v[i] for i in idx]  # noqa: E731
    return bootstrap_ci95(lambda idx: kendall_tau_b(pick(a, idx), pick(y, idx))
                          - kendall_tau_b(pick(b, idx), pick(y, idx)), len(y))


def beyond_cost(values: Sequence[float], macs: Sequence[float]) -> list[float]:
    """What the MAC count does not explain: residuals of a least-squares line of `values` on
    log10 MACs. Their tau asks whether a budget picks the better net at a given cost, which is
    what a Pareto search needs (bigger nets being better is known before training)."""
    check_paired(values, macs)
    n = len(values)
    if n == 0:
        return []
    logs = [math.log10(m) for m in macs]
    mx, my = sum(logs) / n, sum(values) / n
    sxx = sum((a - mx) ** 2 for a in logs)
    slope = sum((a - mx) * (b - my) for a, b in zip(logs, values)) / sxx if sxx > 0 else 0.0
    return [b - my - slope * (a - mx) for a, b in zip(logs, values)]


# ----------------------------------------------------------------------------- the points

@dataclass(frozen=True)
class Arch:
    label: str
    choices: dict[str, Any]
    spec: Any  # nas.NetSpec (frozen, checked)
    macs: int
    params: int


def choices_label(choices: dict[str, Any]) -> str:
    """Short label of a point: g3 w0.5 d4-8-4 k3 shuf."""
    depths = "-".join(str(choices[f"s{i}.depth"]) for i in range(3) if f"s{i}.depth" in choices)
    parts = [f"g{choices.get('groups')}", f"w{choices.get('width')}", f"d{depths}",
             f"k{choices.get('kernel')}", "shuf" if choices.get("shuffle") else "noshuf"]
    known = {"groups", "width", "kernel", "shuffle", "s0.depth", "s1.depth", "s2.depth"}
    parts += [f"{k}={v}" for k, v in sorted(choices.items()) if k not in known]
    return " ".join(parts)


def pick_archs(n: int, max_macs: float | None, seed: int = 0, resolution: int = 32,
               num_classes: int = 10) -> list[Arch]:
    """The space's references under `max_macs`, then seeded random feasible samples (distinct
    architectures) until `n`: the same list every time for the same arguments."""
    import nas
    from nas.errors import SpecError
    from nas.space import RandomChooser, load_space

    space = load_space(SPACE)
    out: list[Arch] = []
    seen: set[str] = set()

    def add(label: str, point: dict[str, Any]) -> None:
        key = json.dumps(point, sort_keys=True, default=str)
        if key in seen or len(out) >= n:
            return
        try:
            spec = space.to_spec(point, resolution=resolution, num_classes=num_classes)
        except SpecError:
            return
        counted = nas.count(spec)
        if max_macs is not None and counted.macs > max_macs:
            return
        seen.add(key)
        out.append(Arch(label, dict(point), spec, counted.macs, counted.params))

    for name, point in space.references:
        add(name, space.normalize(point))
    for i in range(SAMPLE_TRIES):
        if len(out) >= n:
            break
        point = space.sample(RandomChooser(seed * 100_003 + i))
        add(choices_label(point), point)
    if len(out) < n:
        raise SystemExit(f"only {len(out)} feasible architectures of {SPACE} under {max_macs} MACs")
    return out


# ----------------------------------------------------------------------------- the budgets

@dataclass(frozen=True)
class Fidelity:
    name: str  # search | reference
    train_images: int
    val_images: int
    epochs: int
    batch_size: int

    def words(self) -> list[str]:
        return [f"data.train_subset={self.train_images}", f"data.val_size={self.val_images}",
                f"train.epochs={self.epochs}", f"train.batch_size={self.batch_size}"]

    def compute(self) -> int:
        return self.train_images * self.epochs


def fidelities(args: argparse.Namespace) -> tuple[Fidelity, Fidelity]:
    from nas.campaign.budget import get_budget

    if args.quick:  # synthetic data: seconds per run
        return (Fidelity("search", 256, 100, 2, 32), Fidelity("reference", 512, 100, 2, 32))
    b = get_budget("search", "cpu")
    search = Fidelity("search", args.search_train or b.train_subset, args.search_val or b.val_size,
                      args.search_epochs or b.epochs, b.batch_size)
    reference = Fidelity("reference", args.ref_train, args.ref_val, args.ref_epochs, b.batch_size)
    if reference.compute() < 5 * search.compute() and not args.search_only:
        print(f"warning: the reference budget ({reference.train_images} x {reference.epochs}) is"
              f" {reference.compute() / search.compute():.1f}x the search budget's compute; the"
              " issue's fidelity study asks for >= 5x (--ref-train / --ref-epochs)", file=sys.stderr)
    return search, reference


def run_config(fid: Fidelity, args: argparse.Namespace):
    from nas.config import load_run_config

    words = [*(QUICK_DATA if args.quick else []), *fid.words(), "train.threads=1", "device=cpu"]
    if args.data_root and not args.quick:
        words.append(f"data.root={args.data_root}")
    return load_run_config([*words, *args.overrides], base={"progress": False})


# ----------------------------------------------------------------------------- running

@dataclass(frozen=True)
class Task:
    arch: Arch
    fid: Fidelity
    cfg: Any  # RunConfig


def _execute(job: Any, data: Any) -> Any:
    """One training (in this process or a Ray task): the JobResult, everything by value."""
    from nas.job import execute

    return execute(job, data).result


def run_tasks(tasks: list[Task], data: dict[str, Any], workers: int, on_done) -> None:
    """Train every task, `workers` at once (Ray tasks, one thread each) or in this process."""
    from nas.job import Job

    jobs = [Job(t.arch.spec, t.cfg, device="cpu", threads=1, test=False) for t in tasks]
    if workers <= 1:
        for task, job in zip(tasks, jobs):
            on_done(task, _execute(job, data[task.fid.name]))
        return
    import ray

    from nas.campaign.tasks import run_tasks as run_ray_tasks
    from nas.workers import init_ray

    init_ray()
    refs = {name: ray.put(bundle) for name, bundle in data.items()}
    remote = ray.remote(_execute).options(num_cpus=1, max_retries=1)
    run_ray_tasks(list(zip(tasks, jobs)), lambda pair: remote.remote(pair[1], refs[pair[0].fid.name]),
                  workers, lambda pair, result: on_done(pair[0], result))


def epoch_cpu_s(result: Any, threads: int = 1) -> list[float]:
    """CPU seconds per epoch: its training time plus an equal share of the rest of the run
    (validation, model build, data to the device), times the threads it ran on."""
    history = result.history or []
    if not history:
        return []
    train = [float(h.get("epoch_s", 0.0)) for h in history]
    rest = max(result.wall_s - sum(train), 0.0) / len(history)
    return [threads * (t + rest) for t in train]


def record(task: Task, result: Any, args: argparse.Namespace) -> str:
    """The run in MLflow (written here, by the driver, after the worker returned)."""
    from nas import mlflow_layout as ml
    from nas.config import to_dict
    from nas.tracking import Tracker

    tracker = Tracker(args.experiment, f"{task.arch.label} @ {task.fid.name}", uri=args.mlflow_uri,
                      tags={ml.KIND: "fidelity", ml.SPACE: SPACE, ml.BUDGET: task.fid.name,
                            ml.STATUS: result.status.value, ml.DEVICE: result.device,
                            "fidelity.arch": task.arch.label})
    tracker.log_params({"config": to_dict(task.cfg), "fidelity": task.fid.__dict__,
                        **{f"{ml.CHOICE_PREFIX}{k}": v for k, v in task.arch.choices.items()}})
    tracker.log_text(json.dumps(to_dict(task.arch.spec), indent=1), "spec.json")
    tracker.log_metrics({"macs": task.arch.macs, "params": task.arch.params})
    for h, cpu in zip(result.history, epoch_cpu_s(result)):
        tracker.log_metrics({k: h.get(k) for k in ("train_loss", "val_acc", "lr", "img_per_s", "epoch_s")}
                            | {"epoch_cpu_s": cpu}, step=int(h["epoch"]))
    tracker.log_metrics({"val_acc": result.val_acc, "wall_time_s": result.wall_s}, step=result.epochs)
    run_id = tracker.run_id
    tracker.end("FINISHED" if result.status.value == "COMPLETED" else "FAILED", result.error or None)
    return run_id


def _append(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        if new:
            w.writeheader()
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_benchmark(args: argparse.Namespace) -> Path:
    from nas.campaign.budget import get_budget
    from nas.data import load_data

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table, curves = out / "fidelity.csv", out / "fidelity_curves.csv"
    if not args.resume:
        for p in (table, curves):
            if p.exists() and p.stat().st_size:
                raise SystemExit(f"{p} exists: add --resume to continue it, or move it away")
    done = {row["arch"] for row in read_csv(table)}
    max_macs = get_budget("search", "cpu").default_max_macs
    archs = pick_archs(args.archs, max_macs, args.seed)
    cfgs, fids = {}, []
    for f in fidelities(args):  # key=value words go on top: the sizes are read back from them
        cfg = cfgs[f.name] = run_config(f, args)
        fids.append(replace(f, train_images=cfg.data.train_subset, val_images=cfg.data.val_size,
                            epochs=cfg.train.epochs, batch_size=cfg.train.batch_size))
    search_fid, ref_fid = fids
    halves = _kept_runs(curves, done, {f.name: f for f in fids})
    fids = fids[:1] if args.search_only else fids  # a candidate budget, ranked with --also
    tasks = [Task(a, f, cfgs[f.name]) for a in archs if a.label not in done
             for f in fids if f.name not in halves.get(a.label, {})]
    print(f"fidelity: {len(archs)} archs of {SPACE} (<= {max_macs / 1e6:g}M MACs), {len(done)} done,"
          f" {len({t.arch.label for t in tasks})} to run ({len(tasks)} runs), {args.workers} at once",
          flush=True)
    for f in fids:
        print(f"  {f.name:9s} {f.train_images} train x {f.epochs} epochs, val {f.val_images},"
              f" batch {f.batch_size} ({f.compute() / search_fid.compute():.1f}x the search budget)")
    print(f"  results {table}   MLflow {args.mlflow_uri or 'default'} (experiment {args.experiment})",
          flush=True)
    if tasks:
        data = {name: load_data(cfgs[name].data, "cpu") for name in {t.fid.name for t in tasks}}
        started, count = time.perf_counter(), [0]

        def on_done(task: Task, result: Any) -> None:
            run_id = record(task, result, args)
            count[0] += 1
            acc = "-" if result.val_acc is None else f"{result.val_acc:.3f}"
            print(f"  [{count[0]}/{len(tasks)}] {task.arch.label} @ {task.fid.name}:"
                  f" {result.status.value} val_acc {acc} in {result.wall_s:.0f}s"
                  f"{' ' + result.error if result.error else ''}"
                  f"  ({(time.perf_counter() - started) / 60:.1f} min)", flush=True)
            if result.val_acc is None:
                print(f"  {task.arch.label} @ {task.fid.name}: failed; not written (rerun with --resume)")
                return
            rows = curve_rows(task.arch, task.fid, result, run_id)
            _append(curves, CURVE_COLUMNS, rows)  # kept at once: --resume trains only the other half
            got = halves.setdefault(task.arch.label, {})
            got[task.fid.name] = rows
            if len(got) == 2:
                _append(table, COLUMNS, [table_row(task.arch, got["search"], got["reference"])])

        run_tasks(tasks, data, args.workers, on_done)
    if args.search_only:
        print(f"search runs only: rank them with --report --out REFERENCE_STUDY --also {out}")
    else:
        report(table, curves)
    return table


def _kept_runs(curves: Path, done: set[str], fids: dict[str, Fidelity]) -> dict[str, dict[str, list]]:
    """The finished runs of archs without a row yet ({arch: {budget: curve rows}}): a run's rows
    are appended when it ends, so rows of today's budget with every epoch and a run id are a
    whole run. Anything else of an unfinished arch goes, and the file is rewritten in today's
    columns."""
    rows = read_csv(curves)
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["arch"], r["budget"]), []).append(r)
    halves: dict[str, dict[str, list]] = {}
    for (arch, budget), runs in groups.items():
        if arch not in done and budget in fids and _whole_run(runs, fids[budget]):
            halves.setdefault(arch, {})[budget] = runs
    kept = [r for r in rows if r["arch"] in done or r["budget"] in halves.get(r["arch"], {})]
    if kept != rows or (rows and list(rows[0]) != CURVE_COLUMNS):
        tmp = curves.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CURVE_COLUMNS, extrasaction="ignore", restval="")
            w.writeheader()
            w.writerows(kept)
        os.replace(tmp, curves)
    return halves


def _whole_run(runs: list[dict[str, str]], fid: Fidelity) -> bool:
    """One budget's rows of an arch are a whole run of `fid`: epochs 1..E once each, its image
    counts, one run id."""
    ids = {r.get("run_id") or "" for r in runs}
    sizes = {(int(r["train_images"]), int(r["val_images"])) for r in runs}
    return (sorted(int(r["epoch"]) for r in runs) == list(range(1, fid.epochs + 1))
            and sizes == {(fid.train_images, fid.val_images)} and len(ids) == 1 and "" not in ids)


def curve_rows(arch: Arch, fid: Fidelity, result: Any, run_id: str) -> list[dict[str, Any]]:
    """One run's learning curve as fidelity_curves.csv rows."""
    return [{"arch": arch.label, "budget": fid.name, "epoch": int(h["epoch"]), "val_acc": h["val_acc"],
             "train_images": fid.train_images, "val_images": fid.val_images,
             "epoch_cpu_s": round(cpu, 3), "run_id": run_id}
            for h, cpu in zip(result.history, epoch_cpu_s(result))]


def table_row(arch: Arch, search: list[dict], reference: list[dict]) -> dict[str, Any]:
    """An arch's fidelity.csv row from its two runs' curve rows (final val_acc = last epoch's)."""
    final = lambda rows: max(rows, key=lambda r: int(r["epoch"]))  # noqa: E731
    cpu_s = lambda rows: round(sum(float(r["epoch_cpu_s"]) for r in rows), 3)  # noqa: E731
    return {"arch": arch.label, "choices": json.dumps(arch.choices, sort_keys=True), "macs": arch.macs,
            "params": arch.params, "search_budget_val_acc": float(final(search)["val_acc"]),
            "reference_budget_val_acc": float(final(reference)["val_acc"]),
            "search_run_id": final(search)["run_id"], "reference_run_id": final(reference)["run_id"],
            "search_cpu_s": cpu_s(search), "reference_cpu_s": cpu_s(reference)}


# ----------------------------------------------------------------------------- the report

def candidates(rows: list[dict[str, str]], curve_rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Every (budget, epoch) read off the curves: tau/rho against the reference's final value,
    and what all archs at that budget would cost in CPU-minutes."""
    truth = {r["arch"]: float(r["reference_budget_val_acc"]) for r in rows}
    macs = {r["arch"]: float(r["macs"]) for r in rows}
    by: dict[tuple[str, int], dict[str, tuple[float, float]]] = {}
    cum: dict[tuple[str, str], float] = {}
    for c in sorted(curve_rows, key=lambda c: (c["arch"], c["budget"], int(c["epoch"]))):
        if c["arch"] not in truth:
            continue
        key = (c["arch"], c["budget"])
        cum[key] = cum.get(key, 0.0) + float(c["epoch_cpu_s"])
        by.setdefault((c["budget"], int(c["epoch"])), {})[c["arch"]] = (float(c["val_acc"]), cum[key])
    out = []
    for (budget, epoch), per_arch in sorted(by.items()):
        archs = sorted(per_arch)
        if len(archs) < 2:
            continue
        x = [per_arch[a][0] for a in archs]
        y = [truth[a] for a in archs]
        images = next(int(c["train_images"]) for c in curve_rows if c["budget"] == budget)
        minutes = sum(per_arch[a][1] for a in archs) / 60
        tau, cost = kendall_tau_b(x, y), [macs[a] for a in archs]
        out.append({"candidate": f"{budget}@{epoch}", "images x epochs": f"{images} x {epoch}",
                    "tau": tau, "tau_ci95": tau_ci95(x, y), "rho": spearman_rho(x, y), "cpu_min": minutes,
                    "tau_per_cpu_min": tau / minutes if minutes > 0 else math.nan, "n": len(archs),
                    "tau_beyond_macs": kendall_tau_b(beyond_cost(x, cost), beyond_cost(y, cost)),
                    "val_acc": dict(zip(archs, x)), "truth": dict(zip(archs, y))})
    return out


def versus(cand: dict[str, Any], base: dict[str, Any]) -> str:
    """One line: cand's tau minus base's over their common archs, with its paired 95% interval."""
    archs = sorted(set(cand["val_acc"]) & set(base["val_acc"]))
    a, b = [cand["val_acc"][k] for k in archs], [base["val_acc"][k] for k in archs]
    y = [cand["truth"][k] for k in archs]
    lo, hi = tau_difference_ci95(a, b, y)
    diff = kendall_tau_b(a, y) - kendall_tau_b(b, y)
    verdict = "better" if lo > 0 else "worse" if hi < 0 else f"no difference {len(archs)} archs can tell"
    return (f"{cand['candidate']} vs {base['candidate']}: tau {diff:+.3f}, 95% CI {lo:+.3f}..{hi:+.3f}"
            f" over {len(archs)} archs (paired bootstrap): {verdict}")


MIN_USEFUL_TAU = 0.5  # below this a cheap budget's high tau per minute only says it is cheap


def whole_runs(cands: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each budget's last epoch: the budgets one can set. Epoch k of a longer schedule is not a
    k-epoch run (its learning rate has not annealed): 30,000 x 1 ranked at tau 0.34 as the
    reference's first epoch and at 0.68 as a run of its own."""
    last: dict[str, dict[str, Any]] = {}
    for c in sorted(cands, key=lambda c: (c["candidate"].split("@")[0], int(c["candidate"].split("@")[1]))):
        last[c["candidate"].split("@")[0]] = c
    return last


def best_per_cost(cands: Sequence[dict[str, Any]], min_tau: float = MIN_USEFUL_TAU) -> dict[str, Any] | None:
    """The whole-run budget with the most tau per CPU-minute among those ranking well enough to
    use (tau >= min_tau); the reference itself (tau 1 by definition) is no candidate."""
    usable = [c for name, c in whole_runs(cands).items() if name != "reference"
              and not math.isnan(c["tau_per_cpu_min"]) and c["tau"] >= min_tau]
    return max(usable, key=lambda c: c["tau_per_cpu_min"], default=None)


def comparisons(cands: Sequence[dict[str, Any]]) -> list[str]:
    """Each --also budget's whole run against this study's search budget."""
    runs = whole_runs(cands)
    base = runs.get("search")
    return [versus(c, base) for name, c in runs.items() if base and ":" in name]


def other_curves(folders: Sequence[Path]) -> list[dict[str, str]]:
    """Another study's learning curves, each budget named `FOLDER:budget`, so that its cheap
    budgets are ranked against this study's reference (archs matched by label, i.e. choices)."""
    out = []
    for folder in folders:
        rows = read_csv(folder / "fidelity_curves.csv")
        if not rows:
            raise SystemExit(f"--also {folder}: no fidelity_curves.csv there")
        out += [{**r, "budget": f"{folder.name}:{r['budget']}"} for r in rows]
    return out


def report(table: Path, curves: Path, also: Sequence[Path] = ()) -> None:
    from nas.table import format_table

    rows = read_csv(table)
    if not rows:
        print("no finished arch yet")
        return
    fmt = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"  # noqa: E731
    print(format_table(["arch", "MMACs", "params", "search val", "reference val"],
                       [[r["arch"], f"{int(r['macs']) / 1e6:.2f}", r["params"],
                         fmt(float(r["search_budget_val_acc"])), fmt(float(r["reference_budget_val_acc"]))]
                        for r in sorted(rows, key=lambda r: -float(r["reference_budget_val_acc"]))],
                       align="lrrrr"))
    x = [float(r["search_budget_val_acc"]) for r in rows]
    y = [float(r["reference_budget_val_acc"]) for r in rows]
    cands = candidates(rows, read_csv(curves) + other_curves(also))
    if cands:
        print("\ncandidate budgets vs the reference budget's final val_acc (CPU-min: all archs,"
              " one thread each; @k = after epoch k of that budget's runs; the reference's last"
              " epoch is the reference itself; beyond MACs: tau of what a line on log10 MACs"
              " leaves, i.e. the better net at a given cost):")
        print(format_table(["candidate", "images x epochs", "tau-b", "tau-b 95% CI", "rho", "CPU-min",
                            "tau/CPU-min", "tau-b beyond MACs"],
                           [[c["candidate"], c["images x epochs"], fmt(c["tau"]),
                             "%s..%s" % tuple(fmt(v) for v in c["tau_ci95"]), fmt(c["rho"]),
                             f"{c['cpu_min']:.1f}", fmt(c["tau_per_cpu_min"]), fmt(c["tau_beyond_macs"])]
                            for c in cands],
                           align="llrrrrrr"))
        best = best_per_cost(cands)
        if best:
            print(f"best tau per CPU-minute of a whole run with tau >= {MIN_USEFUL_TAU}: {best['candidate']}"
                  f" (tau {fmt(best['tau'])}, {best['cpu_min']:.1f} CPU-min for {best['n']} archs)")
        else:
            print(f"no whole-run budget reaches tau {MIN_USEFUL_TAU}")
        for line in comparisons(cands):
            print(line)
    print(f"\nsearch vs reference budget over {len(rows)} archs: kendall_tau_b={fmt(kendall_tau_b(x, y))}"
          f" spearman_rho={fmt(spearman_rho(x, y))}")
    macs = [float(r["macs"]) for r in rows]  # the baseline a budget must beat to say more than cost
    print(f"MAC count alone vs reference over {len(rows)} archs: kendall_tau_b={fmt(kendall_tau_b(macs, y))}"
          f" spearman_rho={fmt(spearman_rho(macs, y))}")
    print(f"search vs reference beyond the MAC count (residuals on log10 MACs):"
          f" kendall_tau_b={fmt(kendall_tau_b(beyond_cost(x, macs), beyond_cost(y, macs)))}")


# ----------------------------------------------------------------------------- export

def export_curves(out_dir: Path, dest: Path, searches: Sequence[Path] = (), mlflow_uri: str | None = None) -> None:
    """fidelity.csv + fidelity_curves.csv (+ the trials of `searches`, budget `cpu`) -> one long
    table (choices, MACs, per-epoch val_acc per arch and budget): what search_quality.py's
    stand-in is fitted to."""
    rows = {r["arch"]: r for r in read_csv(out_dir / "fidelity.csv")}
    curve_rows = read_csv(out_dir / "fidelity_curves.csv")
    if not rows or not curve_rows:
        raise SystemExit(f"no results in {out_dir}: run benchmarks/fidelity.py first")
    epochs: dict[tuple[str, str], int] = {}
    for c in curve_rows:
        key = (c["arch"], c["budget"])
        epochs[key] = max(epochs.get(key, 0), int(c["epoch"]))
    out = []
    for c in curve_rows:
        r = rows.get(c["arch"])
        if r is None:
            continue
        out.append({"arch": c["arch"], "choices": r["choices"], "macs": r["macs"], "params": r["params"],
                    "budget": c["budget"], "train_images": c["train_images"],
                    "val_images": c.get("val_images", ""), "epochs": epochs[(c["arch"], c["budget"])],
                    "epoch": c["epoch"], "val_acc": c["val_acc"]})
    from_searches = search_curves(list(searches), mlflow_uri) if searches else []  # no stray store
    out += from_searches
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=EXPORT_COLUMNS)
        w.writeheader()
        w.writerows(out)
    searched = len({r["arch"] for r in from_searches})
    print(f"wrote {dest}: {len(out)} rows, {len(rows)} archs of the fidelity study"
          + (f", {searched} trained by {len(searches)} searches (budget cpu)" if searches else ""))


def search_curves(folders: list[Path], mlflow_uri: str | None) -> list[dict[str, Any]]:
    """Export rows of every trial `nas search` trained to the full budget in `folders`, budget
    `cpu`: its choices from trials.csv, its per-epoch val_acc from the trial's MLflow run. The
    same architecture trained again with the same numbers (a reference net in two searches of
    one seed) is kept once; with other numbers (another seed) it is a replicate, `#2`."""
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from nas.campaign.budget import get_budget
    from nas.search.results import choices_of

    budget = get_budget("search", "cpu")
    client = MlflowClient(mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")
    out: list[dict[str, Any]] = []
    seen: dict[str, list[tuple[float, ...]]] = {}
    for folder in folders:
        for _, t in pd.read_csv(folder / "trials.csv").iterrows():
            if t["status"] != "COMPLETED" or float(t["epochs"]) != budget.epochs:
                continue
            choices = choices_of(t)
            history = sorted(client.get_metric_history(t["mlflow_run_id"], "val_acc"), key=lambda m: m.step)
            curve = tuple(m.value for m in history)
            label = choices_label(choices)
            if len(curve) != budget.epochs or curve in seen.setdefault(label, []):
                continue
            seen[label].append(curve)
            arch = label + (f" #{len(seen[label])}" if len(seen[label]) > 1 else "")
            out += [{"arch": arch, "choices": json.dumps(choices, sort_keys=True), "macs": int(float(t["macs"])),
                     "params": int(float(t["params"])), "budget": "cpu", "train_images": budget.train_subset,
                     "val_images": budget.val_size, "epochs": budget.epochs, "epoch": e + 1, "val_acc": v}
                    for e, v in enumerate(curve)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--archs", type=int, default=16, help="architectures (references first)")
    parser.add_argument("--data-root", help="folder holding cifar-10-batches-py (default $NAS_DATA)")
    parser.add_argument("--workers", type=int, default=2, help="trainings at once (Ray tasks, 1 thread each)")
    parser.add_argument("--resume", action="store_true", help="append to the CSVs, skipping archs in them")
    parser.add_argument("--quick", action="store_true", help="4 archs, synthetic data, tiny budgets")
    parser.add_argument("--search-train", type=int, help="search budget: training images (default: the cpu budget's)")
    parser.add_argument("--search-epochs", type=int, help="search budget: epochs (default: the cpu budget's)")
    parser.add_argument("--search-val", type=int, help="search budget: validation images (default: the cpu budget's)")
    parser.add_argument("--search-only", action="store_true",
                        help="train the search budget alone (a candidate budget's curves, ranked against"
                             " another study's reference with --report --out THAT --also --out's folder)")
    parser.add_argument("--ref-train", type=int, default=30000, help="reference budget: training images")
    parser.add_argument("--ref-epochs", type=int, default=5, help="reference budget: epochs")
    parser.add_argument("--ref-val", type=int, default=2000, help="reference budget: validation images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random architectures")
    parser.add_argument("--out", help=f"results folder (default {RESULTS}; --quick: a temporary one)")
    parser.add_argument("--experiment", default=EXPERIMENT, help="MLflow experiment")
    parser.add_argument("--mlflow-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or"
                        " ./mlflow.db; --quick: a SQLite file in --out)")
    parser.add_argument("--export-curves", nargs="?", const=str(CURVES_EXPORT), metavar="CSV",
                        help=f"write the curves table from --out's results (default {CURVES_EXPORT})")
    parser.add_argument("--searches", nargs="+", default=[], metavar="DIR",
                        help="--export-curves: also the trials these `nas search` folders trained"
                             " to the full cpu budget (per-epoch val_acc from --mlflow-uri)")
    parser.add_argument("--report", action="store_true",
                        help="print the tables from --out's CSVs; train nothing")
    parser.add_argument("--also", nargs="+", default=[], metavar="DIR",
                        help="--report: also rank these studies' budgets (their fidelity_curves.csv)"
                             " against --out's reference")
    parser.add_argument("overrides", nargs="*", help="more nas run key=value words (train.lr=0.2)")
    args = parser.parse_args(argv)
    if args.quick:
        args.archs = min(args.archs, 4)
        args.out = args.out or tempfile.mkdtemp(prefix="nas-fidelity-quick-")
        args.mlflow_uri = args.mlflow_uri or f"sqlite:///{Path(args.out).resolve() / 'mlflow.db'}"
    args.out = args.out or str(RESULTS)
    if args.export_curves:
        export_curves(Path(args.out), Path(args.export_curves), [Path(d) for d in args.searches],
                      args.mlflow_uri)
        return 0
    if args.report:
        out = Path(args.out)
        report(out / "fidelity.csv", out / "fidelity_curves.csv", [Path(d) for d in args.also])
        return 0
    args.data_root = args.data_root or os.environ.get("NAS_DATA")
    run_benchmark(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
