"""One progress display for a campaign: a bar over the points to train, a live line of counts
by status, a line per finished point, and the summary printed at the end."""

from __future__ import annotations

from collections import Counter
from typing import Callable

from nas.status import Status

SHOWN = (Status.COMPLETED, Status.PRUNED, Status.FAILED, Status.INFEASIBLE, Status.DUPLICATE)


class Progress:
    def __init__(self, total: int, desc: str, *, enabled: bool = True, unit: str = "trial",
                 extra: Callable[[], str] | None = None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)
        self.counts: Counter[Status] = Counter()
        self.running = 0
        self.extra = extra  # more of the live line (a search's front size)
        self.show()

    def show(self) -> None:
        parts = [f"running {self.running}"] + [f"{s.value.lower()} {self.counts[s]}" for s in SHOWN
                                               if self.counts[s] or s in (Status.COMPLETED, Status.FAILED)]
        if self.extra is not None:
            parts.append(self.extra())
        self.bar.set_postfix_str(" ".join(parts))

    def started(self) -> None:
        self.running += 1
        self.show()

    def done(self, status: Status, line: str | None = None, *, trained: bool = True) -> None:
        """A point finished; `trained=False`: a free one (infeasible, duplicate), not on the bar."""
        self.counts[Status(status)] += 1
        if trained:
            self.running = max(0, self.running - 1)
            self.bar.update()
        if line:
            self.bar.write(line)
        self.show()

    def close(self) -> None:
        self.bar.close()


def summary_line(statuses: list[str]) -> str:
    """'5 completed, 1 failed, 3 infeasible' (in Status order)."""
    counts = Counter(str(s) for s in statuses)
    order = [s.value for s in Status] + sorted(set(counts) - {s.value for s in Status})
    return ", ".join(f"{counts[name]} {name.lower()}" for name in order if counts[name])
