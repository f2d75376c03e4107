"""Interrupted runs: kill -9 and Ctrl-C, then resume to the exact uninterrupted result.

The interrupted runs are real ``rlfoundry train`` subprocesses (signals need a process);
the reference and the resumes run in-process. On CPU the resumed run must end with the
same parameters and the same ``metrics.jsonl``, bit for bit, as the uninterrupted one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import pytest

os.environ.setdefault("RLFOUNDRY_COMPILE_CACHE",
                      str(Path(tempfile.gettempdir()) / "rlfoundry-test-xla-cache"))

from rlfoundry.cli import main  # noqa: E402

# 32 updates in 16 chunks, a checkpoint after each: long enough to interrupt midway, and
# the same compiled program as test_cli.py's runs.
ARGS = ["--env", "CartPole-v1", "--total-steps", "2048", "--num-envs", "4", "--num-steps",
        "16", "--set", "update_epochs=1", "--set", "num_minibatches=2", "--seeds", "2",
        "--chunk-updates", "2", "--no-progress"]
TOTAL = 32


def final_state(run_dir: Path) -> tuple[object, int]:
    from rlfoundry.experiment.evaluate import load_trained
    from rlfoundry.experiment.runfolder import RunFolder

    trained = load_trained(RunFolder.open(run_dir))
    return trained.state, trained.update


def assert_same_run(a: Path, b: Path) -> None:
    sa, ua = final_state(a)
    sb, ub = final_state(b)
    assert ua == ub == TOTAL
    la, lb = jax.tree.leaves(sa), jax.tree.leaves(sb)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y)), "parameters differ"
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("ref") / "ref"
    assert main(["train", *ARGS, "--run-dir", str(run_dir)]) == 0
    return run_dir


def start_training(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rlfoundry.cli", "train", *ARGS, "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_checkpoint(proc: subprocess.Popen, run_dir: Path, timeout: float = 240.0) -> int:
    """Poll until the first checkpoint is on disk; returns its update count."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ckpts = run_dir / "checkpoints"
        done = [int(p.name) for p in ckpts.iterdir() if p.name.isdigit()] \
            if ckpts.is_dir() else []
        if done:
            return min(done)
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.communicate()}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("no checkpoint appeared")


def test_kill_9_then_resume_matches_uninterrupted(reference: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "killed"
    proc = start_training(run_dir)
    wait_for_checkpoint(proc, run_dir)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run_dir / "summary.json").exists(), "run finished before the kill"
    saved = max(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    assert saved < TOTAL
    assert main(["train", "--resume", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert f"resumed from the checkpoint after {saved} updates" in err
    assert (run_dir / "summary.json").is_file()
    assert_same_run(reference, run_dir)


def test_ctrl_c_saves_and_resume_matches(reference: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "interrupted"
    proc = start_training(run_dir)
    first = wait_for_checkpoint(proc, run_dir)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "SIGINT: stopping after the current chunk" in err
    assert f"Resume with: rlfoundry train --resume {run_dir}" in out
    steps = [int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()]
    stopped = max(steps)
    assert first <= stopped < TOTAL
    assert f"after {stopped}/{TOTAL} updates" in out
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == stopped  # the log stops exactly at the saved state
    assert not (run_dir / ".lock").exists()
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert_same_run(reference, run_dir)
    assert main(["train", "--resume", str(run_dir)]) == 0  # finished: nothing to do
