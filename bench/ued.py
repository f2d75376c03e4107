"""Maze UED benchmark: held-out solve rates of DR, robust PLR, ACCEL and PAIRED, and
per-update time against JaxUED's maze PLR at an identical configuration.

Run by hand (minutes to hours; results go in docs/ued.md):

    python bench/ued.py                          # 4 methods x 3 seeds at the preset budgets
    python bench/ued.py --total-steps 300k       # a smaller budget
    python bench/ued.py --methods none --speed   # only the speed comparison
    python bench/ued.py --speed --jaxued-python /work/main/.peers/jaxued-venv/bin/python \\
        --jaxued-script /work/main/.peers/jaxued-src/maze_plr.py

Each method trains its ``ued-maze-*`` preset (CPU-sized: feed-forward CNN, 32 envs x 256
steps) for all seeds in one vmapped program, then plays ``--episodes`` stochastic episodes
on each of the 13 held-out mazes per seed. Solve rates are means over seeds with 95%
bootstrap CIs. ``--speed`` times robust PLR updates at JaxUED's maze_plr.py defaults (LSTM
256, 32 envs x 256 steps, 5 epochs of one minibatch, buffer 4000, replay 0.8, MaxMC) in
rlfoundry and, if given its venv and script, in JaxUED itself, in the same run. Prints a
table and a final JSON line. Each method's result is cached in ``bench/results/ued/`` as
soon as it finishes (``--rerun`` retrains), so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlfoundry.engine import Trainer
from rlfoundry.experiment.configure import resolve
from rlfoundry.experiment.maze_eval import solve_rates
from rlfoundry.experiment.stats import mean_ci

RESULTS = Path(__file__).resolve().parent / "results" / "ued"
METHODS = {"dr": "ued-maze-dr", "robust_plr": "ued-maze-plr", "accel": "ued-maze-accel",
           "paired": "ued-maze-paired"}

# JaxUED examples/maze_plr.py defaults, in rlfoundry's names. min_fill is lowered (in both)
# so replay, the update that trains, starts after the first update instead of after 2000
# new levels: otherwise a short timing would measure robust PLR's gradient-free updates.
JAXUED_PLR = dict(
    env="Maze", curriculum="robust_plr", recurrent=True, lstm_size=256, network="cnn",
    hidden_sizes=(32,), activation="relu", num_envs=32, num_steps=256, update_epochs=5,
    num_minibatches=1, lr=1e-4, gamma=0.995, gae_lambda=0.98, ent_coef=1e-3, vf_coef=0.5,
    max_grad_norm=0.5, score="maxmc", buffer_size=4000, replay_prob=0.8, staleness_coef=0.3,
    temperature=0.3, min_fill=0.005, num_edits=5,
)
JAXUED_FLAGS = ["--minimum_fill_ratio", "0.005"]


def count(text: str) -> int:
    text = text.lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def train_and_evaluate(method: str, total_steps: int | None, seeds: int, episodes: int,
                       ) -> dict[str, Any]:
    flags = {"total_steps": total_steps} if total_steps else {}
    config = resolve(None, METHODS[method], None, flags, []).config
    trainer = Trainer(config, seeds=seeds, chunk_updates=25)
    state = trainer.init()
    t0 = time.perf_counter()
    trainer.compile(state)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, metrics = trainer.run(state)
    jax.block_until_ready(state)
    train_s = time.perf_counter() - t0
    res = solve_rates(config, trainer.algo, state, list(range(seeds)), "heldout", episodes)
    curve = metrics["heldout_solve_rate"][:, metrics["heldout_measured"][0] > 0]
    return {
        "method": method, "preset": METHODS[method], "total_steps": config.total_steps,
        "updates": trainer.total_updates, "seeds": seeds, "compile_s": compile_s,
        "train_s": train_s, "seconds_per_update": train_s / trainer.total_updates,
        "solve_rate": res["solve_rate"], "ci95": res["ci95"], "per_maze": res["details"],
        "heldout_curve": curve.mean(0).round(3).tolist(),
        "final_level_walls": float(metrics["level_walls"][:, -10:].mean()),
        "final_level_shortest_path": float(metrics["level_shortest_path"][:, -10:].mean()),
    }


def time_ours(updates: int) -> dict[str, float]:
    """Two chunks of ``updates`` robust PLR updates; the second (buffer past min_fill,
    program compiled) is timed, as in :func:`time_jaxued`."""
    from rlfoundry.curricula import UEDConfig

    config = UEDConfig(total_steps=32 * 256 * 2 * updates, **JAXUED_PLR)
    trainer = Trainer(config, seeds=1, chunk_updates=updates)
    state = trainer.init()
    trainer.compile(state)
    state, _ = trainer.run(state, until=updates)
    t0 = time.perf_counter()
    state, m = trainer.run(state)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - t0
    return {"ours_seconds_per_update": seconds / updates,
            "ours_compile_s": trainer.compile_seconds,
            "ours_replayed_fraction": float(m["replayed"].mean())}


def time_jaxued(python: str, script: str, updates: int) -> dict[str, Any]:
    helper = str(Path(__file__).with_name("jaxued_plr_speed.py"))
    cmd = [python, helper, script, "--updates", str(updates), "--", *JAXUED_FLAGS]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd="/tmp")
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        return {"jaxued_error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", default="dr,robust_plr,accel,paired",
                   help="comma-separated subset of dr,robust_plr,accel,paired, or none")
    p.add_argument("--total-steps", type=count, default=None,
                   help="environment steps per seed (default: each preset's)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--episodes", type=int, default=10, help="per held-out maze and seed")
    p.add_argument("--speed", action="store_true", help="time robust PLR vs JaxUED")
    p.add_argument("--speed-updates", type=int, default=3)
    p.add_argument("--jaxued-python", default=None)
    p.add_argument("--jaxued-script", default=None)
    p.add_argument("--rerun", action="store_true",
                   help="train methods whose results are cached in bench/results/ued/")
    args = p.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    results = []
    methods = [] if args.methods == "none" else args.methods.split(",")
    for method in methods:
        cache = RESULTS / f"{method}-{args.total_steps or 'preset'}-{args.seeds}seeds.json"
        if cache.exists() and not args.rerun:
            results.append(json.loads(cache.read_text()))
            console.print(f"[bold]{method}[/bold]: cached in {cache}")
            continue
        console.print(f"[bold]{method}[/bold] ...")
        r = train_and_evaluate(method, args.total_steps, args.seeds, args.episodes)
        RESULTS.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(r))  # an interrupted run keeps its finished methods
        console.print(f"  {r['updates']} updates in {r['train_s']:.0f} s (+{r['compile_s']:.0f} s "
                      f"compile), held-out solve rate {r['solve_rate']:.3f}")
        results.append(r)

    if results:
        mazes = list(results[0]["per_maze"])
        table = Table(title=f"held-out solve rate, mean over {args.seeds} seeds [95% CI], "
                      f"{args.episodes} episodes per maze and seed")
        table.add_column("maze")
        for r in results:
            table.add_column(r["method"], justify="right")
        for maze in mazes:
            cells = []
            for r in results:
                d = r["per_maze"][maze]
                cells.append(f"{d['solve_rate']:.2f} [{d['ci95'][0]:.2f}, {d['ci95'][1]:.2f}]")
            table.add_row(maze, *cells)
        table.add_row("[bold]mean[/bold]", *[
            f"{r['solve_rate']:.3f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]" for r in results])
        table.add_row("s / update", *[f"{r['seconds_per_update']:.2f}" for r in results])
        console.print(table)
        for r in results:
            per_seed = [v["solve_rate"] for v in r["per_maze"].values()]
            m, _, lo, hi = mean_ci(np.asarray(per_seed))
            console.print(f"{r['method']}: held-out curve (every 25 updates) {r['heldout_curve']}"
                          f"; mean over mazes {m:.3f}; trained-on levels: "
                          f"{r['final_level_walls']:.1f} walls, shortest path "
                          f"{r['final_level_shortest_path']:.1f}")

    speed: dict[str, Any] = {}
    if args.speed:
        speed = time_ours(args.speed_updates)
        if args.jaxued_python and args.jaxued_script:
            speed.update(time_jaxued(args.jaxued_python, args.jaxued_script,
                                     args.speed_updates))
        if "jaxued_seconds_per_update" in speed:
            speed["speedup"] = speed["jaxued_seconds_per_update"] / speed[
                "ours_seconds_per_update"]
        console.print(f"speed (robust PLR, JaxUED maze_plr.py config): {speed}")

    summary = {
        "solve_rate": {r["method"]: r["solve_rate"] for r in results},
        "ci95": {r["method"]: r["ci95"] for r in results},
        "per_maze": {r["method"]: {k: v["solve_rate"] for k, v in r["per_maze"].items()}
                     for r in results},
        "seconds_per_update": {r["method"]: r["seconds_per_update"] for r in results},
        "total_steps": {r["method"]: r["total_steps"] for r in results},
        "seeds": args.seeds, **speed,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    sys.exit(main())
