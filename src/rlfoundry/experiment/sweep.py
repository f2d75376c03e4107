"""Hyperparameter sweeps: a grid and/or random search, times seeds, on two backends.

``vmap``: trials that differ only in numeric settings (pytree leaves such as ``lr``,
``gamma``, ``objective.clip_eps``) run as ONE compiled program: the config holds an array
with one value per (trial, seed) pair and :class:`~rlfoundry.engine.Trainer` maps over it
together with the seeds (``batched=``). Settings that shape the program (sizes, names,
flags: ``num_envs``, ``network``, ...) are static, so each distinct combination of those
is a separate program, run one after another.

``ray``: every trial is a Ray task (one CPU each) on a local Ray started here, or on an
existing cluster given its address; the workers return metrics and final states, and
this process writes the results.

Either way each trial becomes a normal run folder under ``<sweep>/trials/`` (config,
metrics, final checkpoint, summary, plot), so ``eval``, ``plot`` and ``compare`` work on
trials; ``sweep.json``/``sweep.csv`` hold the table and the best trial. Sweeps are not
resumable: rerun the sweep (compiled programs come from the cache).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rlfoundry.errors import ConfigError, RunFolderError

Trial = dict[str, Any]  # dotted setting -> typed value


# --- search space -------------------------------------------------------------------------


def _get_path(cfg: Any, path: str) -> Any:
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def typed_value(base: Any, path: str, raw: Any, where: str) -> Any:
    """``raw`` coerced to the type of setting ``path`` (via the config's own parser)."""
    from rlfoundry.config import set_path
    from rlfoundry.experiment.configure import _guard

    cfg = _guard(where, set_path, base, path, raw)
    value = _get_path(cfg, path)
    if isinstance(value, np.ndarray):
        raise ConfigError(f"{where}: one value per trial, got a list for {path}.")
    return list(value) if isinstance(value, tuple) else value


def parse_grid(items: list[str], base: Any) -> list[tuple[str, list[Any]]]:
    """``["lr=1e-4,3e-4", ...]`` → ``[("lr", [1e-4, 3e-4]), ...]`` with typed values.
    Lists of lists (``hidden_sizes=[[64,64],[128,128]]``) are written in YAML."""
    from rlfoundry.experiment.configure import parse_text

    out = []
    for item in items:
        path, sep, raw = item.partition("=")
        path, raw = path.strip(), raw.strip()
        if not sep or not path or not raw:
            raise ConfigError(f"--grid expects KEY=V1,V2,... (e.g. --grid lr=1e-4,3e-4), "
                              f"got {item!r}.")
        if raw.startswith("["):
            values = parse_text(raw, f"--grid {path}")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"--grid {path}: expected a YAML list of values.")
        else:
            values = [v.strip() for v in raw.split(",") if v.strip()]
        where = f"--grid {item}"
        out.append((path, [typed_value(base, path, v, where) for v in values]))
    return out


@dataclasses.dataclass(frozen=True)
class Distribution:
    path: str
    kind: str
    args: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "uniform":
            return float(rng.uniform(*self.args))
        if self.kind == "loguniform":
            lo, hi = self.args
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if self.kind == "int":
            return int(rng.integers(self.args[0], self.args[1] + 1))
        return self.args[int(rng.integers(len(self.args)))]


def parse_dist(item: str) -> Distribution:
    """``"lr=loguniform:1e-5:1e-2"``; kinds: uniform, loguniform, int (inclusive), choice."""
    path, sep, spec = item.partition("=")
    kind, _, rest = spec.partition(":")
    path, kind = path.strip(), kind.strip()
    usage = ("--dist expects KEY=KIND:ARGS with KIND uniform:LO:HI, loguniform:LO:HI, "
             f"int:LO:HI or choice:A,B,C; got {item!r}.")
    if not sep or not path or kind not in ("uniform", "loguniform", "int", "choice"):
        raise ConfigError(usage)
    if kind == "choice":
        choices = tuple(v.strip() for v in rest.split(",") if v.strip())
        if not choices:
            raise ConfigError(usage)
        return Distribution(path, kind, choices)
    try:
        lo, hi = (float(v) for v in rest.split(":"))
    except ValueError:
        raise ConfigError(usage) from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or \
            (kind == "loguniform" and lo <= 0):
        raise ConfigError(f"--dist {item}: need finite LO <= HI (and LO > 0 for loguniform).")
    if kind == "int":
        if not (lo.is_integer() and hi.is_integer()):
            raise ConfigError(f"--dist {item}: int bounds must be whole numbers.")
        return Distribution(path, kind, (int(lo), int(hi)))
    return Distribution(path, kind, (lo, hi))


