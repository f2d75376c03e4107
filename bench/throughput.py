"""Learner throughput against rejax, in one run: PPO, DQN, SAC and TD3 with matched settings.

Why: a learner suite is only worth using if generality (pluggable objectives, truncation
bootstrapping, metrics, chunked host loop) does not cost speed. rejax is a lean JAX
library with all four learners; both sides run the same jax/jaxlib on the same machine.

Settings (one seed each; rejax in ``.peers/venv`` via ``bench/ppo_peers.py``):
- PPO CartPole-v1: rlfoundry's PPOConfig defaults (4 envs x 128 steps, 4 x 4 minibatches,
  64x64 tanh), 500k steps (exactly as ``bench/ppo_throughput.py``, which also runs SB3).
- DQN CartPole-v1: 4 envs, 0.5 gradient steps per env step (rejax: 2 gradient steps per
  iteration of 4 env steps), batch 64, buffer 100k, 1000 uniform warm-up steps, double Q,
  64x64 ReLU (rejax 0.1.3's DQN fixes its Q-network at 64x64), hard target copy every 512
  env steps, 100k steps.
- SAC / TD3 Pendulum-v1: 4 envs, 1 gradient step per env step, batch 128, buffer 100k,
  1000 warm-up steps, 64x64 ReLU, tau 0.02, 20k steps.
rlfoundry is timed twice per off-policy learner: *matched* (num_steps 1: one env step then
the gradient steps, rejax's loop shape) and *chunked* (num_steps 16 with 16x the
gradient steps: the same ratio of data to updates, rlfoundry's default shape).
Timed runs alternate between the implementations so machine load hits both alike;
``run s`` is the best of ``--repeats``. ratio = rejax run s / rlfoundry run s (> 1: we
are faster). Compile time is reported separately. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os

from ppo_throughput import (
    RejaxPeer,
    RlfoundryBench,
    ensure_peers,
    run_xla_single_threaded,
    shared_hyperparameters,
)


def offpolicy_cases() -> dict[str, tuple[str, dict, dict, int]]:
    """name -> (rejax impl, rlfoundry config overrides, rejax hp, total steps)."""
    dqn = dict(env="CartPole-v1", num_envs=4, batch_size=64, buffer_size=100_000,
               learning_starts=1000, hidden_sizes=[64, 64], activation="relu", lr=7e-4,
               gamma=0.99, max_grad_norm=10.0, epsilon_end=0.04, exploration_fraction=0.16)
    cont = dict(env="Pendulum-v1", num_envs=4, batch_size=128, buffer_size=100_000,
                learning_starts=1000, hidden_sizes=[64, 64], activation="relu", lr=1e-3,
                gamma=0.99, tau=0.02)
    return {
        "dqn": ("rejax-dqn", dqn, {**dqn, "gradient_steps_per_iteration": 2,
                                   "target_update_env_steps": 512}, 100_000),
        "sac": ("rejax-sac", cont, {**cont, "gradient_steps_per_iteration": 4}, 20_000),
        "td3": ("rejax-td3", cont, {**cont, "gradient_steps_per_iteration": 4}, 20_000),
    }


def rlfoundry_config(name: str, common: dict, total_steps: int, env_steps: int):
    """The rlfoundry config for ``name`` stepping each env ``env_steps`` times per update."""
    from rlfoundry.algos.dqn import DQNConfig
    from rlfoundry.algos.sac import SACConfig
    from rlfoundry.algos.td3 import TD3Config

    per_env_step = 0.5 if name == "dqn" else 1.0
    grad = int(per_env_step * common["num_envs"] * env_steps)
    shared = dict(env=common["env"], total_steps=total_steps, num_envs=common["num_envs"],
                  num_steps=env_steps, gradient_steps=grad, batch_size=common["batch_size"],
                  buffer_size=common["buffer_size"], learning_starts=common["learning_starts"],
                  hidden_sizes=tuple(common["hidden_sizes"]), activation=common["activation"],
                  lr=common["lr"], gamma=common["gamma"])
    if name == "dqn":
        return DQNConfig(**shared, target_update_every=int(512 * per_env_step), tau=1.0,
                         anneal_lr=False, epsilon_end=common["epsilon_end"],
                         exploration_fraction=common["exploration_fraction"],
                         max_grad_norm=common["max_grad_norm"])
    cls = SACConfig if name == "sac" else TD3Config
    if name == "td3":  # TD3's policy delay needs an even number of gradient steps
        shared["gradient_steps"] = max(2, grad)
    return cls(**shared, tau=common["tau"])


def measure(name: str, ours: list[tuple[str, object]], rejax: RejaxPeer,
            repeats: int) -> list[dict]:
    for _ in range(repeats):  # alternate: ours, rejax, ours, rejax ...
        for _, bench in ours:
            bench.run()
        rejax.run()
    peer = rejax.finish()
    rows = [{"learner": name, "impl": "rejax", **peer}]
    for label, bench in ours:
        r = bench.result()
        rows.append({"learner": name, **r, "impl": f"rlfoundry ({label})",
                     "ratio": peer["run_s"] / r["run_s"],
                     "cpu_ratio": peer["cpu_s"] / r["cpu_s"] if r["cpu_s"] else None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", default="ppo,dqn,sac,td3")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--xla-threads", action="store_true",
                        help="keep XLA's default threads (multi-threaded kernels, one thread "
                        "per core per program); default: one thread for every JAX implementation")
    args = parser.parse_args()
    if not args.xla_threads:
        run_xla_single_threaded()
    ensure_peers()
    import rlfoundry as rf

    rows: list[dict] = []
    for name in args.learners.split(","):
        if name == "ppo":
            cfg = rf.PPOConfig(env="CartPole-v1", total_steps=500_000)
            hp = shared_hyperparameters(cfg)
            ours = [("defaults", RlfoundryBench(cfg, 1))]
            updates = cfg.total_steps // (cfg.num_envs * cfg.num_steps)
            rejax = RejaxPeer(hp, updates * cfg.num_envs * cfg.num_steps, 0)
        else:
            impl, common, peer_hp, steps = offpolicy_cases()[name]
            ours = [("matched", RlfoundryBench(rlfoundry_config(name, common, steps, 1), 1)),
                    ("chunked", RlfoundryBench(rlfoundry_config(name, common, steps, 16), 1))]
            rejax = RejaxPeer(peer_hp, steps, 0, impl)
        rows += measure(name, ours, rejax, args.repeats)

    print(f"{'learner':8} {'implementation':22} {'steps':>9} {'compile s':>9} {'run s':>7} "
          f"{'steps/s':>9} {'ratio':>6} {'cpu ratio':>9} {'final return':>12}")
    for r in rows:
        sps = r["steps"] / r["run_s"]
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
        cpu_ratio = f"{r['cpu_ratio']:.2f}" if r.get("cpu_ratio") else ""
        ret = r.get("final_return")
        print(f"{r['learner']:8} {r['impl']:22} {r['steps']:>9,} {r['compile_s']:>9.1f} "
              f"{r['run_s']:>7.2f} {sps:>9,.0f} {ratio:>6} {cpu_ratio:>9} "
              f"{'' if ret is None else f'{ret:.1f}':>12}")
    print("ratio = rejax run s / rlfoundry run s (cpu ratio: the same with process CPU "
          "seconds, steadier on a loaded machine); final return: rlfoundry's is the last 5% of "
          "training episodes, rejax's its own 128-episode evaluation (not comparable 1:1)")
    print(json.dumps({"load_average_1m": os.getloadavg()[0], "rows": rows}))


if __name__ == "__main__":
    main()
