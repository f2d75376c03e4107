"""Checkpoints of the whole training state, written atomically by orbax.

A checkpoint after ``n`` updates is ``checkpoints/<n>/`` with the state pytree (all seeds,
leading seed axis) and a small JSON record: the update count, cumulative timings and a
SHA-256 of every array. orbax writes into a temporary folder and renames it when done, so
a ``kill -9`` mid-save leaves the previous checkpoints intact; the checksum catches files
damaged afterwards, which orbax itself may read back without complaint.

Restoring needs an abstract state (shapes and dtypes), which comes from the run's config
alone (``jax.eval_shape`` of the learner's init), so a run folder needs no pickle.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlfoundry.errors import CheckpointError


def state_checksum(state: Any) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes, in tree order."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(jax.device_get(state)):
        arr = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def abstract_state(trainer: Any) -> Any:
    """Shapes and dtypes of ``trainer``'s state, without running or compiling anything."""
    return jax.eval_shape(trainer.init)


class Checkpointer:
    """Save and restore training states under one directory, keeping the last ``keep``."""

    def __init__(self, directory: str | Path, keep: int = 3):
        import orbax.checkpoint as ocp

        logging.getLogger("absl").setLevel(logging.ERROR)
        self._ocp = ocp
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=False
        )
        try:
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        except Exception as err:  # noqa: BLE001 - any failure here is a damaged folder
            raise CheckpointError(
                f"cannot open checkpoints in {self.directory} ({type(err).__name__}); "
                "the folder is damaged: remove it to start over."
            ) from None

    def steps(self) -> list[int]:
        """Update counts of the checkpoints on disk, oldest first."""
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, update: int, state: Any, record: dict[str, Any]) -> None:
        """Save ``state`` as the checkpoint after ``update`` updates (blocks until on disk)."""
        ocp = self._ocp
        record = {**record, "update": int(update), "checksum": state_checksum(state)}
        self._manager.save(
            int(update),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)
            ),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore(self, abstract: Any, update: int | None = None) -> tuple[Any, dict[str, Any]]:
        """The state and record of checkpoint ``update`` (default: the latest), verified."""
        ocp = self._ocp
        steps = self.steps()
        if not steps:
            raise CheckpointError(f"no checkpoint in {self.directory}.")
        if update is None:
            update = steps[-1]
        if update not in steps:
            raise CheckpointError(
                f"no checkpoint after {update} updates in {self.directory}; "
                f"available: {', '.join(map(str, steps))}."
            )
        path = self.directory / str(update)
        earlier = [s for s in steps if s < update]
        fix = (
            f"delete {path} to fall back to the checkpoint after {earlier[-1]} updates"
            if earlier else "retrain the run with --overwrite"
        )
        try:
            out = self._manager.restore(
                update,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()
                ),
            )
            state, record = out.state, dict(out.record)
        except Exception as err:  # noqa: BLE001 - orbax/tensorstore raise many kinds
            raise CheckpointError(
                f"checkpoint {path} is corrupted or does not match this run's config "
                f"({type(err).__name__}); {fix}."
            ) from None
        if record.get("checksum") != state_checksum(state):
            raise CheckpointError(f"checkpoint {path} is corrupted (checksum mismatch); {fix}.")
        return state, record

    def close(self) -> None:
        self._manager.close()