def make_trials(resolved: Any, grid: list[str], dists: list[str], random: int | None,
                seed: int = 0) -> list[Trial]:
    """Every trial's settings: the grid's product, times ``random`` draws if given."""
    base = resolved.config
    axes = parse_grid(grid, base)
    combos = [dict(zip([p for p, _ in axes], vals, strict=True))
              for vals in itertools.product(*[v for _, v in axes])]
    if dists and not random:
        raise ConfigError("--dist needs --random N (how many combinations to draw).")
    if random:
        if not dists:
            raise ConfigError("--random N needs at least one --dist KEY=KIND:ARGS.")
        parsed = [parse_dist(d) for d in dists]
        clash = {d.path for d in parsed} & {p for p, _ in axes}
        if clash:
            raise ConfigError(f"{sorted(clash)[0]} is both in --grid and --dist; pick one.")
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(random):
            draws.append({d.path: typed_value(base, d.path, d.sample(rng), f"--dist {d.path}")
                          for d in parsed})
        combos = [{**c, **d} for c in combos for d in draws]
    trials = combos or [{}]
    for t in trials:  # every combination must be a valid config on its own
        _trial_config(base, t)
    return trials


def _trial_config(base: Any, trial: Trial) -> Any:
    from rlfoundry.config import set_path
    from rlfoundry.experiment.configure import _guard

    cfg = base
    for path, value in trial.items():
        cfg = _guard(f"trial setting {path}={value}", set_path, cfg, path, value)
    _guard("trial", cfg.validate)
    return cfg


def is_numeric_leaf(base: Any, path: str, values: list[Any]) -> bool:
    """True if ``path`` is a vmappable setting and every value is a plain number."""
    from rlfoundry.config import batch_axes

    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return False
    if not isinstance(_get_path(base, path), float):
        return False
    try:
        batch_axes(base, (path,))
    except ConfigError:
        return False
    return True


@dataclasses.dataclass
class Group:
    """Trials sharing one compiled program: same static settings, numeric ones batched."""

    static: Trial
    numeric: tuple[str, ...]
    trials: list[int]


def group_trials(resolved: Any, trials: list[Trial]) -> list[Group]:
    base = resolved.config
    paths = sorted({p for t in trials for p in t})
    numeric = tuple(p for p in paths if is_numeric_leaf(base, p, [t[p] for t in trials if p in t]))
    groups: dict[str, Group] = {}
    for i, t in enumerate(trials):
        static = {p: v for p, v in t.items() if p not in numeric}
        key = json.dumps(static, sort_keys=True, default=str)
        groups.setdefault(key, Group(static, numeric, [])).trials.append(i)
    return list(groups.values())


def describe_groups(groups: list[Group], backend: str) -> str:
    if backend == "ray":
        return f"{sum(len(g.trials) for g in groups)} Ray task(s)"
    static = sorted({p for g in groups for p in g.static})
    text = f"{len(groups)} compiled program(s)"
    if groups and groups[0].numeric:
        text += f" (batched in-program: {', '.join(groups[0].numeric)})"
    if static:
        text += f"; static settings {', '.join(static)} need one program per value"
    return text


# --- running ------------------------------------------------------------------------------


@dataclasses.dataclass
class TrialResult:
    name: str
    settings: Trial
    spec: Any
    metrics: dict[str, np.ndarray]  # [seeds, updates]
    state: Any  # final state, [seeds, ...]
    timing: dict[str, float]
    steps_per_update: int


def create_sweep_folder(path: str | Path, overwrite: bool = False) -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise RunFolderError(f"{p} exists and is a file; pick another --out.")
    if p.is_dir() and any(p.iterdir()):
        if not (p / "sweep.json").is_file():
            raise RunFolderError(f"{p} exists and is not a sweep folder (no sweep.json); "
                                 "refusing to touch it, pick another --out.")
        if not overwrite:
            raise RunFolderError(f"sweep folder {p} already exists; pass --overwrite to "
                                 "replace it or pick another --out.")
        shutil.rmtree(p)
    p.mkdir(parents=True, exist_ok=True)
    (p / "sweep.json").write_text(json.dumps({"status": "running"}) + "\n")
    return p


