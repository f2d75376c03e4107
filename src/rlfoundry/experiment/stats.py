"""Statistics for a handful of seeds: confidence intervals that are honest at n = 4.

Following Agarwal et al. (2021), "Deep RL at the edge of the statistical precipice":
report the interquartile mean (IQM: the mean of the middle 50% of all runs, robust to an
outlier seed yet less noisy than the median) with percentile confidence intervals from a
*stratified* bootstrap, which resamples runs within each task so every task keeps its
weight. rliable implements this but does not import with this project's pandas/arch
versions (arch 7.2 fails at import), so the ~30 lines live here, vectorised with numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def iqm(x: np.ndarray) -> float:
    """Interquartile mean of all values: mean of the middle 50% (25% trimmed each side),
    counting fractional weight at the cut points like rliable/scipy's ``trim_mean``."""
    v = np.sort(np.asarray(x, dtype=np.float64).ravel())
    n = v.size
    if n == 0:
        return float("nan")
    lo, hi = 0.25 * n, 0.75 * n
    # weight of element i = overlap of [i, i+1) with [lo, hi)
    idx = np.arange(n)
    w = np.clip(np.minimum(idx + 1, hi) - np.maximum(idx, lo), 0.0, 1.0)
    return float((w * v).sum() / w.sum())


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """IQM of each row of a [reps, n] array."""
    v = np.sort(samples, axis=1)
    n = v.shape[1]
    idx = np.arange(n)
    w = np.clip(np.minimum(idx + 1, 0.75 * n) - np.maximum(idx, 0.25 * n), 0.0, 1.0)
    return (v * w).sum(axis=1) / w.sum()


STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "iqm": _iqm_rows,
    "mean": lambda s: s.mean(axis=1),
    "median": lambda s: np.median(s, axis=1),
}


def stratified_bootstrap(
    per_task: Sequence[np.ndarray],
    statistic: str = "iqm",
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(point, low, high)`` of ``statistic`` over all runs of all tasks, with a
    percentile CI from resampling runs (seeds) with replacement *within* each task."""
    tasks = [np.asarray(t, dtype=np.float64).ravel() for t in per_task]
    tasks = [t[np.isfinite(t)] for t in tasks]
    tasks = [t for t in tasks if t.size]
    if not tasks:
        return float("nan"), float("nan"), float("nan")
    fn = STATISTICS[statistic]
    point = float(fn(np.concatenate(tasks)[None])[0])
    rng = np.random.default_rng(seed)
    resampled = np.concatenate(
        [t[rng.integers(0, t.size, size=(reps, t.size))] for t in tasks], axis=1
    )
    values = fn(resampled)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return point, float(low), float(high)


def mean_ci(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """``(mean, std, low, high)``: Student-t interval for the mean of i.i.d. samples
    (evaluation episodes); with one sample the interval is just the point."""
    from scipy import stats as st

    v = np.asarray(x, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        nan = float("nan")
        return nan, nan, nan, nan
    m = float(v.mean())
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    if v.size < 2 or sd == 0.0:
        return m, sd, m, m
    half = float(st.t.ppf(0.5 + confidence / 2.0, v.size - 1) * sd / np.sqrt(v.size))
    return m, sd, m - half, m + half


def min_max_normalize(per_task: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Scale each task's scores to [0, 1] by the lowest and highest score seen on it, so
    tasks with different return scales can be aggregated (a stand-in when no reference
    scores such as random/human are known)."""
    out = {}
    for task, scores in per_task.items():
        s = np.asarray(scores, dtype=np.float64)
        lo, hi = np.nanmin(s), np.nanmax(s)
        out[task] = (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
    return out
