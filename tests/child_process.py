"""Run a pytest file in a child process watched by its CPU clock.

jaxlib 0.10.2 deadlocked in batched LAPACK QR (fixed at the root by
``rlfoundry.initializers``); as a guard, the slow training cases of discovery and GROOVE
run in a fresh process, and one whose CPU time stops advancing is killed and retried
instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux /proc), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_watched(cmd: list[str], stall: float = 90.0, limit: float = 1200.0) -> str | None:
    """Run ``cmd``; its output, or None if it stalled (no CPU progress for ``stall`` s,
    the signature of the deadlock: a loaded machine slows a run but never stops its clock)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
        start = last_change = time.monotonic()
        last_cpu = -1.0
        while proc.poll() is None:
            time.sleep(2.0)
            try:
                cpu = cpu_seconds(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            now = time.monotonic()
            if cpu > last_cpu + 0.05:
                last_cpu, last_change = cpu, now
            if now - last_change > stall or now - start > limit:
                proc.kill()
                proc.wait()
                return None
        out.seek(0)
        text = out.read()
    assert proc.returncode == 0, text[-6000:]
    return text


def run_cases(path: Path, attempts: int = 2) -> None:
    """Run the test file ``path`` in a child pytest; fail on any failure, retry a stall."""
    cmd = [sys.executable, "-m", "pytest", str(path), "-x", "-p", "no:cacheprovider"]
    for _ in range(attempts):
        text = run_watched(cmd)
        if text is None:
            continue  # the XLA CPU deadlock's signature: try again in a new process
        assert " passed" in text, text[-3000:]
        return
    pytest.fail(f"{path.name} stalled {attempts} times (XLA CPU deadlock?)")
