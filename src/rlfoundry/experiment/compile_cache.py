"""A persistent XLA compilation cache shared by every rlfoundry process.

Compiling a training chunk takes seconds to tens of seconds on a small CPU; the program
for a given config, seed count and chunk size is always the same, so later runs (a
resume, an eval, a repeated demo, a test) load it from disk instead. JAX keys entries by
the program itself, so changing code or settings can never pick up a stale program.
``RLFOUNDRY_COMPILE_CACHE`` (or ``--compile-cache``) chooses the folder; ``off`` disables.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "RLFOUNDRY_COMPILE_CACHE"


def default_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "rlfoundry" / "xla")


def enable(directory: str | None = None) -> str | None:
    """Point JAX's persistent cache at ``directory`` (or $RLFOUNDRY_COMPILE_CACHE, or the
    default); returns the folder used, or None when disabled."""
    choice = directory or os.environ.get(ENV_VAR) or default_dir()
    if choice.lower() in ("off", "none", "0", "false"):
        return None
    try:
        Path(choice).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # an unwritable cache only costs time
    import jax

    jax.config.update("jax_compilation_cache_dir", choice)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return choice
