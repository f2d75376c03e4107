"""The run folder: one directory per run holding everything later commands need.

Layout::

    runs/<name>/
      config.json        RunSpec: algo, config, seeds, chunk size (written first, atomically)
      metrics.jsonl      one JSON object per update: {"update", "steps", key: [per seed]}
      tb/                TensorBoard event files
      checkpoints/<n>/   orbax checkpoints after n updates (the last few kept)
      summary.json       final per-seed results (present only once training finished)
      plots/             learning_curve.png
      report.md          a short report embedding the plots
      videos/            renders

Everything is JSON, JSONL, PNG or orbax's own files: nothing needs pickle to read.
A folder is *complete* once ``summary.json`` exists; one with ``config.json`` but no
summary is an interrupted run that ``rlfoundry train --resume`` continues.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from rlfoundry.errors import RunFolderError
from rlfoundry.experiment.spec import RunSpec


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


class RunFolder:
    """Paths of a run folder, and the checks that make errors one readable line."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    summary_path = property(lambda self: self.path / "summary.json")
    report_path = property(lambda self: self.path / "report.md")
    tb_dir = property(lambda self: self.path / "tb")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    plots_dir = property(lambda self: self.path / "plots")
    videos_dir = property(lambda self: self.path / "videos")
    lock_path = property(lambda self: self.path / ".lock")

    @property
    def complete(self) -> bool:
        return self.summary_path.is_file()

    # --- creating -----------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, spec: RunSpec, overwrite: bool = False) -> RunFolder:
        """A fresh run folder holding ``spec``; refuses to replace an existing run unless
        ``overwrite``, and never deletes a non-empty folder that is not a run folder."""
        folder = cls(path)
        p = folder.path
        if p.exists() and not p.is_dir():
            raise RunFolderError(f"{p} exists and is a file; pick another --run-dir.")
        if p.is_dir() and any(p.iterdir()):
            if not folder.config_path.is_file():
                raise RunFolderError(
                    f"{p} exists and is not a run folder (no config.json); refusing to touch "
                    "it, pick another --run-dir."
                )
            if not overwrite:
                raise RunFolderError(
                    f"run folder {p} already exists; pass --overwrite to replace it, "
                    f"--resume {p} to continue it, or pick another --run-dir."
                )
            folder.check_unlocked()
            shutil.rmtree(p)
        p.mkdir(parents=True, exist_ok=True)
        write_json(folder.config_path, spec.to_json())
        return folder

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        folder = cls(path)
        if not folder.path.is_dir():
            raise RunFolderError(
                f"run folder {folder.path} does not exist; check the path or train one with "
                f"`rlfoundry train --run-dir {folder.path}`."
            )
        if not folder.config_path.is_file():
            raise RunFolderError(
                f"{folder.path} is not a run folder (no config.json); it may be half-written "
                "or not from rlfoundry: retrain with `rlfoundry train --run-dir "
                f"{folder.path} --overwrite`."
            )
        return folder

    def read_spec(self) -> RunSpec:
        from rlfoundry.errors import ConfigError

        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise RunFolderError(
                f"{self.config_path} is unreadable ({type(err).__name__}); the folder is "
                "damaged: retrain with --overwrite."
            ) from None
        try:
            return RunSpec.from_json(data, where=str(self.config_path))
        except ConfigError as err:
            raise RunFolderError(f"{err} Retrain with --overwrite.") from None

    def read_summary(self) -> dict[str, Any] | None:
        if not self.complete:
            return None
        try:
            return json.loads(self.summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    # --- one writer at a time -----------------------------------------------------------

    def _lock_owner(self) -> int | None:
        try:
            pid = int(self.lock_path.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid == os.getpid():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # stale: its writer died (e.g. kill -9)
        except PermissionError:
            return pid
        return pid

    def check_unlocked(self) -> None:
        owner = self._lock_owner()
        if owner is not None:
            raise RunFolderError(
                f"{self.path} is being written by process {owner}; wait for it or stop it first."
            )

    def lock(self) -> None:
        self.check_unlocked()
        atomic_write_text(self.lock_path, f"{os.getpid()}\n")

    def unlock(self) -> None:
        if self.lock_path.is_file() and self._lock_owner() is None:
            self.lock_path.unlink(missing_ok=True)
