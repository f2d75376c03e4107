"""Discovery tests, run in a child pytest watched by its CPU clock.

jaxlib 0.10.2 on CPU deadlocked in batched LAPACK QR inside ES generation programs (every
thread idle; fixed at the root by rlfoundry.initializers, see README "Known issues"). As a
guard the cases in ``discovery_cases.py`` run in a fresh process: one whose CPU clock stops
for 90 s is deadlocked, not failing, and is retried once. Any assertion failure fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

CASES = Path(__file__).with_name("discovery_cases.py")


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


def test_discovery_cases_in_a_child_process():
    cmd = [sys.executable, "-m", "pytest", str(CASES), "-x", "-p", "no:cacheprovider"]
    for _ in range(2):
        text = run_watched(cmd)
        if text is None:
            continue  # the known XLA CPU deadlock: try again in a new process
        assert " passed" in text
        return
    pytest.fail("discovery cases stalled twice (the XLA CPU deadlock)")


def test_toy_es_step_and_config_checks():
    """The parts of discovery that never run an inner training (no deadlock risk)."""
    from discovery_cases import (
        test_config_validation_and_json_round_trip,
        test_one_es_generation_improves_fitness_on_a_toy_objective,
    )

    test_one_es_generation_improves_fitness_on_a_toy_objective()
    test_config_validation_and_json_round_trip()
