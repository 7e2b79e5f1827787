"""What `benchmarks/gpu_check.sh` reads back: each step's one `GPUCHECK {json}` line (a
StepResult), the output of the tools the steps drive (train_throughput.py's table, `nas run`'s
summary), the arithmetic of shared trials, and the final table with its PASS / FAIL line. No torch
here: `python benchmarks/gpu_check.py report` and the tests of this parsing start in milliseconds.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MARK = "GPUCHECK "


@dataclass
class StepResult:
    step: str
    status: str  # pass | FAIL | skip
    summary: str  # one short line of figures, for the table and the final line
    figures: dict[str, Any] = field(default_factory=dict)


def emit(result: StepResult) -> None:
    print(MARK + json.dumps(asdict(result)), flush=True)


def parse_step_log(step: str, text: str, rc: int | None, cap_s: float) -> StepResult:
    """The step's last GPUCHECK line; a step killed by its cap or crashed is a FAIL saying so."""
    found = [ln for ln in text.splitlines() if ln.startswith(MARK)]
    if found and rc in (0, None):
        return StepResult(**json.loads(found[-1][len(MARK):]))
    if rc in (124, 137):
        partial = f" (last figures: {json.loads(found[-1][len(MARK):])['summary']})" if found else ""
        return StepResult(step, "FAIL", f"timed out after {cap_s:g}s{partial}")
    last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "no output")
    return StepResult(step, "FAIL", f"exit {rc}: {last[:160]}")


def split_row(line: str) -> list[str]:
    """A row of train_throughput's tables: columns are separated by two spaces or more."""
    return [c for c in re.split(r"\s{2,}", line.strip()) if c]


def parse_throughput(text: str) -> dict[str, float]:
    """nas img/s, nas/bare and nas/seeds ratios from `train_throughput.py --part loop`'s table."""
    out: dict[str, float] = {}
    keys = {"nas train() loop": "nas_img_s", "1. nas img/s / bare img/s": "vs_bare",
            "3. nas epoch / seeds epoch": "vs_seeds"}
    for line in text.splitlines():
        cols = split_row(line)
        for label, key in keys.items():
            if cols and cols[0].startswith(label) and len(cols) > 1:
                out[key] = float(cols[1].replace(",", ""))
    missing = {"nas_img_s", "vs_bare", "vs_seeds"} - set(out)
    if missing:
        raise ValueError(f"train_throughput.py printed no {', '.join(sorted(missing))}")
    return out


def parse_nas_run(text: str) -> dict[str, float]:
    """Epochs, summed epoch seconds and test accuracy from `nas run`'s epoch lines and summary."""
    epochs = [float(m.group(2)) for m in re.finditer(r"^epoch (\d+)/\d+ .* ([\d.]+)s$", text, re.M)]
    test = re.search(r"^test_acc \(report only\)\s+([\d.]+)", text, re.M)
    wall = re.search(r"^wall time\s+([\d.]+)s", text, re.M)
    if not epochs or test is None:
        raise ValueError("nas run printed no epoch lines or no test_acc")
    return {"epochs": len(epochs), "train_s": sum(epochs), "test_acc": float(test.group(1)),
            "wall_s": float(wall.group(1)) if wall else math.nan}


def aggregate_rate(epochs: list[list[tuple[float, float, int]]]) -> float:
    """Images per second of all trials together while every one of them was training: each
    trial's epochs are (start, end, images); the window runs from the latest start of a second
    epoch (the first one holds start-up) to the earliest end of a last one, and each epoch counts
    the share of its images that falls inside it. NaN when the trials never overlapped."""
    skip = [e[1:] if len(e) > 1 else e for e in epochs]
    lo, hi = max(e[0][0] for e in skip), min(e[-1][1] for e in skip)
    if hi <= lo:
        return math.nan
    inside = sum(n * max(0.0, min(b, hi) - max(a, lo)) / (b - a) for e in skip for a, b, n in e)
    return inside / (hi - lo)


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most intervals open at one time (an end at the same time as a start does not overlap)."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def final_line(results: list[StepResult]) -> str:
    failed = [r.step for r in results if r.status == "FAIL"]
    figures = "; ".join(f"{r.step}: {r.summary}" for r in results)
    return (f"FAIL {', '.join(failed)} | " if failed else "PASS | ") + figures


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def collect(out: Path, steps: list[str]) -> list[tuple[StepResult, str, str]]:
    """Each step's result from its log (`STEP.log`), exit status (`STEP.rc`) and `STEP.time`
    ("seconds cap"), as gpu_check.sh writes them."""
    rows = []
    for step in steps:
        rc_text = read(out / f"{step}.rc").strip()
        secs, cap = (read(out / f"{step}.time").split() + ["?", "?"])[:2]
        rc = int(rc_text) if rc_text.lstrip("-").isdigit() else None
        text = read(out / f"{step}.log")
        if rc is None and not text:
            result = StepResult(step, "FAIL", "did not run")
        else:
            result = parse_step_log(step, text, rc, float(cap) if cap != "?" else math.nan)
        rows.append((result, secs, cap))
    return rows


def report(out: Path, steps: list[str]) -> int:
    rows = collect(out, steps)
    width = max(len(s) for s in steps)
    print(f"\n{'step':<{width}}  result  {'s':>5}  {'cap':>5}  figures")
    print(f"{'-' * width}  ------  -----  -----  -------")
    for result, secs, cap in rows:
        print(f"{result.step:<{width}}  {result.status:<6}  {secs:>5}  {cap:>5}  {result.summary}")
    line = final_line([r for r, _, _ in rows])
    print(line)
    return 0 if line.startswith("PASS") else 1
