"""The one exception type users see: a one-sentence message naming the thing and what was expected."""

from __future__ import annotations


class InterpretganError(Exception):
    """A user-facing error. The CLI prints ``str(err)`` alone, with no traceback."""


class DataError(InterpretganError):
    """A dataset file is missing, truncated, corrupt or of the wrong content."""


class ConfigError(InterpretganError):
    """An option, preset, layer or model name is unknown or impossible."""


class RunError(InterpretganError):
    """A run folder is missing, incomplete or incompatible with the request."""
