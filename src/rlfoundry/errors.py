"""User-facing errors.

Anything a user can get wrong (a name, a size, a file) raises one of these before any
JAX tracing starts, with a one-line message that names the fix. The CLI prints the
message alone, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RLFoundryError(Exception):
    """Base class of every error a user can cause and fix."""


class ConfigError(RLFoundryError, ValueError):
    """A configuration value, name or shape is invalid."""


class RunFolderError(RLFoundryError):
    """A run folder is missing, incomplete or would be overwritten."""


class CheckpointError(RLFoundryError):
    """A checkpoint cannot be read (missing, corrupted or from another config)."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean X?' for the closest names, or '' if nothing is close."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [c for low, c in lowered.items() if name.lower() in low][:3]
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
