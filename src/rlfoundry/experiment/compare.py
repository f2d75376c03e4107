"""Comparing runs: overlaid learning curves and rliable-style aggregate scores.

Each run contributes its seeds' final values (see :func:`report.final_values`). Per run:
IQM and mean with stratified-bootstrap 95% CIs over seeds. When a label (``--labels``)
covers runs on several environments, those are *tasks* and the label also gets an
aggregate across tasks: scores are normalised per task (min-max over every run on that
task, since raw returns of different games are not comparable) and resampled within each
task, so a task with more seeds does not dominate.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rlfoundry.errors import ConfigError
from rlfoundry.experiment.logs import read_metrics, require_metric
from rlfoundry.experiment.plots import Curve, binned, plot_curves
from rlfoundry.experiment.report import final_values
from rlfoundry.experiment.runfolder import RunFolder
from rlfoundry.experiment.stats import min_max_normalize, stratified_bootstrap


def _clean(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def compare(paths: list[str], out: str | Path = "compare.png", labels: list[str] | None = None,
            metric: str = "episode_return", normalize: str = "minmax",
            reps: int = 2000) -> dict[str, Any]:
    """Plot the runs together and compute per-run and per-label statistics."""
    if labels is not None and len(labels) != len(paths):
        raise ConfigError(f"--labels has {len(labels)} name(s) for {len(paths)} run(s); "
                          "give one label per run.")
    rows, curves = [], []
    scores: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for i, path in enumerate(paths):
        folder = RunFolder.open(path)
        spec = folder.read_spec()
        metrics = read_metrics(folder.metrics_path)
        require_metric(metrics, metric, str(folder.path))
        label = labels[i] if labels else folder.path.name
        env = str(getattr(spec.config, "env", "?"))
        finals, _ = final_values(metrics, metric)
        x, y = binned(metrics, metric)
        curves.append(Curve(label if labels is None or label == folder.path.name
                            else f"{label}: {folder.path.name}", x, y))
        iqm = stratified_bootstrap([finals], "iqm", reps)
        mean = stratified_bootstrap([finals], "mean", reps)
        rows.append({"run": str(folder.path), "label": label, "env": env,
                     "seeds": len(finals), "final": [_clean(f) for f in finals],
                     "iqm": _clean(iqm[0]), "iqm_ci95": [_clean(iqm[1]), _clean(iqm[2])],
                     "mean": _clean(mean[0]), "mean_ci95": [_clean(mean[1]), _clean(mean[2])]})
        scores[label][env].append(finals)
    envs = {r["env"] for r in rows}
    title = f"{metric.replace('_', ' ')} on {', '.join(sorted(envs))}"
    png = plot_curves(curves, out, title, metric.replace("_", " "))
    aggregate = []
    if any(len(tasks) > 1 for tasks in scores.values()):
        per_task_all: dict[str, np.ndarray] = {}
        for env in envs:
            per_task_all[env] = np.concatenate(
                [np.concatenate(t[env]) for t in scores.values() if env in t])
        if normalize == "minmax":
            bounds = {e: (np.nanmin(v), np.nanmax(v)) for e, v in per_task_all.items()}
        for label, tasks in scores.items():
            per_task = {e: np.concatenate(v) for e, v in tasks.items()}
            if normalize == "minmax":
                per_task = {e: min_max_normalize({"t": np.append(v, bounds[e])})["t"][:-2]
                            for e, v in per_task.items()}
            iqm = stratified_bootstrap(list(per_task.values()), "iqm", reps)
            mean = stratified_bootstrap(list(per_task.values()), "mean", reps)
            aggregate.append({"label": label, "tasks": len(per_task),
                              "runs": int(sum(v.size for v in per_task.values())),
                              "iqm": _clean(iqm[0]), "iqm_ci95": [_clean(iqm[1]), _clean(iqm[2])],
                              "mean": _clean(mean[0]),
                              "mean_ci95": [_clean(mean[1]), _clean(mean[2])]})
    return {"metric": metric, "runs": rows, "aggregate": aggregate, "normalize": normalize,
            "plot": str(png)}
