"""Stable-Baselines3 with the RL Zoo's tuned settings, for cross-checking a score-table gap.

Why: when an rlfoundry learner misses a reference score (docs/scores.md), the first question
is whether the reference implementation, with the same published hyperparameters and the
same budget, reaches it on *several* seeds here, or whether the reference number is one
lucky agent. This trains SB3 for ``--seeds`` seeds with the Zoo's settings (copied from
rl-baselines3-zoo's ``hyperparams/<algo>.yml``), evaluates each final policy for 20
deterministic episodes, and counts training episodes that reached the goal.

Run with the peers' interpreter (``bench/ppo_throughput.py`` creates it)::

    .peers/venv/bin/python bench/sb3_reference.py dqn-mountaincar --seeds 3

The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

# rl-baselines3-zoo hyperparams/dqn.yml, MountainCar-v0 (what rlfoundry's dqn-mountaincar
# preset mirrors): 120k steps, one environment.
ZOO = {
    "dqn-mountaincar": {
        "algo": "dqn", "env": "MountainCar-v0", "n_timesteps": 120_000,
        "kwargs": {
            "learning_rate": 4e-3, "batch_size": 128, "buffer_size": 10_000,
            "learning_starts": 1000, "gamma": 0.98, "target_update_interval": 600,
            "train_freq": 16, "gradient_steps": 8, "exploration_fraction": 0.2,
            "exploration_final_eps": 0.07, "policy_kwargs": {"net_arch": [256, 256]},
        },
    },
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("case", choices=sorted(ZOO))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--eval-episodes", type=int, default=20)
    a = p.parse_args()

    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(1)
    case = ZOO[a.case]
    rows = []
    for seed in range(a.seeds):
        t0 = time.perf_counter()
        env = Monitor(gym.make(case["env"]))
        model = DQN("MlpPolicy", env, seed=seed, verbose=0, **case["kwargs"])
        model.learn(total_timesteps=case["n_timesteps"])
        returns = np.asarray(env.get_episode_rewards())
        eval_env = gym.make(case["env"])
        mean, std = evaluate_policy(model, eval_env, n_eval_episodes=a.eval_episodes,
                                    deterministic=True)
        rows.append({"seed": seed, "eval_mean": float(mean), "eval_std": float(std),
                     "train_episodes": int(returns.size),
                     "train_episodes_reaching_goal": int((returns > -200).sum()),
                     "wall_s": time.perf_counter() - t0})
        print(f"seed {seed}: eval {mean:.1f} ± {std:.1f}, training episodes reaching the "
              f"goal {rows[-1]['train_episodes_reaching_goal']}/{returns.size}, "
              f"{rows[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
    means = [r["eval_mean"] for r in rows]
    print(json.dumps({"case": a.case, **case, "seeds": rows, "mean_over_seeds":
                      statistics.fmean(means)}))


if __name__ == "__main__":
    main()
