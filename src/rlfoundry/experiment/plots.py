"""Learning curves: the mean over seeds with a 95% confidence band, as PNG.

Per seed, updates are grouped into at most ``points`` consecutive bins and each bin's
return is the episode-weighted mean of the episodes that ended in it (updates where no
episode ended carry no information, not a zero). The band is a percentile bootstrap 95%
interval of the mean over seeds per bin (resampling seeds), the usual shaded region of an
RL paper's figure; with 2-5 seeds a Student-t band would be several times the data range.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class Curve:
    label: str
    x: np.ndarray  # [bins] environment steps per seed
    y: np.ndarray  # [seeds, bins]


def binned(metrics: dict[str, np.ndarray], key: str = "episode_return",
           points: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``(x [bins], y [seeds, bins])``: episode-weighted bin means of ``key`` per seed."""
    steps = np.asarray(metrics["steps"], dtype=np.float64)
    values = np.asarray(metrics[key], dtype=np.float64)
    n = steps.size
    bins = max(1, min(points, n))
    edges = np.linspace(0, n, bins + 1).round().astype(int)
    weighted = key in ("episode_return", "episode_length") and "episodes" in metrics
    w = np.asarray(metrics["episodes"], dtype=np.float64) if weighted else np.isfinite(values)
    vals = np.where(np.isfinite(values), values, 0.0)
    y = np.full((values.shape[0], bins), np.nan)
    for b in range(bins):
        sl = slice(edges[b], edges[b + 1])
        ws = w[:, sl].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            y[:, b] = np.where(ws > 0, (vals[:, sl] * w[:, sl]).sum(axis=1) / ws, np.nan)
    x = steps[np.maximum(edges[1:] - 1, 0)]
    return x, y


def band(y: np.ndarray, confidence: float = 0.95, reps: int = 1000, seed: int = 0
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) per column and its bootstrap CI, ignoring missing values."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(y, axis=0)
        if y.shape[0] < 2:
            return mean, mean.copy(), mean.copy()
        idx = np.random.default_rng(seed).integers(0, y.shape[0], size=(reps, y.shape[0]))
        means = np.nanmean(y[idx], axis=1)  # [reps, bins]
        alpha = (1.0 - confidence) / 2.0
        low, high = np.nanquantile(means, [alpha, 1.0 - alpha], axis=0)
    return mean, low, high


def plot_curves(curves: list[Curve], out: str | Path, title: str = "",
                ylabel: str = "episode return") -> Path:
    """Draw each curve's seed mean with its 95% band into one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for c in curves:
        mean, low, high = band(c.y)
        n = c.y.shape[0]
        (line,) = ax.plot(c.x, mean, label=f"{c.label} ({n} seed{'s' if n != 1 else ''})")
        if n > 1:
            ax.fill_between(c.x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
