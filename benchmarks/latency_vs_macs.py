"""What MACs miss, measured: multiply-adds against measured latency on deployment runtimes.

Random architectures of the `shufflenet`, `mobilenet_v2` and `mixed` spaces at 32 px (10
classes) and the paper presets at 224 px, each timed with `nas.latency` (batch 1, 1 thread,
fresh weights: a dense conv's time does not depend on its values) on every runtime asked for.
Reported per set and runtime: Kendall tau-b between MACs and latency (benchmarks/fidelity.py's),
the latency per MAC (ns) by choice value (groups, kernel, shuffle, expansion, width, ...), and
for the architectures with a measured accuracy the front in (accuracy, latency) beside the front
in (accuracy, MACs): the members they share and what the MAC front's members cost in latency.

Accuracy per architecture: `benchmarks/data/shufflenet_table.csv` once it holds 50 architectures
(a `choices` column and `test_acc`, else `val_acc`), else the measured `benchmarks/data/shufflenet_curves.csv`
(the last epoch of its `cpu`-budget rows: validation accuracy of real CIFAR-10 search trials,
15,000 train images x 2 epochs, 2,000 validation images). The report says which.

Every measurement is appended to OUT/latencies.csv as it is taken, so an interrupted run goes on
where it stopped (the same command again). Timings need a quiet machine: nothing else running.

    python benchmarks/latency_vs_macs.py                                  # the full study
    python benchmarks/latency_vs_macs.py --archs 10 --presets 2 --accuracy-archs 10 --out /tmp/q
    python benchmarks/latency_vs_macs.py --report-only --out benchmarks/results/latency_vs_macs
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import nas
from nas.errors import NasError
from nas.latency import LatencySettings, check_settings, measure
from nas.pareto import pareto_mask
from nas.space import RandomChooser, load_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity import kendall_tau_b  # noqa: E402 - the project's one tau-b

ROOT = Path(__file__).resolve().parents[1]
SPACES = ("shufflenet", "mobilenet_v2", "mixed")
TABLE = ROOT / "benchmarks" / "data" / "shufflenet_table.csv"
CURVES = ROOT / "benchmarks" / "data" / "shufflenet_curves.csv"
COLUMNS = ["set", "arch", "choices", "resolution", "macs", "params", "runtime", "threads",
           "median_ms", "q1_ms", "q3_ms", "runs", "seconds"]


@dataclass(frozen=True)
class Arch:
    set: str  # a space's name, "presets@224" or "accuracy"
    name: str
    choices: dict[str, Any]
    spec: Any


def space_archs(space_name: str, n: int) -> list[Arch]:
    """The first n valid random points of a space at 32 px, seeds 0, 1, ..."""
    space, out, seed = load_space(space_name), [], 0
    while len(out) < n and seed < 50 * n:
        params = space.sample(RandomChooser(seed))
        try:
            spec = space.to_spec(params, resolution=32, num_classes=10)
            nas.build_model(spec)  # over a size cap: the next seed
            out.append(Arch(space_name, f"{space_name}-s{seed}", params, spec))
        except NasError:
            pass
        seed += 1
    return out


def preset_archs(n: int | None) -> list[Arch]:
    names = nas.preset_names()[:n] if n is not None else nas.preset_names()
    return [Arch("presets@224", name, {}, nas.load_preset(name, resolution=224)) for name in names]


def accuracy_table() -> tuple[pd.DataFrame, str]:
    """(choices JSON, accuracy) per architecture, and what the accuracy is."""
    rows, note = _accuracy_rows()
    rows["choices"] = [json.dumps(json.loads(c), sort_keys=True) for c in rows["choices"]]
    return rows, note


MIN_TABLE_ARCHS = 50  # the space table is used once it holds this many architectures (it fills over sessions)


def _accuracy_rows() -> tuple[pd.DataFrame, str]:
    table = pd.read_csv(TABLE) if TABLE.is_file() else None
    if table is not None and table["choices"].nunique() >= MIN_TABLE_ARCHS:
        column = "test_acc" if "test_acc" in table.columns else "val_acc"
        rows = table.groupby("choices", as_index=False)[column].mean()
        return rows.rename(columns={column: "accuracy"}), f"{column} from {TABLE.name}"
    curves = pd.read_csv(CURVES)
    cpu = curves[curves["budget"] == "cpu"]
    last = cpu[cpu["epoch"] == cpu.groupby("choices")["epoch"].transform("max")]
    rows = last.groupby("choices", as_index=False)["val_acc"].mean().rename(columns={"val_acc": "accuracy"})
    return rows, (f"val_acc from {CURVES.name} (cpu budget: 15,000 train x 2 epochs, 2,000 val images;"
                  " real CIFAR-10 search trials)")


def accuracy_archs(table: pd.DataFrame, n: int | None) -> list[Arch]:
    space = load_space("shufflenet")
    rows = table if n is None else table.head(n)
    return [Arch("accuracy", f"acc-{i}", json.loads(c), space.to_spec(json.loads(c), resolution=32, num_classes=10))
            for i, c in enumerate(rows["choices"])]


def done_keys(path: Path) -> set[tuple[str, str, str]]:
    if not path.is_file():
        return set()
    return {(r["set"], r["arch"], r["runtime"]) for r in csv.DictReader(path.open())}


def measure_all(archs: list[Arch], runtimes: list[str], settings: LatencySettings, path: Path) -> None:
    """Append one row per (arch, runtime) not in the file yet; prints the time left as it goes."""
    done = done_keys(path)
    todo = [(a, r) for a in archs for r in runtimes if (a.set, a.name, r) not in done]
    fresh = not path.is_file()
    started = time.perf_counter()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if fresh:
            writer.writeheader()
        for i, (arch, runtime) in enumerate(todo):
            begun = time.perf_counter()
            got = measure(arch.spec, replace(settings, runtime=runtime))
            counted = nas.count(arch.spec)
            writer.writerow({"set": arch.set, "arch": arch.name, "choices": json.dumps(arch.choices, sort_keys=True),
                             "resolution": arch.spec.input.resolution, "macs": counted.macs,
                             "params": counted.params, "runtime": runtime, "threads": settings.threads,
                             "median_ms": got.median_ms, "q1_ms": got.q1_ms, "q3_ms": got.q3_ms,
                             "runs": got.runs, "seconds": round(time.perf_counter() - begun, 2)})
            f.flush()
            if i in (4, 19) or (i + 1) % 100 == 0:
                per = (time.perf_counter() - started) / (i + 1)
                print(f"  {i + 1}/{len(todo)} measured, {per:.1f} s each: about"
                      f" {per * (len(todo) - i - 1) / 60:.0f} min left", flush=True)


def by_choice(rows: pd.DataFrame) -> pd.DataFrame:
    """Median ns per MAC for each value of each choice (a label's last part: s2.exp -> exp)."""
    records = []
    for _, r in rows.iterrows():
        for label, value in json.loads(r["choices"]).items():
            records.append({"set": r["set"], "runtime": r["runtime"], "choice": label.split(".")[-1],
                            "value": str(value), "ns_per_mac": r["median_ms"] * 1e6 / r["macs"]})
    if not records:
        return pd.DataFrame()
    df = pd.DataFrame(records)
    return (df.groupby(["set", "runtime", "choice", "value"])["ns_per_mac"].agg(["median", "count"])
            .reset_index().rename(columns={"median": "median_ns_per_mac", "count": "n"}))


def tau_table(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (set_name, runtime), g in df.groupby(["set", "runtime"]):
        out.append({"set": set_name, "runtime": runtime, "archs": len(g),
                    "kendall_tau_macs_latency": kendall_tau_b(list(g["macs"]), list(g["median_ms"])),
                    "median_ns_per_mac": float(np.median(g["median_ms"] * 1e6 / g["macs"]))})
    return pd.DataFrame(out)


def fronts(df: pd.DataFrame, table: pd.DataFrame) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """Per runtime: the (accuracy, latency) front against the (accuracy, MACs) front."""
    acc = df[df["set"] == "accuracy"].merge(table, on="choices")
    lines, members, flagged = [], [], []
    for runtime, g in acc.groupby("runtime"):
        g = g.reset_index(drop=True)
        on_macs = pareto_mask(g[["accuracy", "macs"]].to_numpy(float), ["max", "min"])
        on_lat = pareto_mask(g[["accuracy", "median_ms"]].to_numpy(float), ["max", "min"])
        flagged.append(g.assign(on_mac_front=on_macs, on_latency_front=on_lat))
        shared = int((on_macs & on_lat).sum())
        lines.append(f"{runtime}: {len(g)} archs; MAC front {int(on_macs.sum())}, latency front"
                     f" {int(on_lat.sum())}, shared {shared}")
        lat_front = g[on_lat]
        for i in np.flatnonzero(on_macs):
            row = g.loc[i]
            rivals = lat_front[lat_front["accuracy"] >= row["accuracy"]]
            best = float(rivals["median_ms"].min()) if len(rivals) else math.nan
            members.append({"runtime": runtime, "arch": row["arch"], "accuracy": row["accuracy"],
                            "macs": row["macs"], "latency_ms": row["median_ms"], "on_latency_front": bool(on_lat[i]),
                            "latency_front_best_ms": best, "extra_latency": row["median_ms"] / best - 1})
        cost = [m["extra_latency"] for m in members if m["runtime"] == runtime]
        lines.append(f"  MAC-front members take {np.median(cost):+.0%} (median), up to {max(cost):+.0%} more"
                     " latency than the fastest latency-front member at least as accurate")
    return lines, pd.DataFrame(members), pd.concat(flagged) if flagged else pd.DataFrame()


def figure(df: pd.DataFrame, acc: pd.DataFrame, out: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runtimes = sorted(df["runtime"].unique())
    fig = Figure(figsize=(5.5 * len(runtimes), 4.5 * 2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    for j, runtime in enumerate(runtimes):
        ax = fig.add_subplot(2, len(runtimes), j + 1)
        for set_name, g in df[df["runtime"] == runtime].groupby("set"):
            ax.scatter(g["macs"] / 1e6, g["median_ms"], s=10, alpha=0.7, label=set_name)
        ax.set(xscale="log", yscale="log", xlabel="MACs (M)", ylabel="latency (ms)",
               title=f"{runtime}, batch 1, 1 thread")
        ax.legend(fontsize=7)
        ax = fig.add_subplot(2, len(runtimes), len(runtimes) + j + 1)
        g = acc[acc["runtime"] == runtime] if len(acc) else acc
        if len(g):
            ax.scatter(g["median_ms"], g["accuracy"], s=10, color="0.6", label="archs with an accuracy")
            lat = g[g["on_latency_front"]].sort_values("median_ms")
            ax.step(lat["median_ms"], lat["accuracy"], where="post", color="C2", label="latency front")
            mac = g[g["on_mac_front"]]
            ax.scatter(mac["median_ms"], mac["accuracy"], s=40, facecolors="none", edgecolors="C3",
                       label="MAC front's members")
            ax.set(xscale="log", xlabel="latency (ms)", ylabel="accuracy", title="accuracy against latency")
            ax.legend(fontsize=7)
    path = out / "latency_vs_macs.png"
    fig.savefig(path)
    return path


def report(out: Path, accuracy_note: str, table: pd.DataFrame) -> None:
    df = pd.read_csv(out / "latencies.csv")
    taus = tau_table(df)
    choice = by_choice(df[df["set"].isin(SPACES)])
    lines, members, acc = fronts(df, table)
    taus.to_csv(out / "tau.csv", index=False)
    choice.to_csv(out / "ns_per_mac_by_choice.csv", index=False)
    members.to_csv(out / "mac_front_latency.csv", index=False)
    text = ["Kendall tau-b between MACs and measured latency:", taus.to_string(index=False), "",
            "latency per MAC (ns) by choice value, random archs of the spaces at 32 px:",
            choice.to_string(index=False) if len(choice) else "-", "",
            f"fronts (accuracy: {accuracy_note}):", *lines,
            f"figure: {figure(df, acc, out)}"]
    (out / "summary.txt").write_text("\n".join(text) + "\n")
    print("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=100, help="random archs per space (32 px)")
    parser.add_argument("--presets", type=int, default=None, help="the first N presets at 224 px (default all)")
    parser.add_argument("--accuracy-archs", type=int, default=None, help="archs with an accuracy (default all)")
    parser.add_argument("--runtimes", default="onnxruntime,torch,executorch")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-s", type=float, default=3.0, help="timing cap per measurement")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latency_vs_macs"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = LatencySettings(threads=args.threads, max_s=args.max_s)
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    table, note = accuracy_table()
    if not args.report_only:
        for runtime in runtimes:
            check_settings(LatencySettings(runtime=runtime))  # a missing one: one line, before hours
        archs = [a for s in SPACES for a in space_archs(s, args.archs)] + preset_archs(args.presets)
        archs += accuracy_archs(table, args.accuracy_archs)
        print(f"{len(archs)} archs x {len(runtimes)} runtimes ({', '.join(runtimes)}), {args.threads}"
              f" thread(s), batch 1; accuracy: {note}; into {out}/latencies.csv", flush=True)
        measure_all(archs, runtimes, settings, out / "latencies.csv")
    report(out, note, table)


if __name__ == "__main__":
    main()
