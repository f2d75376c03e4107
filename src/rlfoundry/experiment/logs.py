"""Training logs: ``metrics.jsonl`` (the record) and TensorBoard events (for browsing).

``metrics.jsonl`` has one JSON object per update::

    {"update": 12, "steps": 6144, "episode_return": [r_seed0, r_seed1, ...], ...}

``update`` counts from 1 (the row describes the state *after* that many updates); every
metric is a list with one value per seed, in the order of ``config.json``'s ``seeds``;
non-finite values are written as ``null``. Rows are deterministic (no wall-clock times),
so a resumed run's file is byte-identical to an uninterrupted one: on resume, rows past
the restored checkpoint (and a half-written last line after ``kill -9``) are cut off.
Averages of ``episode_return``/``episode_length`` over updates should be weighted by
``episodes`` (the number of episodes that ended in that update; 0 means no data).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from rlfoundry.errors import RunFolderError

WEIGHTED = ("episode_return", "episode_length")


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def rows_from_chunk(
    metrics: dict[str, np.ndarray], first_update: int, steps_per_update: int
) -> list[dict[str, Any]]:
    """JSONL rows for a chunk's metrics ([seeds, updates] per key) starting at update
    ``first_update`` (1-based)."""
    n = next(iter(metrics.values())).shape[1] if metrics else 0
    rows = []
    for j in range(n):
        u = first_update + j
        row: dict[str, Any] = {"update": u, "steps": u * steps_per_update}
        for k in sorted(metrics):
            row[k] = [_clean(v) for v in np.asarray(metrics[k][:, j], dtype=np.float64)]
        rows.append(row)
    return rows


class MetricsLog:
    """Append-only JSONL writer that can cut itself back to a checkpoint."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())

    def truncate(self, through_update: int) -> int:
        """Keep rows with ``update <= through_update`` (and no broken line); returns kept."""
        rows = read_rows(self.path) if self.path.exists() else []
        kept = [r for r in rows if r["update"] <= through_update]
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in kept))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        return len(kept)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a metrics file, stopping at the first line that is not a complete row
    (what a killed writer leaves behind)."""
    rows = []
    expected = 1
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                break
            if not isinstance(row, dict) or row.get("update") != expected:
                break
            rows.append(row)
            expected += 1
    return rows


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """``metrics.jsonl`` as arrays: ``update``/``steps`` [updates], each metric [seeds, updates]
    (``null`` becomes NaN)."""
    p = Path(path)
    if not p.is_file():
        raise RunFolderError(
            f"{p} is missing; the run has not logged any update yet (resume or retrain it)."
        )
    rows = read_rows(p)
    if not rows:
        raise RunFolderError(f"{p} has no complete row yet; let the run train longer.")
    out: dict[str, np.ndarray] = {
        "update": np.array([r["update"] for r in rows]),
        "steps": np.array([r["steps"] for r in rows]),
    }
    for k in rows[0]:
        if k in ("update", "steps"):
            continue
        vals = [[np.nan if v is None else v for v in r.get(k, [])] for r in rows]
        out[k] = np.asarray(vals, dtype=np.float64).T
    return out


def seed_mean(metrics: dict[str, np.ndarray], key: str) -> np.ndarray:
    """Mean over seeds per update; episode statistics weighted by episodes ended."""
    values = np.asarray(metrics[key], dtype=np.float64)
    if key in WEIGHTED and "episodes" in metrics:
        w = np.asarray(metrics["episodes"], dtype=np.float64)
        total = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (values * w).sum(axis=0) / np.maximum(total, 1e-12), np.nan)
    return np.nanmean(values, axis=0) if values.size else values


class TensorBoardLog:
    """Scalars per update (means over seeds) at x = environment steps.

    ``purge_step`` (on resume) tells TensorBoard to drop events logged past the restored
    checkpoint by the interrupted process.
    """

    def __init__(self, logdir: str | Path, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self._writer = SummaryWriter(str(logdir), purge_step=purge_step, flush_secs=30)

    def log_chunk(self, metrics: dict[str, np.ndarray], first_update: int,
                  steps_per_update: int, extra: dict[str, float] | None = None) -> None:
        n = next(iter(metrics.values())).shape[1] if metrics else 0
        means = {k: seed_mean(metrics, k) for k in metrics}
        for j in range(n):
            step = (first_update + j) * steps_per_update
            for k, v in means.items():
                if math.isfinite(v[j]):
                    self._writer.add_scalar(f"train/{k}", float(v[j]), step)
        if extra and n:
            step = (first_update + n - 1) * steps_per_update
            for k, v in extra.items():
                self._writer.add_scalar(f"perf/{k}", float(v), step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def require_metric(metrics: dict[str, np.ndarray], metric: str, where: str) -> None:
    """A one-line ConfigError naming the metrics there are, if ``metric`` is not logged."""
    if metric not in metrics:
        from rlfoundry.errors import ConfigError

        keys = [k for k in metrics if k not in ("update", "steps")]
        raise ConfigError(f"{where} has no metric {metric!r}; choose one of {', '.join(keys)}.")
