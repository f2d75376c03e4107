"""The training host loop: chunks, logs, checkpoints, and stopping safely.

The engine's :class:`~rlfoundry.engine.Trainer` runs compiled chunks; this loop drives it
one chunk at a time (``trainer.run(state, until=...)``) so that after every chunk it holds
the completed state: it appends the chunk's rows to ``metrics.jsonl`` *then* saves a
checkpoint (so the log is never behind a checkpoint, and resume cuts it back to one).

Ctrl-C (SIGINT) and SIGTERM do not interrupt a chunk: a running XLA computation cannot be
cancelled, and the chunk donates its input buffers, so the only consistent state is the
one the chunk returns. The first signal asks the loop to stop after the current chunk and
save; a second one aborts at once (the last periodic checkpoint stays valid). A kill -9
loses at most the updates since the last checkpoint: one chunk with the default
``checkpoint_every``. Resuming restores the state, and because the chunk size is stored in
``config.json`` the same compiled program continues, so on CPU the result is bit-identical
to a run that was never interrupted.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from typing import Any

from rlfoundry.experiment.checkpoint import Checkpointer, abstract_state
from rlfoundry.experiment.logs import MetricsLog, TensorBoardLog, rows_from_chunk
from rlfoundry.experiment.progress import Progress
from rlfoundry.experiment.runfolder import RunFolder
from rlfoundry.experiment.spec import RunSpec


class StopRequest:
    """Context manager turning SIGINT/SIGTERM into a flag checked between chunks."""

    def __init__(self, notify: Any = None):
        self.requested: str | None = None
        self._notify = notify or (lambda msg: None)
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            raise KeyboardInterrupt  # second signal: abort now
        self.requested = name
        self._notify(
            f"{name}: stopping after the current chunk and saving a checkpoint "
            "(send it again to abort without saving)."
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclasses.dataclass
class Outcome:
    """How a training session ended."""

    folder: RunFolder
    spec: RunSpec
    state: Any
    updates_done: int
    total_updates: int
    steps_per_update: int
    interrupted: str | None
    resumed_from: int | None
    timing: dict[str, float]
    summary: dict[str, Any] | None = None


def train(spec: RunSpec, folder: RunFolder, *, resume: bool = False, progress: bool = True,
          started: float | None = None, log: Any = print) -> Outcome:
    """Train ``spec`` into ``folder`` (from its latest checkpoint if ``resume``)."""
    from rlfoundry.engine import Trainer
    from rlfoundry.experiment.report import finish

    started = time.perf_counter() if started is None else started
    folder.lock()
    try:
        metrics_log = MetricsLog(folder.metrics_path)
        sink = _ChunkSink(metrics_log)
        trainer = Trainer(spec.config, seeds=spec.seeds, chunk_updates=spec.chunk_updates,
                          batched=spec.batched, callbacks=[sink])
        checkpoints = Checkpointer(folder.checkpoint_dir, keep=spec.keep_checkpoints)
        total = trainer.total_updates
        spu = trainer.steps_per_update
        prior = {"wall_seconds": 0.0, "compile_seconds": 0.0, "train_seconds": 0.0,
                 "sessions": 0}
        state, resumed_from = None, None
        if resume:
            latest = checkpoints.latest()
            if latest is not None:
                state, record = checkpoints.restore(abstract_state(trainer), latest)
                prior.update({k: record[k] for k in prior if k in record})
                resumed_from = latest
        done = resumed_from or 0
        metrics_log.truncate(done)
        sink.tb = TensorBoardLog(folder.tb_dir, purge_step=done * spu if resume else None)
        bar = Progress(f"{spec.algo} {getattr(spec.config, 'env', '')}", total * spu,
                       enabled=progress)
        sink.progress, sink.spu = bar, spu
        every = -(-spec.checkpoint_every // trainer.chunk_updates) * trainer.chunk_updates
        session_t0 = time.perf_counter()

        def timing() -> dict[str, float]:
            now = time.perf_counter()
            return {
                "wall_seconds": prior["wall_seconds"] + now - started,
                "compile_seconds": prior["compile_seconds"] + trainer.compile_seconds,
                "train_seconds": prior["train_seconds"] + now - session_t0,
                "sessions": prior["sessions"] + 1,
            }

        interrupted = None
        try:
            with StopRequest(bar.message) as stop:
                if state is None:
                    state = trainer.init()
                trainer.compile(state)
                session_t0 = time.perf_counter()
                bar.start(done * spu)
                while done < total:
                    target = min(done + trainer.chunk_updates, total)
                    state, _ = trainer.run(state, until=target)
                    done = target
                    if done % every == 0 or done == total or stop.requested:
                        checkpoints.save(done, state, timing())
                    if stop.requested and done < total:
                        interrupted = stop.requested
                        break
        finally:
            bar.stop()
            sink.close()
        out = Outcome(folder, spec, state, done, total, spu, interrupted, resumed_from, timing())
        if interrupted is None:
            out.summary = finish(folder, spec, out.timing, spu)
        checkpoints.close()
        return out
    finally:
        folder.unlock()


class _ChunkSink:
    """Trainer callback: one chunk's metrics to JSONL, TensorBoard and the progress bar."""

    def __init__(self, metrics_log: MetricsLog):
        self.metrics_log = metrics_log
        self.tb: TensorBoardLog | None = None
        self.progress: Progress | None = None
        self.spu = 1

    def __call__(self, report: Any) -> None:
        m = report.metrics
        n = next(iter(m.values())).shape[1] if m else 0
        first = report.updates_done - n + 1
        self.metrics_log.append(rows_from_chunk(m, first, self.spu))
        if self.progress is not None:
            self.progress.chunk(report.steps_done, m)
        if self.tb is not None:
            sps = self.progress.steps_per_second if self.progress else float("nan")
            self.tb.log_chunk(m, first, self.spu, {"steps_per_second_per_seed": sps})

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
