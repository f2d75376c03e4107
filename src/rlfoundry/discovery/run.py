"""A discovery run on disk: progress, checkpoints every generation, resume, plots.

Layout of ``runs/<name>/`` for ``rlfoundry discover``::

    discovery.json     the DiscoveryConfig (written first)
    meta.jsonl         one row per generation: fitness statistics and timings
    objective.json     the learned objective at the ES mean (kind, hidden, weights)
    checkpoints/<g>/   orbax checkpoints of the whole meta-state after g generations
    plots/             meta_curve.png, drift_heatmap.png

``rlfoundry train --objective runs/<name>`` loads ``objective.json``.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlfoundry.config import from_dict, to_dict
from rlfoundry.discovery.objective_search import LEARNED, DiscoveryConfig, ObjectiveSearch
from rlfoundry.errors import ConfigError, RunFolderError
from rlfoundry.experiment.checkpoint import Checkpointer
from rlfoundry.experiment.runfolder import atomic_write_text, write_json
from rlfoundry.objectives import OBJECTIVES, Objective


def config_to_json(cfg: DiscoveryConfig) -> dict[str, Any]:
    data = dataclasses.asdict(cfg)
    data["envs"] = list(cfg.envs)
    data["inner"] = {k: v for k, v in cfg.inner}
    return data


def config_from_json(data: dict[str, Any]) -> DiscoveryConfig:
    names = {f.name for f in dataclasses.fields(DiscoveryConfig)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown discovery setting(s) {sorted(unknown)}.")
    data = dict(data)
    data["envs"] = tuple(data.get("envs", ("CartPole-v1",)))
    # JSON turns tuples (e.g. an inner ``hidden_sizes``) into lists; the config is a
    # cache key for compiled programs, so it must come back hashable.
    data["inner"] = tuple((k, _tuples(v)) for k, v in dict(data.get("inner", {})).items())
    return DiscoveryConfig(**data)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def make_search(config: DiscoveryConfig, backend: Any = None) -> ObjectiveSearch:
    """GROOVE when the config names a level curriculum, else the plain objective search."""
    if config.curriculum != "none":
        from rlfoundry.discovery.groove import GrooveSearch

        return GrooveSearch(config, backend)
    return ObjectiveSearch(config, backend)


def load_objective(path: str | Path) -> Objective:
    """A learned objective saved by a discovery run (its folder or its objective.json)."""
    path = Path(path)
    file = path / "objective.json" if path.is_dir() else path
    if not file.exists():
        raise RunFolderError(
            f"{file} does not exist; pass a discovery run folder (rlfoundry discover --run-dir)."
        )
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RunFolderError(f"{file} is not readable JSON ({err}); rerun the discovery.") from None
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in OBJECTIVES:
        raise ConfigError(f"{file} holds no known objective (kind={kind!r}).")
    obj = from_dict(OBJECTIVES[kind], data)
    obj.validate()
    return obj


def drift_heatmap(objective: Objective, out: Path, progresses: tuple[float, ...] = (0.0,)) -> Path:
    """The drift over (ratio, advantage), like the DPO paper's figures; one panel per n/N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = np.linspace(0.5, 1.5, 101, dtype=np.float32)
    advs = np.linspace(-2.0, 2.0, 81, dtype=np.float32)
    r, a = np.meshgrid(ratios, advs)
    width = 4.2 * len(progresses)
    fig, axes = plt.subplots(1, len(progresses), figsize=(width, 3.6), squeeze=False)
    for ax, p in zip(axes[0], progresses, strict=True):
        d = objective.drift(r.reshape(-1), a.reshape(-1), np.float32(p))
        d = np.asarray(d).reshape(r.shape)
        im = ax.pcolormesh(ratios, advs, d, shading="auto", cmap="viridis")
        ax.set_xlabel("ratio r = π/π_old")
        ax.set_ylabel("advantage A")
        ax.set_title(f"{objective.kind} drift" + (f", n/N={p:g}" if len(progresses) > 1 else ""))
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def meta_curve(rows: list[dict[str, Any]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = [r["generation"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(g, [r["fitness_mean"] for r in rows], label="population mean")
    ax.fill_between(g, [r["fitness_min"] for r in rows], [r["fitness_max"] for r in rows],
                    alpha=0.25, label="min-max")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def discover(
    run_dir: str | Path,
    config: DiscoveryConfig | None = None,
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) a discovery; returns the final summary. Ctrl-C saves and stops."""
    run = Path(run_dir)
    cfg_path = run / "discovery.json"
    if resume:
        if not cfg_path.exists():
            raise RunFolderError(
                f"{run} is not a discovery run (no discovery.json); check the path."
            )
        config = config_from_json(json.loads(cfg_path.read_text()))
        if (run / "seed.json").exists():
            seed = json.loads((run / "seed.json").read_text())["seed"]
    else:
        if config is None:
            raise ConfigError("no discovery config given.")
        if run.exists() and any(run.iterdir()) and not overwrite:
            raise RunFolderError(f"{run} already exists; pass --overwrite or --resume.")
        if overwrite and run.exists():
            import shutil

            shutil.rmtree(run)
    config.validate()
    run.mkdir(parents=True, exist_ok=True)
    write_json(cfg_path, config_to_json(config))
    write_json(run / "seed.json", {"seed": seed})
    search = make_search(config)
    ckpt = Checkpointer(run / "checkpoints", keep=2)
    key = jax.random.PRNGKey(seed)
    rows_path = run / "meta.jsonl"
    if resume and ckpt.latest() is not None:
        meta, _ = ckpt.restore(jax.eval_shape(search.init, key))
    else:
        meta = search.init(key)
    done = int(meta.generation)
    rows = []
    if rows_path.exists():  # drop rows of generations redone after the last checkpoint
        rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line]
        rows = [r for r in rows if r["generation"] <= done]
    atomic_write_text(rows_path, "".join(json.dumps(r) + "\n" for r in rows))

    interrupted = False

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        interrupted = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    bar = _bar(show_progress, config.generations, done)
    t0 = time.perf_counter()
    try:
        while done < config.generations and not interrupted:
            meta, stats = search.step(meta)
            done = int(meta.generation)
            row = {"generation": done, **stats, "seconds": time.perf_counter() - t0,
                   "host_seconds": search.host_seconds,
                   "compiled_seconds": search.compiled_seconds}
            rows.append(row)
            with open(rows_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            ckpt.save(done, meta, {"generation": done})
            write_json(run / "objective.json", _objective_json(search, meta))
            if bar is not None:
                bar.update(bar.task_ids[0], completed=done,
                           fitness=f"{stats['fitness_mean']:.3f}")
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.stop()
        ckpt.close()
        search.backend.close()
    objective = search.mean_objective(meta)
    progresses = (0.0, 0.5, 1.0) if config.objective == "ta_lpo" else (0.0,)
    heatmap = drift_heatmap(objective, run / "plots" / "drift_heatmap.png", progresses)
    plots = {"drift_heatmap": str(heatmap)}
    if rows:
        plots["meta_curve"] = str(meta_curve(rows, run / "plots" / "meta_curve.png"))
    total = search.host_seconds + search.compiled_seconds
    summary = {
        "generations_done": done,
        "finished": done >= config.generations,
        "interrupted": interrupted,
        "best_fitness_mean": max((r["fitness_mean"] for r in rows), default=None),
        "last": rows[-1] if rows else None,
        "ppo_returns": np.asarray(meta.ppo_returns).tolist(),
        "host_fraction": search.host_seconds / total if total else 0.0,
        "plots": plots,
    }
    write_json(run / "summary.json", summary)
    return summary


def _objective_json(search: ObjectiveSearch, meta: Any) -> dict[str, Any]:
    return to_dict(search.mean_objective(meta))


def _bar(enabled: bool, total: int, done: int) -> Any:
    import sys

    if not (enabled and sys.stderr.isatty()):
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]discover"), BarColumn(), MofNCompleteColumn(),
        TextColumn("fitness {task.fields[fitness]}"), TimeRemainingColumn(),
    )
    bar.add_task("generations", total=total, completed=done, fitness="-")
    bar.start()
    return bar


__all__ = ["LEARNED", "discover", "drift_heatmap", "load_objective"]