def _trial_spec(resolved: Any, trial: Trial, seeds: list[int], chunk: int | None) -> Any:
    from rlfoundry.engine import get_algorithm
    from rlfoundry.experiment.spec import RunSpec, default_chunk_updates

    cfg = _trial_config(resolved.config, trial)
    total = get_algorithm(resolved.algo).num_updates(cfg)
    chunk = min(chunk or default_chunk_updates(total), total)
    return RunSpec(resolved.algo, cfg, list(seeds), chunk, chunk, 1, (),
                   {"sweep_settings": {k: _jsonable(v) for k, v in trial.items()}})


def _jsonable(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def run_vmap(resolved: Any, trials: list[Trial], groups: list[Group], seeds: list[int], *,
             chunk_updates: int | None = None, progress: bool = True,
             log: Any = print) -> list[TrialResult]:
    """Each group in one compiled program over (trial, seed) pairs."""
    import jax

    from rlfoundry.config import set_path
    from rlfoundry.engine import Trainer
    from rlfoundry.experiment.configure import _guard
    from rlfoundry.experiment.progress import Progress

    results: list[TrialResult] = []
    for gi, group in enumerate(groups):
        t0 = time.perf_counter()
        members = [trials[i] for i in group.trials]
        base = resolved.config
        for path, value in group.static.items():
            base = _guard(f"{path}={value}", set_path, base, path, value)
        cfg = base
        for path in group.numeric:
            per_pair = [float(t.get(path, _get_path(base, path))) for t in members for _ in seeds]
            cfg = _guard(path, set_path, cfg, path, per_pair)
        spec0 = _trial_spec(resolved, {**group.static, **members[0]}, seeds, chunk_updates)
        pair_seeds = [s for _ in members for s in seeds]
        bar = Progress(f"program {gi + 1}/{len(groups)} ({len(members)} trial(s) x "
                       f"{len(seeds)} seed(s))", 0, enabled=progress)
        trainer = Trainer(cfg, seeds=pair_seeds, chunk_updates=spec0.chunk_updates,
                          batched=group.numeric,
                          callbacks=[lambda r, b=bar: b.chunk(r.steps_done, r.metrics)])
        bar.total_steps = trainer.total_updates * trainer.steps_per_update
        state = trainer.init()
        trainer.compile(state)
        t_train = time.perf_counter()
        bar.start(0)
        try:
            state, metrics = trainer.run(state)
        finally:
            bar.stop()
        now = time.perf_counter()
        timing = {"wall_seconds": now - t0, "compile_seconds": trainer.compile_seconds,
                  "train_seconds": now - t_train, "sessions": 1}
        n = len(seeds)
        for j, (ti, trial) in enumerate(zip(group.trials, members, strict=True)):
            sl = slice(j * n, (j + 1) * n)
            results.append(TrialResult(
                f"trial-{ti:03d}", trial, _trial_spec(resolved, trial, seeds, chunk_updates),
                {k: v[sl] for k, v in metrics.items()},
                jax.device_get(jax.tree.map(lambda x, s=sl: x[s], state)), timing,
                trainer.steps_per_update))
        log(f"program {gi + 1}/{len(groups)}: {len(members)} trial(s) in "
            f"{timing['wall_seconds']:.1f} s ({trainer.compile_seconds:.1f} s compile)")
    return sorted(results, key=lambda r: r.name)


def _ray_trial(spec_json: dict[str, Any], cache_dir: str | None) -> dict[str, Any]:
    """A Ray task: train one trial for all its seeds, return metrics and final state."""
    import jax

    from rlfoundry.engine import Trainer
    from rlfoundry.experiment import compile_cache
    from rlfoundry.experiment.spec import RunSpec

    compile_cache.enable(cache_dir)
    t0 = time.perf_counter()
    spec = RunSpec.from_json(spec_json, where="trial")
    trainer = Trainer(spec.config, seeds=spec.seeds, chunk_updates=spec.chunk_updates)
    state = trainer.init()
    trainer.compile(state)
    t_train = time.perf_counter()
    state, metrics = trainer.run(state)
    now = time.perf_counter()
    return {"metrics": metrics, "state": jax.device_get(state),
            "timing": {"wall_seconds": now - t0, "compile_seconds": trainer.compile_seconds,
                       "train_seconds": now - t_train, "sessions": 1},
            "steps_per_update": trainer.steps_per_update}


def run_ray(resolved: Any, trials: list[Trial], seeds: list[int], *,
            chunk_updates: int | None = None, address: str | None = None, num_cpus: int = 2,
            cache_dir: str | None = None, log: Any = print) -> list[TrialResult]:
    """Each trial a Ray task (1 CPU) on a local Ray, or on the cluster at ``address``."""
    import logging
    import os

    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray: pip install ray==2.60.0") from None
    from rlfoundry.experiment import compile_cache

    cache = cache_dir or os.environ.get(compile_cache.ENV_VAR) or compile_cache.default_dir()
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False,
                                  "include_dashboard": False}
        try:
            with warnings.catch_warnings():
                # Ray forks helpers after JAX started threads; they exec at once, so the
                # "os.fork() is incompatible with multithreaded code" warning does not apply.
                warnings.filterwarnings("ignore", message=".*os.fork.*")
                if address:
                    ray.init(address=address, **kwargs)
                else:
                    ray.init(num_cpus=num_cpus, **kwargs)
        except Exception as err:  # noqa: BLE001 - connection problems come in many types
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise ConfigError(f"cannot start {where} ({type(err).__name__}: {err}); check "
                              "--ray-address or use --backend vmap.") from None
    try:
        task = ray.remote(num_cpus=1)(_ray_trial)
        specs = [_trial_spec(resolved, t, seeds, chunk_updates) for t in trials]
        t0 = time.perf_counter()
        refs = [task.remote(s.to_json(), cache) for s in specs]
        log(f"submitted {len(refs)} Ray task(s)")
        outs = ray.get(refs)
        log(f"Ray tasks finished in {time.perf_counter() - t0:.1f} s")
    finally:
        if started_here:
            ray.shutdown()
    return [TrialResult(f"trial-{i:03d}", t, s, o["metrics"], o["state"], o["timing"],
                        o["steps_per_update"])
            for i, (t, s, o) in enumerate(zip(trials, specs, outs, strict=True))]


