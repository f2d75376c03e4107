"""What a finished run says about itself: ``summary.json``, the plot and ``report.md``.

The headline number per seed is the *final return*: the episode-weighted mean return over
the last 10% of updates, which is steadier than the last update alone and still measures
the end of training. Across seeds: mean, and IQM with a bootstrap CI (see :mod:`stats`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rlfoundry.experiment.logs import read_metrics, require_metric
from rlfoundry.experiment.runfolder import RunFolder, write_json
from rlfoundry.experiment.spec import RunSpec
from rlfoundry.experiment.stats import mean_ci, stratified_bootstrap

FINAL_FRACTION = 0.1


def final_values(metrics: dict[str, np.ndarray], key: str = "episode_return",
                 fraction: float = FINAL_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Per seed: the mean of ``key`` over the last ``fraction`` of updates (episode-weighted
    for episode statistics) and the weight behind it (NaN where there is none)."""
    from rlfoundry.experiment.logs import WEIGHTED

    v = np.asarray(metrics[key], dtype=np.float64)
    k = max(1, int(math.ceil(v.shape[1] * fraction)))
    v = v[:, -k:]
    if key in WEIGHTED and "episodes" in metrics:
        w = np.asarray(metrics["episodes"], dtype=np.float64)[:, -k:]
    else:
        w = np.isfinite(v).astype(np.float64)
    v = np.nan_to_num(v)
    count = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (v * w).sum(axis=1) / count, np.nan), count


def final_returns(metrics: dict[str, np.ndarray], fraction: float = FINAL_FRACTION
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per seed: episode-weighted mean return over the last ``fraction`` of updates, and
    the number of episodes it averages (NaN where none ended)."""
    return final_values(metrics, "episode_return", fraction)


def _num(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def summarize(spec: RunSpec, metrics: dict[str, np.ndarray], timing: dict[str, float],
              steps_per_update: int) -> dict[str, Any]:
    """The content of ``summary.json``."""
    finals, counts = final_returns(metrics)
    updates = int(metrics["update"][-1])
    steps = updates * steps_per_update
    m, sd, lo, hi = mean_ci(finals)
    iqm, iqm_lo, iqm_hi = stratified_bootstrap([finals], "iqm")
    train_s = timing.get("train_seconds", float("nan"))
    sps_seed = steps / train_s if train_s > 0 else float("nan")
    return {
        "algo": spec.algo,
        "env": getattr(spec.config, "env", None),
        "seeds": list(spec.seeds),
        "updates": updates,
        "steps_per_seed": steps,
        "final_return": {
            "definition": f"episode-weighted mean return over the last "
                          f"{int(FINAL_FRACTION * 100)}% of updates, per seed",
            "per_seed": [_num(f) for f in finals],
            "episodes_per_seed": [int(c) for c in counts],
            "mean": _num(m), "std": _num(sd), "ci95": [_num(lo), _num(hi)],
            "iqm": _num(iqm), "iqm_ci95": [_num(iqm_lo), _num(iqm_hi)],
        },
        "timing": {
            "wall_seconds": _num(timing.get("wall_seconds", float("nan"))),
            "compile_seconds": _num(timing.get("compile_seconds", float("nan"))),
            "train_seconds": _num(train_s),
            "steps_per_second_per_seed": _num(sps_seed),
            "steps_per_second": _num(sps_seed * len(spec.seeds)),
            "sessions": int(timing.get("sessions", 1)),
        },
    }


def learning_curve(folder: RunFolder, out: str | Path | None = None,
                   metric: str = "episode_return") -> Path:
    """Plot one run's learning curve (mean over seeds, 95% band)."""
    from rlfoundry.experiment.plots import Curve, binned, plot_curves

    spec = folder.read_spec()
    metrics = read_metrics(folder.metrics_path)
    require_metric(metrics, metric, str(folder.metrics_path))
    x, y = binned(metrics, metric)
    out = Path(out) if out else folder.plots_dir / "learning_curve.png"
    title = f"{spec.algo} on {getattr(spec.config, 'env', '?')}"
    return plot_curves([Curve(folder.path.name, x, y)], out, title, metric.replace("_", " "))


def _fmt(x: Any, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def write_report(folder: RunFolder, plot: Path | None = None) -> Path:
    """``report.md``: settings, results per seed, timing, and the embedded plots."""
    from rlfoundry.config import to_dict

    spec = folder.read_spec()
    summary = folder.read_summary()
    cfg = to_dict(spec.config)
    lines = [f"# {folder.path.name}: {spec.algo} on {cfg.get('env', '?')}", ""]
    if summary is None:
        lines += ["*Training has not finished: results below are from the metrics so far.*", ""]
    lines += ["## Settings", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | `{v}` |" for k, v in cfg.items()]
    lines += [f"| seeds | `{spec.seeds}` |", f"| chunk_updates | `{spec.chunk_updates}` |", ""]
    if summary is not None:
        fr, t = summary["final_return"], summary["timing"]
        lines += [
            "## Results", "", f"Final return: {fr['definition']}.", "",
            "| seed | final return | episodes |", "| --- | --- | --- |",
        ]
        for s, r, c in zip(spec.seeds, fr["per_seed"], fr["episodes_per_seed"], strict=False):
            lines.append(f"| {s} | {_fmt(r)} | {c} |")
        lines += [
            "",
            f"- mean over seeds: **{_fmt(fr['mean'])}** (95% CI {_fmt(fr['ci95'][0])} to "
            f"{_fmt(fr['ci95'][1])})",
            f"- IQM: {_fmt(fr['iqm'])} (stratified bootstrap 95% CI {_fmt(fr['iqm_ci95'][0])} "
            f"to {_fmt(fr['iqm_ci95'][1])})",
            f"- {summary['steps_per_seed']:,} steps per seed in {summary['updates']} updates; "
            f"{_fmt(t['steps_per_second'], 0)} steps/s over all seeds; wall time "
            f"{_fmt(t['wall_seconds'])} s incl. {_fmt(t['compile_seconds'])} s compile",
            "",
        ]
    if plot is None:
        default = folder.plots_dir / "learning_curve.png"
        plot = default if default.is_file() else None
    if plot is not None:
        rel = Path(plot).resolve().relative_to(folder.path.resolve()) \
            if Path(plot).resolve().is_relative_to(folder.path.resolve()) else Path(plot).resolve()
        lines += ["## Learning curve", "", f"![learning curve]({rel.as_posix()})", ""]
    lines += [
        "## Next", "",
        f"- evaluate: `rlfoundry eval {folder.path} --episodes 100`",
        f"- watch: `rlfoundry render {folder.path}`",
        f"- TensorBoard: `tensorboard --logdir {folder.tb_dir}`", "",
    ]
    folder.report_path.write_text("\n".join(lines), encoding="utf-8")
    return folder.report_path


def finish(folder: RunFolder, spec: RunSpec, timing: dict[str, float],
           steps_per_update: int) -> dict[str, Any]:
    """Write summary.json, the learning curve and report.md; return the summary."""
    metrics = read_metrics(folder.metrics_path)
    summary = summarize(spec, metrics, timing, steps_per_update)
    write_json(folder.summary_path, summary)
    plot = learning_curve(folder)
    write_report(folder, plot)
    return summary
