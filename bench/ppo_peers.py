"""The peer implementations for ``bench/ppo_throughput.py`` (rejax and Stable-Baselines3 PPO)
and ``bench/throughput.py`` (rejax DQN, SAC, TD3).

Run only with the peers' own interpreter (``.peers/venv/bin/python``; the benchmark sets it
up), never imported by rlfoundry: rejax 0.1.3 needs gymnax<1.0. Prints one JSON line.

    .peers/venv/bin/python bench/ppo_peers.py rejax --total-steps 500000 --repeats 3
    .peers/venv/bin/python bench/ppo_peers.py rejax --serve   # then "run" lines on stdin
    .peers/venv/bin/python bench/ppo_peers.py sb3 --total-steps 100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from importlib.metadata import version

# The shared settings; ppo_throughput.py passes rlfoundry's PPOConfig values with --hp.
DEFAULT_HP = {
    "num_envs": 4, "num_steps": 128, "update_epochs": 4, "num_minibatches": 4,
    "lr": 2.5e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01,
    "vf_coef": 0.5, "max_grad_norm": 0.5, "hidden_sizes": [64, 64], "activation": "tanh",
}
FINAL_FRACTION = 0.05  # "final return": episodes that ended in the last 5% of training


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def reply(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def run_rejax(hp: dict, total_steps: int, repeats: int, seed: int, serve: bool) -> dict:
    import rejax

    batch = hp["num_envs"] * hp["num_steps"]
    updates = total_steps // batch
    steps = updates * batch  # the same whole number of updates as rlfoundry runs
    sgd_steps_per_update = hp["update_epochs"] * hp["num_minibatches"]

    # rejax takes a constant learning rate, but hands it to optax.adam, which also takes a
    # schedule: anneal per update exactly as rlfoundry and CleanRL do (each of rejax's two
    # optimisers, actor and critic, steps once per minibatch).
    def lr_schedule(count):
        return hp["lr"] * (1.0 - (count // sgd_steps_per_update) / updates)

    algo = rejax.PPO.create(
        env="CartPole-v1",
        num_envs=hp["num_envs"],
        num_steps=hp["num_steps"],
        num_epochs=hp["update_epochs"],
        num_minibatches=hp["num_minibatches"],
        learning_rate=lr_schedule,
        max_grad_norm=hp["max_grad_norm"],
        total_timesteps=steps,
        eval_freq=steps,  # one block of `updates` iterations, one callback at the end
        skip_initial_evaluation=True,
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        clip_eps=hp["clip_eps"],
        ent_coef=hp["ent_coef"],
        vf_coef=hp["vf_coef"],
        normalize_observations=False,
        normalize_rewards=False,
        agent_kwargs={
            "activation": hp["activation"], "hidden_layer_sizes": tuple(hp["hidden_sizes"]),
        },
    )
    # Periodic evaluation off: the timed program only trains; the final policy is
    # evaluated afterwards, untimed, with rejax's own evaluate (as its callback would).
    algo = algo.replace(eval_callback=lambda algo, ts, rng: ())
    out = time_rejax("rejax", algo, repeats, seed, serve)
    assert out["steps"] == steps, (out["steps"], steps)
    return {**out, "updates": updates}


def time_rejax(impl: str, algo, repeats: int, seed: int, serve: bool) -> dict:
    """Compile ``algo.train`` ahead of time, warm up, then time ``repeats`` runs (or one
    per "run" line on stdin with ``serve``); evaluate the final policy untimed."""
    import jax
    from rejax.evaluate import evaluate

    key = jax.random.PRNGKey(seed)
    t0 = time.perf_counter()
    compiled = jax.jit(algo.train).lower(key).compile()
    compile_s = time.perf_counter() - t0
    log(f"{impl}: compiled in {compile_s:.1f}s")
    t0 = time.perf_counter()
    ts, _ = jax.block_until_ready(compiled(key))  # warm-up call, not one of the timed runs
    first_run_s = time.perf_counter() - t0
    runs, cpus = [], []

    def timed_run():
        nonlocal ts
        t0, c0 = time.perf_counter(), time.process_time()
        ts, _ = jax.block_until_ready(compiled(key))
        runs.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        log(f"{impl}: run {len(runs)} {runs[-1]:.2f}s (cpu {cpus[-1]:.2f}s)")
        return runs[-1], cpus[-1]

    if serve:  # the caller interleaves our runs with its own: "run" lines, then "done"
        reply({"ready": True, "compile_s": compile_s, "first_run_s": first_run_s})
        for line in sys.stdin:
            if line.strip() != "run":
                break
            run_s, cpu_s = timed_run()
            reply({"run_s": run_s, "cpu_s": cpu_s})
    else:
        for _ in range(repeats):
            timed_run()
    done = int(ts.global_step)
    _, returns = evaluate(
        algo.make_act(ts), jax.random.PRNGKey(seed + 1), algo.env, algo.env_params,
        128, int(algo.env_params.max_steps_in_episode),
    )
    return {
        "impl": impl,
        "version": version("rejax"),
        "gymnax_version": version("gymnax"),
        "jax_version": jax.__version__,
        "steps": done,
        "compile_s": compile_s,
        "first_run_s": first_run_s,
        "run_s": min(runs),
        "run_s_median": statistics.median(runs),
        "runs_s": runs,
        "cpu_s": min(cpus),
        "cpus_s": cpus,
        "final_return": float(returns.mean()),
    }


def run_rejax_offpolicy(impl: str, hp: dict, total_steps: int, repeats: int, seed: int,
                        serve: bool) -> dict:
    """rejax's DQN, SAC or TD3 with ``bench/throughput.py``'s matched settings: each rejax
    iteration steps ``num_envs`` envs once and then takes ``num_epochs`` gradient steps."""
    import rejax

    cls = {"rejax-dqn": rejax.DQN, "rejax-sac": rejax.SAC, "rejax-td3": rejax.TD3}[impl]
    kwargs = dict(
        env=hp["env"],
        num_envs=hp["num_envs"],
        num_epochs=hp["gradient_steps_per_iteration"],
        total_timesteps=total_steps,
        eval_freq=total_steps,
        skip_initial_evaluation=True,
        learning_rate=hp["lr"],
        gamma=hp["gamma"],
        buffer_size=hp["buffer_size"],
        fill_buffer=hp["learning_starts"],
        batch_size=hp["batch_size"],
        agent_kwargs={"activation": hp["activation"]},
    )
    if impl == "rejax-dqn":
        kwargs.update(target_update_freq=hp["target_update_env_steps"], polyak=0.0,
                      eps_end=hp["epsilon_end"], exploration_fraction=hp["exploration_fraction"],
                      max_grad_norm=hp["max_grad_norm"], ddqn=True)
        # rejax 0.1.3's DQN builds its Q-network at 64x64 and rejects other sizes
        assert tuple(hp["hidden_sizes"]) == (64, 64), hp["hidden_sizes"]
    elif impl == "rejax-sac":
        kwargs.update(polyak=1.0 - hp["tau"], hidden_layer_sizes=tuple(hp["hidden_sizes"]))
    else:  # rejax's TD3 nets are 64x64, as rlfoundry's default
        assert tuple(hp["hidden_sizes"]) == (64, 64), hp["hidden_sizes"]
        del kwargs["agent_kwargs"]
        kwargs.update(polyak=1.0 - hp["tau"], actor_kwargs={"activation": hp["activation"]},
                      critic_kwargs={"activation": hp["activation"]})
    algo = cls.create(**kwargs).replace(eval_callback=lambda algo, ts, rng: ())
    return time_rejax(impl, algo, repeats, seed, serve)


def run_sb3(hp: dict, total_steps: int, seed: int, threads: int) -> dict:
    import numpy as np
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv
    from torch import nn

    # One intra-op thread: a 64x64 MLP gains nothing from more, and with two threads on
    # two cores anything else running made torch spin and crawl (150 vs 3.8k steps/s).
    torch.set_num_threads(threads)
    activation = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
    n = hp["num_envs"]
    env = make_vec_env("CartPole-v1", n_envs=n, seed=seed, vec_env_cls=DummyVecEnv)
    t0 = time.perf_counter()
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=hp["num_steps"],
        batch_size=n * hp["num_steps"] // hp["num_minibatches"],
        n_epochs=hp["update_epochs"],
        learning_rate=lambda progress_remaining: hp["lr"] * progress_remaining,  # linear to 0
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        clip_range=hp["clip_eps"],
        ent_coef=hp["ent_coef"],
        vf_coef=hp["vf_coef"],
        max_grad_norm=hp["max_grad_norm"],
        policy_kwargs=dict(
            net_arch=dict(pi=list(hp["hidden_sizes"]), vf=list(hp["hidden_sizes"])),
            activation_fn=activation[hp["activation"]],
            ortho_init=True,
        ),
        device="cpu",
        seed=seed,
        verbose=0,
    )
    setup_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=total_steps)
    run_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    done = int(model.num_timesteps)

    # The envs step in lockstep, so an episode ended in the last 5% of training iff its
    # env's running step count had passed 95% of the per-env budget: the same episodes
    # as rlfoundry's "last 5% of updates" (make_vec_env wraps each env in a Monitor).
    per_env = done // n
    finals = []
    for monitor in env.envs:
        ends = np.cumsum(monitor.get_episode_lengths())
        rets = np.asarray(monitor.get_episode_rewards())
        finals.extend(rets[ends > (1.0 - FINAL_FRACTION) * per_env].tolist())
    return {
        "impl": "sb3",
        "version": version("stable-baselines3"),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "jax_version": version("jax"),
        "steps": done,
        "setup_s": setup_s,
        "run_s": run_s,
        "cpu_s": cpu_s,
        "final_return": float(np.mean(finals)) if finals else None,
        "final_episodes": len(finals),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("impl", choices=("rejax", "sb3", "rejax-dqn", "rejax-sac", "rejax-td3"))
    p.add_argument("--total-steps", type=int, default=500_000)
    p.add_argument("--repeats", type=int, default=3, help="timed runs (rejax)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (sb3)")
    p.add_argument("--hp", type=json.loads, default={}, help="JSON overriding DEFAULT_HP")
    p.add_argument("--serve", action="store_true", help="rejax: time a run per stdin line")
    a = p.parse_args()
    hp = {**DEFAULT_HP, **a.hp}
    if a.impl == "rejax":
        out = run_rejax(hp, a.total_steps, max(1, a.repeats), a.seed, a.serve)
    elif a.impl.startswith("rejax-"):
        out = run_rejax_offpolicy(a.impl, a.hp, a.total_steps, max(1, a.repeats), a.seed,
                                  a.serve)
    else:
        out = run_sb3(hp, a.total_steps, a.seed, a.threads)
    reply(out)


if __name__ == "__main__":
    main()