# --- results ------------------------------------------------------------------------------


def write_trial(folder: Path, r: TrialResult) -> Path:
    """A trial as a complete run folder (config, metrics, final checkpoint, summary)."""
    from rlfoundry.experiment.checkpoint import Checkpointer
    from rlfoundry.experiment.logs import MetricsLog, rows_from_chunk
    from rlfoundry.experiment.report import finish
    from rlfoundry.experiment.runfolder import RunFolder

    run = RunFolder.create(folder / "trials" / r.name, r.spec, overwrite=True)
    MetricsLog(run.metrics_path).append(rows_from_chunk(r.metrics, 1, r.steps_per_update))
    updates = next(iter(r.metrics.values())).shape[1]
    ckpt = Checkpointer(run.checkpoint_dir, keep=1)
    ckpt.save(updates, r.state, r.timing)
    ckpt.close()
    finish(run, r.spec, r.timing, r.steps_per_update)
    return run.path


def write_results(folder: Path, results: list[TrialResult], metric: str,
                  backend: str) -> dict[str, Any]:
    """Trial folders, then ``sweep.json`` and ``sweep.csv``; returns the table."""
    from rlfoundry.config import to_dict
    from rlfoundry.experiment.report import final_values

    swept = sorted({k for r in results for k in r.settings})
    rows = []
    for r in results:
        if metric not in r.metrics:
            keys = ", ".join(k for k in r.metrics)
            raise ConfigError(f"--metric {metric!r} is not logged; choose one of {keys}.")
        path = write_trial(folder, r)
        finals, _ = final_values(r.metrics, metric)
        ok = finals[np.isfinite(finals)]
        rows.append({
            "trial": r.name, "run_dir": str(path),
            "settings": {k: _jsonable(r.settings.get(k)) for k in swept},
            "per_seed": [float(f) if np.isfinite(f) else None for f in finals],
            "mean": float(ok.mean()) if ok.size else None,
            "std": float(ok.std(ddof=1)) if ok.size > 1 else (0.0 if ok.size else None),
            "wall_seconds": r.timing["wall_seconds"],
        })
    scored = [r for r in rows if r["mean"] is not None]
    best = max(scored, key=lambda r: r["mean"]) if scored else None
    table = {
        "status": "done", "backend": backend, "metric": metric, "swept": swept,
        "seeds": results[0].spec.seeds if results else [],
        "base_config": to_dict(results[0].spec.config) if results else {},
        "algo": results[0].spec.algo if results else None,
        "trials": rows, "best": best,
        "json": str(folder / "sweep.json"), "csv": str(folder / "sweep.csv"),
    }
    (folder / "sweep.json").write_text(json.dumps(table, indent=2) + "\n")
    with open(folder / "sweep.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["trial", *swept, "mean", "std", "per_seed", "run_dir"])
        for r in rows:
            w.writerow([r["trial"], *[r["settings"][k] for k in swept], r["mean"], r["std"],
                        " ".join(str(v) for v in r["per_seed"]), r["run_dir"]])
    return table
