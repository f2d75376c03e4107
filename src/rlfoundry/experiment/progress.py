"""The live progress display, updated between compiled chunks.

On a terminal: a rich progress bar with steps, steps/s, the recent mean return and the
time left. Steps and rates are per seed (all seeds advance together), as in the run's
``total_steps``. Elsewhere (CI logs, pipes, tests): one plain line per chunk at most every few
seconds, so logs stay readable. Rates exclude compilation, which happens before the
first chunk and is reported separately.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from rlfoundry.experiment.logs import seed_mean


def _fmt_duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "-:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def compact(n: float) -> str:
    """500000 -> '500k', 1234567 -> '1.23M': short enough for an 80-column bar."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.0f}"


def recent_return(metrics: dict[str, np.ndarray]) -> float:
    """Mean return of the episodes that ended in a chunk, over all seeds (NaN if none)."""
    if "episode_return" not in metrics or "episodes" not in metrics:
        return float("nan")
    r = np.asarray(metrics["episode_return"], dtype=np.float64)
    w = np.asarray(metrics["episodes"], dtype=np.float64)
    return float((r * w).sum() / w.sum()) if w.sum() > 0 else float("nan")


class Progress:
    """Progress of one training run; call :meth:`start`, then :meth:`chunk` per chunk."""

    def __init__(self, description: str, total_steps: int, enabled: bool = True,
                 plain_every: float = 5.0, stream: Any = None):
        self.description = description
        self.total_steps = total_steps
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.live = enabled and self.stream.isatty()
        self.plain_every = plain_every
        self._bar: Any = None
        self._last_plain = 0.0
        self.recent = float("nan")

    def start(self, steps_done: int) -> None:
        self.t0 = time.perf_counter()
        self.steps0 = steps_done
        self.steps = steps_done
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=10),
                TextColumn("{task.fields[steps]} steps"),
                TextColumn("{task.fields[sps]}"),
                TextColumn("return {task.fields[ret]}"),
                TextColumn("ETA {task.fields[eta]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                self.description, total=self.total_steps, completed=steps_done,
                steps=f"{compact(steps_done)}/{compact(self.total_steps)}",
                sps="- steps/s", ret="-", eta="-:--",
            )

    @property
    def steps_per_second(self) -> float:
        dt = time.perf_counter() - self.t0
        return (self.steps - self.steps0) / dt if dt > 0 else float("nan")

    def chunk(self, steps_done: int, metrics: dict[str, np.ndarray]) -> None:
        self.steps = steps_done
        r = recent_return(metrics)
        if np.isfinite(r):
            self.recent = r
        if not self.enabled:
            return
        sps = self.steps_per_second
        eta = (self.total_steps - steps_done) / sps if sps > 0 else float("nan")
        ret = f"{self.recent:.1f}" if np.isfinite(self.recent) else "-"
        if self._bar is not None:
            self._bar.update(self._task, completed=steps_done, sps=f"{compact(sps)} steps/s",
                             steps=f"{compact(steps_done)}/{compact(self.total_steps)}",
                             ret=ret, eta=_fmt_duration(eta))
            return
        now = time.perf_counter()
        if now - self._last_plain >= self.plain_every or steps_done >= self.total_steps:
            self._last_plain = now
            pct = 100.0 * steps_done / max(self.total_steps, 1)
            print(
                f"{self.description}: {steps_done:,}/{self.total_steps:,} steps ({pct:.0f}%)"
                f"  {sps:,.0f} steps/s per seed  return {ret}  ETA {_fmt_duration(eta)}",
                file=self.stream, flush=True,
            )

    def message(self, text: str) -> None:
        """A line that does not disturb the bar."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


__all__ = ["Progress", "recent_return", "seed_mean"]
