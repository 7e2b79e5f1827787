"""What happened to a point of a campaign: one enum for trials.csv, results.csv, the `nas.status`
MLflow tag, the Optuna attribute and the progress line; a `str` enum, so values read back compare equal."""

from __future__ import annotations

from enum import Enum

from nas import mlflow_layout as ml


class Status(str, Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"  # trained to the end of its budget
    PRUNED = "PRUNED"  # stopped early by the scheduler (a search's ASHA), its last rung recorded
    FAILED = "FAILED"  # raised, diverged (NaN) or lost its worker; the error is recorded
    INFEASIBLE = "INFEASIBLE"  # cannot or must not be trained: invalid, or over a size limit
    DUPLICATE = "DUPLICATE"  # the same architecture was trained already; its result stands
    KILLED = "KILLED"  # the campaign's process was killed while it ran; a resume runs it again
    INTERRUPTED = "INTERRUPTED"  # the campaign was stopped (Ctrl-C) while it ran; a resume runs it again

    def __str__(self) -> str:
        return self.value

    @property
    def trained(self) -> bool:
        """Training ran and produced a validation accuracy."""
        return self in (Status.COMPLETED, Status.PRUNED)

    @property
    def untrained(self) -> bool:
        """Recorded without spending any training (free for the trial budget)."""
        return self in (Status.INFEASIBLE, Status.DUPLICATE)

    @property
    def unfinished(self) -> bool:
        """Stopped before a result by the campaign's end, not by its own fault: run again on resume."""
        return self in (Status.RUNNING, Status.KILLED, Status.INTERRUPTED)

    @property
    def mlflow_terminal(self) -> str:
        """The MLflow run status this ends a run with."""
        return {Status.FAILED: ml.RUN_FAILED, Status.KILLED: ml.RUN_KILLED, Status.INTERRUPTED: ml.RUN_KILLED,
                Status.RUNNING: ml.RUN_RUNNING}.get(self, ml.RUN_FINISHED)
