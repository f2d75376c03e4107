"""Reward design and learning from data, measured: run by hand, results go in docs/rewards.md.

    PYTHONPATH=src python bench/rewards_data.py                 # every part, 5 seeds
    PYTHONPATH=src python bench/rewards_data.py --parts bc,shaping --seeds 3

Parts (each with >= 3 seeds and 95% Student-t confidence intervals over seeds):
  bc           PPO on a fixed sparse-reward maze (Maze-SixteenRooms) from scratch vs
               warm-started from 2 BFS-expert trajectories (BC pre-training + imitation
               loss), same budget;
  shaping      PPO on sparse CartPole (reward code: 0 per step, -1 when the pole falls; the
               success metric is CartPole's own return) with and without potential-based
               shaping Φ = 5·(0.21 − |θ|): steps until the return first reaches 200 / 450;
  blend        CartPole-v1 with a helpful (upright) and a misleading (push left) auxiliary
               reward: ES over the two weights vs fixed equal weights vs env reward only;
  preferences  CartPole-v1 PPO on a Bradley-Terry reward model fitted to 512 scripted
               preference pairs of random-policy segments vs on the true reward: fraction of
               the true-reward return recovered.
Prints a table per part and, last, one JSON line with every number.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

import rlfoundry  # noqa: F401 - sets the XLA flags
from rlfoundry.algos.ppo import PPOConfig
from rlfoundry.config import from_dict
from rlfoundry.engine import Trainer
from rlfoundry.experiment.stats import mean_ci

SIG = "def reward(obs, action, next_obs, info):\n"
SPARSE = SIG + "    return -1.0 * info['terminated']\n"
UPRIGHT_POTENTIAL = "def potential(obs):\n    return {scale} * (0.21 - jnp.abs(obs[2]))\n"
UPRIGHT = SIG + "    return 0.5 - 5 * jnp.abs(next_obs[2])\n"
PUSH_LEFT = SIG + "    return 2.0 * (action == 0)\n"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def final_returns(metrics: dict[str, np.ndarray], fraction: float = 0.1) -> np.ndarray:
    """Per seed: episode-weighted mean return over the last ``fraction`` of updates."""
    r, n = np.asarray(metrics["episode_return"]), np.asarray(metrics["episodes"])
    last = max(int(r.shape[1] * fraction), 1)
    return (r[:, -last:] * n[:, -last:]).sum(1) / np.maximum(n[:, -last:].sum(1), 1.0)


def train(settings: dict[str, Any], seeds: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    cfg = from_dict(PPOConfig, settings)
    _, metrics = Trainer(cfg, seeds=seeds, chunk_updates=10_000).run()
    return final_returns(metrics), metrics


def summary(values: np.ndarray) -> dict[str, Any]:
    m, sd, lo, hi = mean_ci(values)
    return {"mean": m, "std": sd, "ci95": [lo, hi], "per_seed": np.round(values, 4).tolist()}


def table(title: str, rows: dict[str, dict[str, Any]], digits: int = 3) -> None:
    print(f"\n{title}")
    print(f"{'arm':<28}{'mean':>10}{'95% CI':>24}   per seed")
    for name, s in rows.items():
        ci = f"{s['ci95'][0]:.{digits}f} .. {s['ci95'][1]:.{digits}f}"
        seeds = ", ".join(f"{v:.{digits}f}" for v in s["per_seed"])
        print(f"{name:<28}{s['mean']:>10.{digits}f}{ci:>24}   {seeds}")


# ----------------------------------------------------------------------------- parts


def part_bc(seeds: int, steps: int, env: str = "Maze-SixteenRooms") -> dict[str, Any]:
    from rlfoundry.data.record import record_expert

    with tempfile.TemporaryDirectory() as tmp:
        path, data = record_expert("maze_bfs", env, 2, Path(tmp) / "expert.npz")
        log(f"bc: 2 expert trajectories, {data.num_steps} steps, returns "
            f"{data.episode_returns().round(3).tolist()}")
        base = dict(env=env, total_steps=steps, num_envs=16, num_steps=64, lr=5e-4)
        none, _ = train(base, seeds)
        log(f"bc: from scratch {none.round(3).tolist()}")
        warm, _ = train({**base, "imitation": {"data": str(path)}}, seeds)
        log(f"bc: warm-started {warm.round(3).tolist()}")
    rows = {"PPO from scratch": summary(none), "PPO + BC from 2 trajectories": summary(warm)}
    table(f"BC warm start on {env}, {steps:,} steps (final return; success > 0)", rows)
    return {"env": env, "steps": steps, "expert_return": float(data.episode_returns().mean()),
            "success_rate": {"scratch": float((none > 0).mean()), "bc": float((warm > 0).mean())},
            **rows}


def first_success(metrics: dict[str, np.ndarray], threshold: float, steps_per_update: int
                  ) -> np.ndarray:
    """Per seed: environment steps until an update's mean episode return beats
    ``threshold`` (the budget if it never does: a censored value)."""
    r, n = np.asarray(metrics["episode_return"]), np.asarray(metrics["episodes"])
    hit = (r > threshold) & (n > 0)
    first = np.where(hit.any(1), hit.argmax(1) + 1, r.shape[1])
    return first * steps_per_update


def part_shaping(seeds: int, steps: int, scale: float,
                 thresholds: tuple[float, ...] = (200.0, 450.0)) -> dict[str, Any]:
    base = dict(env="CartPole-v1", total_steps=steps, num_envs=8, num_steps=64)
    per_update = 8 * 64
    potential = UPRIGHT_POTENTIAL.format(scale=scale)
    out: dict[str, Any] = {"steps": steps, "potential": potential}
    arms = (("sparse", {"code": SPARSE}),
            ("sparse + shaping", {"code": SPARSE, "potential": potential}))
    firsts: dict[tuple[str, float], np.ndarray] = {}
    for name, reward in arms:
        final, metrics = train({**base, "reward": reward}, seeds)
        out[name] = {"final_return": summary(final)}
        for th in thresholds:
            firsts[name, th] = first_success(metrics, th, per_update)
            out[name][f"steps_to_{th:g}"] = summary(firsts[name, th].astype(float))
            out[name][f"seeds_reaching_{th:g}"] = int((firsts[name, th] < steps).sum())
        log(f"shaping: {name} final {final.round(1).tolist()} steps to "
            f"{', '.join(f'{th:g}: {firsts[name, th].tolist()}' for th in thresholds)}")
    for th in thresholds:
        table(f"sparse CartPole, {steps:,} steps: steps until the return first reaches "
              f"{th:g} (budget = never)", {n: out[n][f"steps_to_{th:g}"] for n, _ in arms}, 0)
        out[f"speedup_median_{th:g}"] = float(
            np.median(firsts["sparse", th]) / max(np.median(firsts["sparse + shaping", th]), 1))
    table("final return (CartPole's own)", {n: out[n]["final_return"] for n, _ in arms}, 1)
    return out


def part_blend(seeds: int, steps: int, generations: int, population: int) -> dict[str, Any]:
    from rlfoundry.rewards.blend import BlendSearch

    base = dict(env="CartPole-v1", total_steps=steps, num_envs=8, num_steps=64)
    search_cfg = from_dict(PPOConfig, {**base, "reward": {"aux": [UPRIGHT, PUSH_LEFT]}})
    t0 = time.perf_counter()
    hist = BlendSearch(search_cfg, population=population, generations=generations,
                       sigma=0.5, lr=0.3).run(jax.random.PRNGKey(1000),
                                              log=lambda m: log(f"blend: {m}"))
    search_seconds = time.perf_counter() - t0
    learned = hist["weights"]
    rows = {}
    for name, weights in (("env reward only", [0.0, 0.0]), ("equal weights (1, 1)", [1.0, 1.0]),
                          (f"ES weights ({learned[0]:.2f}, {learned[1]:.2f})", learned)):
        final, _ = train({**base, "reward": {"aux": [UPRIGHT, PUSH_LEFT],
                                             "aux_weights": weights}}, seeds)
        rows[name] = summary(final)
        log(f"blend: {name} {final.round(1).tolist()}")
    table(f"CartPole-v1, {steps:,} steps: primary (env) return with a misleading auxiliary "
          "reward", rows, 1)
    return {"steps": steps, "generations": generations, "population": population,
            "mean_weights_per_generation": hist["mean_weights"],
            "search_seconds": search_seconds, "weights": learned, **rows}


def part_preferences(seeds: int, steps: int, pairs: int) -> dict[str, Any]:
    from rlfoundry.rewards.preferences import learn_from_preferences, save_reward_model

    base = dict(env="CartPole-v1", total_steps=steps, num_envs=8, num_steps=64)
    true, _ = train(base, seeds)
    log(f"preferences: true reward {true.round(1).tolist()}")
    learned, fits = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(seeds):
            cfg = from_dict(PPOConfig, base)
            model, params, stats = learn_from_preferences(cfg, jax.random.PRNGKey(100 + s),
                                                          pairs=pairs)
            fits.append(stats)
            path = save_reward_model(Path(tmp) / f"rm{s}", model, params, "CartPole-v1", (4,))
            cfg = from_dict(PPOConfig, {**base, "reward": {"model": str(path)}})
            _, metrics = Trainer(cfg, seeds=[s], chunk_updates=10_000).run()
            learned.append(float(final_returns(metrics)[0]))
            log(f"preferences: seed {s} fit {stats} -> return {learned[-1]:.1f}")
    learned_arr = np.asarray(learned)
    fraction = learned_arr / true.mean()
    rows = {"PPO on true reward": summary(true), "PPO on learned BT reward": summary(learned_arr)}
    table(f"CartPole-v1, {steps:,} steps, {pairs} preference pairs", rows, 1)
    rec = summary(fraction)
    table("fraction of true-reward return recovered (per seed / mean true)",
          {"recovered": rec}, 3)
    return {"steps": steps, "pairs": pairs, "fits": fits, "fraction_recovered": rec, **rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="bc,shaping,blend,preferences")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--bc-steps", type=float, default=1e5)
    p.add_argument("--shaping-steps", type=float, default=1e5)
    p.add_argument("--shaping-scale", type=float, default=5.0)
    p.add_argument("--blend-steps", type=float, default=5e4)
    p.add_argument("--blend-generations", type=int, default=6)
    p.add_argument("--blend-population", type=int, default=8)
    p.add_argument("--pref-steps", type=float, default=1e5)
    p.add_argument("--pref-pairs", type=int, default=512)
    args = p.parse_args()
    if args.seeds < 3:
        p.error("use at least 3 seeds")
    results: dict[str, Any] = {"seeds": args.seeds}
    t0 = time.perf_counter()
    for part in args.parts.split(","):
        t = time.perf_counter()
        if part == "bc":
            results["bc"] = part_bc(args.seeds, int(args.bc_steps))
        elif part == "shaping":
            results["shaping"] = part_shaping(args.seeds, int(args.shaping_steps),
                                              args.shaping_scale)
        elif part == "blend":
            results["blend"] = part_blend(args.seeds, int(args.blend_steps),
                                          args.blend_generations, args.blend_population)
        elif part == "preferences":
            results["preferences"] = part_preferences(args.seeds, int(args.pref_steps),
                                                      args.pref_pairs)
        else:
            p.error(f"unknown part {part!r}")
        results.setdefault("seconds", {})[part] = round(time.perf_counter() - t, 1)
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
