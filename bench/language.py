"""Language agents on a CPU: throughput, and GRPO vs RLOO vs LOOP vs token PPO.

Run by hand (results go in docs/language.md):

    PYTHONPATH=src python bench/language.py                  # everything
    PYTHONPATH=src python bench/language.py --part speed     # tokens/s and episodes/s
    PYTHONPATH=src python bench/language.py --part compare --updates 600

``speed``: rollout (generation + environment, one compiled scan) and update (clipped
epochs over the batch) at two model sizes on TextGuess-v0, 64 dialogues per batch;
tokens counts every position of the dialogue (environment and agent tokens), agent
tokens are those the policy sampled. ``compare``: each learner for 3 seeds (vmapped) on
TextGuess-v0 with its default settings; success (fraction of dialogues solved, sampled
at temperature 1) against wall time, final success = mean over the last 10% of updates,
mean and 95% t-interval over seeds. Prints a table per part and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import rlfoundry  # noqa: F401  (single-threaded XLA flags)
from rlfoundry.engine import Trainer
from rlfoundry.experiment.stats import mean_ci
from rlfoundry.language.learners import (
    LANGUAGE_ALGORITHMS,
    TokenBatch,
    init,
    layout,
    model_for,
    optimise,
    text_env,
)
from rlfoundry.language.trajectory import rollout
from rlfoundry.language.transformer import count_params

SIZES = {"small": dict(d_model=64, num_layers=2, num_heads=4),
         "medium": dict(d_model=128, num_layers=4, num_heads=4)}


def timed(fn, *args, repeats: int = 5) -> float:
    jax.block_until_ready(fn(*args))  # compile
    t0 = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - t0) / repeats


def measure(env_name: str, arch: dict) -> tuple:
    """Seconds per rollout and per update (LOOP's 2 epochs x 2 minibatches) of one batch."""
    cfg = LANGUAGE_ALGORITHMS["loop"].config_cls(env=env_name, **arch)
    env = text_env(cfg.env)
    lay = layout(cfg, env)
    model = model_for(cfg, env)
    state = init(cfg, jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), cfg.num_envs)
    roll = jax.jit(lambda p, k: rollout(model, p, env, env.default_params, keys, k, 1.0,
                                        lay.turns))
    t_roll = timed(roll, state.params, jax.random.PRNGKey(2))
    traj = roll(state.params, jax.random.PRNGKey(2))
    batch = TokenBatch(traj.tokens, traj.agent_mask, traj.log_prob, traj.log_prob,
                       jnp.ones_like(traj.log_prob), jnp.zeros_like(traj.log_prob))
    opt = jax.jit(lambda s, b, k: optimise(cfg, model, s, b, k)[0])
    t_opt = timed(opt, state, batch, jax.random.PRNGKey(3))
    return cfg, lay, state, traj, t_roll, t_opt


def speed(env_name: str) -> list[dict]:
    rows = []
    for size, arch in SIZES.items():
        cfg, lay, state, traj, t_roll, t_opt = measure(env_name, arch)
        n, tokens = cfg.num_envs, cfg.num_envs * lay.length
        agent = float(traj.agent_mask.sum())
        rows.append({
            "size": size, "params": count_params(state.params), "dialogues": n,
            "seq_len": lay.length, "rollout_s": t_roll, "update_s": t_opt,
            "rollout_tokens_per_s": tokens / t_roll, "rollout_agent_tokens_per_s": agent / t_roll,
            "rollout_episodes_per_s": n / t_roll,
            "update_tokens_per_s": tokens * cfg.update_epochs / t_opt,
            "update_episodes_per_s": n * cfg.update_epochs / t_opt,
            "epochs_x_minibatches": f"{cfg.update_epochs}x{cfg.num_minibatches}",
        })
    print(f"\n{'size':8}{'params':>9}{'rollout s':>11}{'tok/s':>10}{'agent tok/s':>13}"
          f"{'ep/s':>8}{'update s':>10}{'tok/s':>10}{'ep/s':>8}")
    for r in rows:
        print(f"{r['size']:8}{r['params']:>9}{r['rollout_s']:>11.3f}"
              f"{r['rollout_tokens_per_s']:>10.0f}{r['rollout_agent_tokens_per_s']:>13.0f}"
              f"{r['rollout_episodes_per_s']:>8.0f}{r['update_s']:>10.3f}"
              f"{r['update_tokens_per_s']:>10.0f}{r['update_episodes_per_s']:>8.0f}")
    return rows


def compare(env_name: str, updates: int, seeds: int, algos: list[str]) -> list[dict]:
    rows = []
    for name in algos:
        algo = LANGUAGE_ALGORITHMS[name]
        cfg = algo.config_cls(env=env_name)
        cfg = cfg.replace(total_steps=algo.steps_per_update(cfg) * updates)
        curve: list[tuple[float, float]] = []
        trainer = Trainer(cfg, seeds=seeds, chunk_updates=max(1, updates // 20))
        trainer.callbacks.append(lambda r, c=curve: c.append(
            (r.elapsed, float(np.mean(r.metrics["success"][:, -1])))))
        t0 = time.perf_counter()
        _, metrics = trainer.run()
        wall = time.perf_counter() - t0
        k = max(1, updates // 10)
        final = metrics["success"][:, -k:].mean(axis=1)
        m, _, lo, hi = mean_ci(final)
        first95 = next((t for t, s in curve if s >= 0.95), None)
        rows.append({"algo": name, "seeds": seeds, "updates": updates, "wall_s": wall,
                     "compile_s": trainer.compile_seconds, "final_success_per_seed":
                     final.tolist(), "final_success": m, "ci95": [lo, hi],
                     "first_chunk_at_95_s": first95, "curve": curve,
                     "load_avg_1m": os.getloadavg()[0]})
        print(f"{name}: final success {m:.3f} [{lo:.3f}, {hi:.3f}] in {wall:.0f} s "
              f"(incl. {trainer.compile_seconds:.0f} s compile), load {os.getloadavg()[0]:.1f}",
              flush=True)
    print(f"\n{'algo':10}{'final success':>15}{'95% CI':>18}{'wall s':>9}{'≥95% at s':>11}")
    for r in rows:
        at = "-" if r["first_chunk_at_95_s"] is None else f"{r['first_chunk_at_95_s']:.0f}"
        ci = f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
        print(f"{r['algo']:10}{r['final_success']:>15.3f}{ci:>18}{r['wall_s']:>9.0f}{at:>11}")
    return rows


def before(env_name: str, episodes: int = 3) -> str:
    """Transcripts of an untrained policy (greedy), to set beside a trained run's
    ``rlfoundry render`` output."""
    from rlfoundry.language.transcript import transcripts

    cfg = LANGUAGE_ALGORITHMS["grpo"].config_cls(env=env_name)
    text = transcripts(cfg, init(cfg, jax.random.PRNGKey(0)).params, episodes)
    print(text)
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["speed", "compare", "before", "all"], default="all")
    p.add_argument("--env", default="TextGuess-v0")
    p.add_argument("--updates", type=int, default=600)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--algos", default="grpo,rloo,loop,token_ppo")
    args = p.parse_args()
    out: dict = {"env": args.env, "load_avg_1m_start": os.getloadavg()[0]}
    if args.part == "before":
        out["before"] = before(args.env)
    if args.part in ("speed", "all"):
        out["speed"] = speed(args.env)
    if args.part in ("compare", "all"):
        out["compare"] = compare(args.env, args.updates, args.seeds, args.algos.split(","))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
