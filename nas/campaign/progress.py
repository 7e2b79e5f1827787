"""One progress display for a campaign: a bar over the points to train, a live line of counts
by status, a line per finished point, the summary printed at the end, and the exit code (0 only
when a point trained to a result, else 1 with one line saying why: a CI job never passes on an
empty table)."""

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


NOTHING_WORKED = 1  # the campaign ran but produced no result (bad input is 2, Ctrl-C 130)


def no_result_reason(points, what: str) -> str | None:
    """None when a point of `points` (a DataFrame: a `status` column, an optional `error` one) has
    a result; else the one-line reason, with the most common error."""
    statuses = [Status(s) for s in points["status"]] if len(points) else []
    if any(s.trained for s in statuses):
        return None
    if not statuses:
        return f"no {what} ran"
    errors = [" ".join(str(e).split()) for e in points.get("error", ()) if isinstance(e, str) and e.strip()]
    common = f"; most common error: {Counter(errors).most_common(1)[0][0][:300]}" if errors else ""
    return f"no {what} produced a result ({summary_line([s.value for s in statuses])}){common}"
