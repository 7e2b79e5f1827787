"""User-facing errors: one line each, printed by the CLI without a traceback (exit code 2)."""

from __future__ import annotations


class NasError(Exception):
    """Base for errors caused by user input; the message is the whole story."""


class SpecError(NasError, ValueError):
    """A network spec, preset or override is invalid; the message names the field path and the fix."""


class DataError(NasError):
    """A data problem: missing files, a bad config or a malformed file."""


class UnknownNameError(SpecError):
    """A name that does not exist: a typo, never a property of the values (so an ablation refuses
    the file instead of recording the cell INFEASIBLE)."""
