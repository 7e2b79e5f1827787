"""User-facing errors: one line each, printed by the CLI without a traceback (exit code 2)."""

from __future__ import annotations


class NasError(Exception):
    """Base for errors caused by user input; the message is the whole story."""


class SpecError(NasError, ValueError):
    """A network spec, preset or override is invalid; the message names the field path and the fix."""


class DataError(NasError):
    """A one-line, user-facing data problem (missing files, bad config); printed without traceback."""


class UnknownNameError(SpecError):
    """A field, key, preset or option name that does not exist: a typo in the input, never a
    property of the values (so an ablation refuses the file instead of recording the cell
    INFEASIBLE)."""
