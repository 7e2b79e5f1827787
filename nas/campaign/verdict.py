"""The exit code of `nas search` / `nas ablate`: 0 only when a point trained to a result, else 1
with one line saying why, so a CI job never passes on an empty table."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from nas.campaign.progress import summary_line
from nas.status import Status

NOTHING_WORKED = 1  # the campaign ran but produced no result (bad input is 2, Ctrl-C 130)


def no_result_reason(points: pd.DataFrame, what: str) -> str | None:
    """None when a point of `points` (a `status` column, an optional `error` one) has a result;
    else the one-line reason, with the most common error."""
    statuses = [Status(s) for s in points["status"]] if len(points) else []
    if any(s.trained for s in statuses):
        return None
    if not statuses:
        return f"no {what} ran"
    errors = [" ".join(str(e).split()) for e in points.get("error", pd.Series(dtype=str))
              if isinstance(e, str) and e.strip()]
    common = f"; most common error: {Counter(errors).most_common(1)[0][0][:300]}" if errors else ""
    return f"no {what} produced a result ({summary_line([s.value for s in statuses])}){common}"
