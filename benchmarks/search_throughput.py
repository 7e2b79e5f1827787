"""Architectures a search trains per hour, and how far: today's default `nas search` beside
the former default (NSGA-II with scalar ASHA at 3,000 images x 4 epochs, 500 validation images:
the search issue 14 was filed against) and beside today's sampler and early-stopping rule at
that former budget, same space, trial count, machine and session.

A search's cost is its architectures, but an architecture stopped at its first rung is not
one the front can use, so the table counts both: `trained` (any epochs), `to the end` (the
budget's last epoch), the image-epochs behind each, the wall time (MLflow's `wall_time_s` of
the search's parent run, summed over resumes) and the front's MAC span against the space's
feasible range, and the compute rate (MACs x images per second per core: equal rates mean the
rows differ in what they trained, not in how fast). What each budget's ranking is worth is
`benchmarks/fidelity.py`'s (Kendall tau against 5x the compute). Its last line:
`to_the_end_per_hour_ratio=R trained_per_hour_ratio=R` (default over former) and
`same_budget_to_the_end_per_hour_ratio=R` (default-3000x4 over former: the search's own gain).

    python benchmarks/search_throughput.py --data-root ~/.cache/nas/data --trials 50   # ~2.5 h on 2 cores
    python benchmarks/search_throughput.py --workdir W --no-run                          # the table of W
    python benchmarks/search_throughput.py --quick                                       # plumbing, ~2 min

Each search runs as a user types it (`nas search --space shufflenet --trials N ...`) in
`--workdir` (its MLflow store `W/mlflow.db`, folders `W/searches/throughput-*`); one already
finished is not run again, one interrupted is resumed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SPACE = "shufflenet"
TRAINED = ("COMPLETED", "PRUNED", "FAILED")
QUICK_WORDS = ["data.name=synthetic", "data.val_size=64", "data.train_subset=256",
               "data.synthetic_train=512", "data.synthetic_test=64", "train.batch_size=64"]


@dataclass(frozen=True)
class Config:
    label: str
    options: tuple[str, ...]  # `nas search` options and words on top of the budget


FORMER_BUDGET = ("data.train_subset=3000", "data.val_size=500", "train.epochs=4")
CONFIGS = (
    Config("former", ("--sampler", "nsga2", "--scheduler", "asha", *FORMER_BUDGET)),
    Config("default", ()),
    # today's sampler and early-stopping rule at the former budget: what the search itself
    # gains per hour, apart from the budget's 2.5x image-epochs per arch (bought for fidelity)
    Config("default-3000x4", FORMER_BUDGET),
)


@dataclass
class Row:
    label: str
    sampled: int
    by_status: dict[str, int]
    trained: int
    to_the_end: int
    image_epochs: float
    mac_image_epochs: float  # sum over trained archs of MACs x images x epochs: compute done
    wall_s: float
    front_macs: tuple[float, float]
    cores: int  # of the machine the searches ran on (all of its cores train trials)

    @property
    def per_hour(self) -> tuple[float, float]:
        hours = self.wall_s / 3600
        return self.trained / hours, self.to_the_end / hours

    @property
    def gmacs_per_core_s(self) -> float:
        """Forward MACs x images trained per second per core: the same speed in every row says
        the rows differ in what they trained, not in how fast."""
        return self.mac_image_epochs / self.wall_s / self.cores / 1e9


def search_folder(workdir: Path, config: Config) -> Path:
    return workdir / "searches" / f"throughput-{config.label}"


def _trained(folder: Path) -> int:
    table = folder / "trials.csv"
    return int(pd.read_csv(table)["status"].isin(TRAINED).sum()) if table.exists() else 0


def run_search(workdir: Path, config: Config, trials: int, budget: str, words: list[str]) -> None:
    """`nas search` as a user types it, in workdir (./mlflow.db); resumed if interrupted."""
    folder = search_folder(workdir, config)
    if _trained(folder) >= trials:
        print(f"  {folder.name}: finished before, not run again", flush=True)
        return
    cmd = [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())", "search",
           "--space", SPACE, "--trials", str(trials), "--budget", budget, "--name", folder.name,
           *config.options, *words, *(["--resume"] if folder.exists() else [])]
    print("  $ nas " + " ".join(cmd[3:]), flush=True)
    subprocess.run(cmd, check=True, cwd=workdir)


def parent_run(workdir: Path, folder: Path) -> tuple[float, int]:
    """(wall seconds, training images per epoch) of a search, from its MLflow parent run: the
    `wall_time_s` of each (resumed) invocation summed, and the `data_sizes.train` it trained on."""
    import json

    from mlflow.tracking import MlflowClient

    from nas import mlflow_layout as ml

    run_id = json.loads((folder / "state.json").read_text())["parent_run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    wall = sum(m.value for m in client.get_metric_history(run_id, ml.WALL_TIME_S))
    return wall, int(client.get_run(run_id).data.params["data_sizes.train"])


def measure(workdir: Path, config: Config) -> Row:
    folder = search_folder(workdir, config)
    df = pd.read_csv(folder / "trials.csv")
    full_epochs = int(df.loc[df["status"] == "COMPLETED", "epochs"].max())
    wall, images = parent_run(workdir, folder)
    trained = df[df["status"].isin(TRAINED)]
    front = df[df["pareto"].fillna(False).astype(bool)] if "pareto" in df else df.iloc[:0]
    return Row(config.label, len(df), df["status"].value_counts().to_dict(), len(trained),
               int(((df["status"] == "COMPLETED") & (df["epochs"] == full_epochs)).sum()),
               float(trained["epochs"].fillna(0).sum() * images),
               float((trained["epochs"].fillna(0) * trained["macs"]).sum() * images), wall,
               (float(front["macs"].min()), float(front["macs"].max())) if len(front) else (0.0, 0.0),
               os.cpu_count() or 1)


def feasible_mac_range(max_macs: float) -> tuple[float, float]:
    """The MAC counts (32 px, 10 classes) of the space's architectures under the MAC limit."""
    from nas.counting import count
    from nas.space import load_space

    space = load_space(SPACE)
    macs = [count(space.to_spec(point, resolution=32, num_classes=10, in_channels=3)).macs
            for point in space.points()]
    feasible = [m for m in macs if m <= max_macs]
    return min(feasible), max(feasible)


