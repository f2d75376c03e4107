"""Algorithm discovery benchmark: DPO vs PPO, LPO from scratch, TA-LPO vs LPO, GROOVE.

Why: to know whether the learned and discovered objectives help on this library's tasks at
budgets a CPU affords, and what a generation of meta-training costs.

Parts (``--parts a,b,c,d``; each writes ``<out>/part_<x>.json``):
  a. DPO vs PPO-clip, trained from scratch on CartPole-v1 and Gridworld-dense-v0
     (``--seeds`` seeds each, mean with a 95% Student-t CI of the final return).
  b. LPO meta-trained from scratch (zero drift at start) on CartPole-v1 with OpenES, then
     evaluated against its initialisation and PPO on CartPole-v1 and on held-out
     Acrobot-v1 and Gridworld-dense-v0.
  c. TA-LPO vs LPO (both meta-trained on CartPole-v1 with the same budget) at three
     training horizons on CartPole-v1.
  d. GROOVE (PLR by algorithmic regret vs an A2C antagonist) vs uniform level sampling:
     LPO meta-trained on Gridworld-random-v0 levels each way, evaluated on 8 held-out
     random levels (seeds no curriculum drew) and on the named dense level.
Speed: generations per minute (generations after the first, which compiles) and the
fraction of wall time spent outside compiled code, from every meta-training run.

Budgets (``--budget``): ``full`` is the documented target (population 16, 20-30
generations; ~80 min of one core: run ``--parts a,b,c`` and ``--parts d`` as two processes
to finish within an hour on 2 cores); ``reduced`` and ``small`` cut it for a shared
machine; ``tiny`` only checks the pipeline. docs/discovery.md reports the full budget's
numbers (2026-11-22). An interrupted meta-training run is resumed from its checkpoint.
Every part can run in its own process (``--parts b``); ``--hang-seconds`` dumps the Python
stack and exits (status 1) when a part, or one meta-training run in it, stalls (a guard
kept from the jaxlib CPU deadlock, fixed since: see README).

Run: ``nice -n 5 python bench/discovery.py --budget reduced --out runs/bench-discovery``.
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import json
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

import rlfoundry  # noqa: F401  (single-threaded XLA flags before JAX starts)
from rlfoundry.algos.ppo import PPOConfig
from rlfoundry.config import from_dict
from rlfoundry.discovery import DiscoveryConfig, final_return
from rlfoundry.discovery.groove import heldout_returns
from rlfoundry.discovery.objective_search import INNER_DEFAULTS
from rlfoundry.discovery.run import discover, load_objective
from rlfoundry.engine import train
from rlfoundry.envs.gridworld import named_level, random_level, stack_levels
from rlfoundry.experiment.stats import mean_ci
from rlfoundry.objectives import DPO, LPO, PPOClip

BUDGETS: dict[str, dict[str, Any]] = {
    # a pipeline check, not a result: what an overloaded machine finished before a deadline
    "tiny": {"seeds": 5, "a_steps": {"CartPole-v1": 16_384, "Gridworld-dense-v0": 8_192},
             "population": 4, "generations": 2, "inner_steps": 4_096,
             "eval_steps": {"CartPole-v1": 8_192, "Acrobot-v1": 8_192,
                            "Gridworld-dense-v0": 8_192},
             "horizons": (2_048, 4_096, 8_192),
             "g_population": 4, "g_generations": 2, "g_levels": 2, "g_inner_steps": 2_048,
             "g_eval_seeds": 3, "g_eval_steps": 4_096, "g_replay_prob": 0.9},
    "small": {"seeds": 5, "a_steps": {"CartPole-v1": 100_000, "Gridworld-dense-v0": 65_536},
              "population": 8, "generations": 4, "inner_steps": 16_384,
              "eval_steps": {"CartPole-v1": 32_768, "Acrobot-v1": 32_768,
                             "Gridworld-dense-v0": 32_768},
              "horizons": (8_192, 16_384, 32_768),
              "g_population": 8, "g_generations": 4, "g_levels": 2, "g_inner_steps": 4_096,
              "g_eval_seeds": 3, "g_eval_steps": 8_192, "g_replay_prob": 0.9},
    "reduced": {"seeds": 5, "a_steps": {"CartPole-v1": 100_000, "Gridworld-dense-v0": 65_536},
                "population": 8, "generations": 6, "inner_steps": 32_768,
                "eval_steps": {"CartPole-v1": 65_536, "Acrobot-v1": 65_536,
                               "Gridworld-dense-v0": 65_536},
                "horizons": (16_384, 32_768, 65_536),
                "g_population": 8, "g_generations": 6, "g_levels": 4, "g_inner_steps": 8_192,
                "g_eval_seeds": 3, "g_eval_steps": 16_384, "g_replay_prob": 0.5},
    "full": {"seeds": 10, "a_steps": {"CartPole-v1": 500_000, "Gridworld-dense-v0": 262_144},
             "population": 16, "generations": 30, "inner_steps": 65_536,
             "eval_steps": {"CartPole-v1": 131_072, "Acrobot-v1": 131_072,
                            "Gridworld-dense-v0": 131_072},
             "horizons": (32_768, 65_536, 131_072),
             "g_population": 16, "g_generations": 20, "g_levels": 4, "g_inner_steps": 16_384,
             "g_eval_seeds": 5, "g_eval_steps": 32_768, "g_replay_prob": 0.5},
}
# inner PPO for every task: the meta-training setting (8 envs x 64 steps), small MLPs
EVAL_PPO = {"num_envs": 8, "num_steps": 64, "num_minibatches": 4}
GRID_PPO = {"hidden_sizes": (32, 32), "lr": 1e-3}
GRID_FRACTION = 0.25


def ppo_config(env: str, steps: int, objective: Any = None) -> PPOConfig:
    settings: dict[str, Any] = {**EVAL_PPO, "env": env, "total_steps": steps}
    if env.startswith("Gridworld"):
        settings.update(GRID_PPO)
    cfg = from_dict(PPOConfig, settings)
    return cfg if objective is None else cfg.replace(objective=objective)


def final_returns(cfg: PPOConfig, seeds: int, fraction: float) -> np.ndarray:
    """Final return of ``seeds`` independent runs (seeds 1000.., never a meta-train seed)."""
    keys = jax.vmap(jax.random.PRNGKey)(np.arange(1000, 1000 + seeds))
    _, metrics = jax.jit(jax.vmap(train, in_axes=(None, 0)))(cfg, keys)
    return np.asarray(final_return(metrics, fraction))


def ci(x: np.ndarray) -> dict[str, float]:
    m, sd, lo, hi = mean_ci(x)
    return {"mean": m, "std": sd, "low": lo, "high": hi, "n": int(np.size(x))}


def fmt(c: dict[str, float]) -> str:
    return f"{c['mean']:8.2f} [{c['low']:8.2f}, {c['high']:8.2f}]"


def meta_speed(run: Path) -> dict[str, float]:
    rows = [json.loads(x) for x in (run / "meta.jsonl").read_text().splitlines() if x]
    summary = json.loads((run / "summary.json").read_text())
    out = {"generations": len(rows), "host_fraction": summary["host_fraction"],
           "first_generation_s": rows[0]["seconds"] if rows else float("nan")}
    if len(rows) > 1:
        span = rows[-1]["seconds"] - rows[0]["seconds"]
        out["generations_per_minute"] = 60.0 * (len(rows) - 1) / span
        if "host_seconds" in rows[-1]:  # after the first (compiling) generation
            host = rows[-1]["host_seconds"] - rows[0]["host_seconds"]
            out["host_fraction_after_compile"] = host / span
    out["fitness_first"] = rows[0]["fitness_mean"] if rows else float("nan")
    out["fitness_last"] = rows[-1]["fitness_mean"] if rows else float("nan")
    return out


WATCHDOG_SECONDS = 1800.0


def arm_watchdog() -> None:
    """(Re)start the stall watchdog (``--hang-seconds``): each part, and each meta-training
    run inside a part, gets the whole window, so parts with two long meta-training runs
    (d: GROOVE and uniform, ~25 min each on one shared core at the full budget) are not
    cut short; a jaxlib hang still ends the process."""
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)


def meta_train(out: Path, name: str, config: DiscoveryConfig, seed: int = 0) -> Path:
    """Meta-train into ``out/name``: a finished run of this config there is reused, an
    interrupted one (checkpoints, no summary) resumed, anything else replaced."""
    from rlfoundry.discovery.run import config_to_json

    run = out / name
    same = (run / "discovery.json").exists() and json.loads(
        (run / "discovery.json").read_text()
    ) == json.loads(json.dumps(config_to_json(config)))
    if same and (run / "summary.json").exists():
        print(f"  reusing {run}", flush=True)
        return run
    resume = same and any((run / "checkpoints").glob("*"))
    t0 = time.perf_counter()
    arm_watchdog()
    if resume:
        print(f"  resuming {run}", flush=True)
        discover(run, resume=True, show_progress=False)
    else:
        discover(run, config, seed=seed, overwrite=True, show_progress=False)
    arm_watchdog()  # a fresh window for the evaluations that follow
    print(f"  meta-trained {name}: {config.generations} generations in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return run


def cartpole_search(b: dict[str, Any], objective: str) -> DiscoveryConfig:
    inner = {**INNER_DEFAULTS["CartPole-v1"], "total_steps": b["inner_steps"]}
    return DiscoveryConfig(objective=objective, envs=("CartPole-v1",),
                           generations=b["generations"], population=b["population"],
                           hidden=16, sigma=0.05, lr=0.05, normalize_by_ppo=True,
                           inner=tuple(inner.items()))


# ------------------------------------------------------------------------------ parts


def part_a(b: dict[str, Any], out: Path) -> dict[str, Any]:
    rows = {}
    for env, steps in b["a_steps"].items():
        frac = GRID_FRACTION if env.startswith("Gridworld") else 0.1
        for name, obj in (("ppo", PPOClip()), ("dpo", DPO())):
            rows[f"{env}/{name}"] = ci(final_returns(ppo_config(env, steps, obj), b["seeds"],
                                                     frac))
            print(f"  {env:22s} {name:4s} {fmt(rows[f'{env}/{name}'])}", flush=True)
    return {"final_return": rows, "steps": b["a_steps"]}


def _evaluate(objectives: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for env, steps in b["eval_steps"].items():
        frac = GRID_FRACTION if env.startswith("Gridworld") else 0.1
        for name, obj in objectives.items():
            rows[f"{env}/{name}"] = ci(final_returns(ppo_config(env, steps, obj), b["seeds"],
                                                     frac))
            print(f"  {env:22s} {name:12s} {fmt(rows[f'{env}/{name}'])}", flush=True)
    return rows


def part_b(b: dict[str, Any], out: Path) -> dict[str, Any]:
    config = cartpole_search(b, "lpo")
    run = meta_train(out, "lpo-cartpole", config)
    learned = load_objective(run)
    init = LPO(hidden=config.hidden, ppo_init=False)  # the zero-drift starting point
    rows = _evaluate({"lpo_learned": learned, "lpo_init": init, "ppo": PPOClip()}, b)
    return {"final_return": rows, "meta": meta_speed(run), "config": dataclasses.asdict(config)}


def part_c(b: dict[str, Any], out: Path) -> dict[str, Any]:
    runs = {}
    for kind in ("lpo", "ta_lpo"):
        runs[kind] = meta_train(out, f"{kind}-cartpole", cartpole_search(b, kind))
    rows = {}
    for steps in b["horizons"]:
        for kind, run in runs.items():
            obj = load_objective(run)
            c = ci(final_returns(ppo_config("CartPole-v1", steps, obj), b["seeds"], 0.1))
            rows[f"{steps}/{kind}"] = c
            print(f"  horizon {steps:7d} {kind:7s} {fmt(c)}", flush=True)
    return {"final_return": rows, "meta": {k: meta_speed(r) for k, r in runs.items()}}


def heldout_gridworlds(count: int = 8) -> Any:
    keys = jax.random.split(jax.random.PRNGKey(424_242), count)  # never drawn in training
    return stack_levels([random_level(k) for k in keys])


def groove_config(b: dict[str, Any], curriculum: str) -> DiscoveryConfig:
    inner = {**INNER_DEFAULTS["Gridworld-random-v0"], "total_steps": b["g_inner_steps"]}
    replay = {"replay_prob": b["g_replay_prob"]} if curriculum != "uniform" else {}
    return DiscoveryConfig(
        objective="lpo", envs=("Gridworld-random-v0",), curriculum=curriculum,
        generations=b["g_generations"], population=b["g_population"],
        levels=b["g_levels"], hidden=16, sigma=0.05, lr=0.05, normalize_by_ppo=False,
        final_fraction=GRID_FRACTION, inner=tuple(inner.items()), **replay)


def part_d(b: dict[str, Any], out: Path) -> dict[str, Any]:
    runs = {}
    for curriculum in ("groove", "uniform"):
        config = groove_config(b, curriculum)
        name = f"lpo-{curriculum}" + (f"-rp{config.replay_prob:g}"
                                      if curriculum == "groove" else "")
        runs[curriculum] = meta_train(out, name, config)
    levels = heldout_gridworlds()
    keys = jax.vmap(jax.random.PRNGKey)(np.arange(2000, 2000 + b["g_eval_seeds"]))
    objectives = {"groove": load_objective(runs["groove"]),
                  "uniform": load_objective(runs["uniform"]), "ppo": PPOClip(),
                  "lpo_init": LPO(hidden=16, ppo_init=False)}
    rows, per_level = {}, {}
    for name, obj in objectives.items():
        cfg = ppo_config("Gridworld-random-v0", b["g_eval_steps"], obj)
        r = np.asarray(heldout_returns(cfg, levels, keys, GRID_FRACTION))
        per_level[name] = r.mean(0).tolist()
        rows[f"heldout8/{name}"] = ci(r.mean(1))  # per seed: mean over the 8 levels
        print(f"  held-out random x8  {name:8s} {fmt(rows[f'heldout8/{name}'])}", flush=True)
        dense = ci(final_returns(ppo_config("Gridworld-dense-v0", b["g_eval_steps"], obj),
                                 b["g_eval_seeds"], GRID_FRACTION))
        rows[f"dense/{name}"] = dense
        print(f"  Gridworld-dense     {name:8s} {fmt(dense)}", flush=True)
    # regret of the held-out levels under each objective (vs PPO), the GROOVE measure
    return {"final_return": rows, "per_level_mean": per_level,
            "meta": {k: meta_speed(r) for k, r in runs.items()},
            "dense_level_agent_start": np.asarray(named_level("dense").agent_pos).tolist()}


PARTS = {"a": part_a, "b": part_b, "c": part_c, "d": part_d}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", choices=sorted(BUDGETS), default="reduced")
    ap.add_argument("--parts", default="a,b,c,d")
    ap.add_argument("--out", default="runs/bench-discovery")
    ap.add_argument("--hang-seconds", type=float, default=1800.0,
                    help="dump the stack and exit 1 if a part, or one meta-training run in "
                         "it, runs longer (jaxlib hang)")
    args = ap.parse_args()
    global WATCHDOG_SECONDS
    WATCHDOG_SECONDS = args.hang_seconds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    b = BUDGETS[args.budget]
    results: dict[str, Any] = {"budget": args.budget}
    for part in args.parts.split(","):
        arm_watchdog()
        print(f"part {part}:", flush=True)
        t0 = time.perf_counter()
        res = PARTS[part](b, out)
        res["wall_seconds"] = time.perf_counter() - t0
        faulthandler.cancel_dump_traceback_later()
        (out / f"part_{part}.json").write_text(json.dumps(res, indent=1))
        print(f"part {part} took {res['wall_seconds']:.0f} s", flush=True)
        results[part] = res
    print(json.dumps(results))


if __name__ == "__main__":
    main()