def report(rows: list[Row], space_range: tuple[float, float]) -> str:
    """The table (former, default, default at the former budget), the space's feasible MAC
    range, and the ratio line."""
    from nas.table import format_table, millions

    statuses = sorted({s for r in rows for s in r.by_status})
    headers = ["search", "sampled", *(s.lower() for s in statuses), "trained", "to the end",
               "image-epochs/trained", "GMAC-images/s/core", "wall min", "trained/h", "to the end/h", "front MACs"]
    table = [[r.label, r.sampled, *(r.by_status.get(s, 0) for s in statuses), r.trained,
              r.to_the_end, f"{r.image_epochs / max(r.trained, 1):,.0f}",
              f"{r.gmacs_per_core_s:.2f}", f"{r.wall_s / 60:.1f}",
              f"{r.per_hour[0]:.1f}", f"{r.per_hour[1]:.1f}",
              f"{millions(r.front_macs[0])}-{millions(r.front_macs[1])}"] for r in rows]
    former, default, same_budget = rows
    trained, to_the_end = _ratios(default, former)
    return "\n".join([format_table(headers, table, "l" + "r" * (len(headers) - 1)),
                      f"space's feasible MACs: {millions(space_range[0])}-{millions(space_range[1])}",
                      f"to_the_end_per_hour_ratio={to_the_end:.3f} trained_per_hour_ratio={trained:.3f} "
                      f"same_budget_to_the_end_per_hour_ratio={_ratios(same_budget, former)[1]:.3f}"])


def _ratios(row: Row, former: Row) -> list[float]:
    """(trained, to the end) per hour of row over former's."""
    return [r / f if f else float("nan") for r, f in zip(row.per_hour, former.per_hour)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--data-root", help="CIFAR-10 folder (data.root=)")
    parser.add_argument("--workdir", help="where the searches and their MLflow store go (default: a temp folder)")
    parser.add_argument("--no-run", action="store_true", help="only the table of what --workdir holds")
    parser.add_argument("--quick", action="store_true", help="smoke budget on synthetic data, 4 trials")
    args = parser.parse_args(argv)
    budget = "smoke" if args.quick else "cpu"
    trials = 4 if args.quick else args.trials
    words = QUICK_WORDS if args.quick else [f"data.root={args.data_root}"] if args.data_root else []
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="nas-throughput-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.no_run:
        for config in CONFIGS:
            run_search(workdir, config, trials, budget, words)
    from nas.campaign.budget import get_budget

    max_macs = get_budget("search", budget).default_max_macs or float("inf")
    print(report([measure(workdir, c) for c in CONFIGS], feasible_mac_range(max_macs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
