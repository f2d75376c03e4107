"""What curricula log about themselves: level complexity and held-out solve rate.

The held-out check plays the built-in held-out mazes inside the compiled update every
``heldout_every`` updates (a ``lax.cond``, so other updates pay nothing) and carries the
latest measurement in the state, so every update logs a number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.algos.base import Policy, stateless_policy


def agent_policy(config: Any, ppo_state: Any, deterministic: bool) -> Policy:
    """``(initial_carry(n), act(carry, obs, key) -> (carry, action))`` of a curriculum's
    agent, feed-forward or recurrent (whose carry is the LSTM's memory)."""
    from rlfoundry.algos import ppo, recurrent
    from rlfoundry.algos.base import make_env_stack

    if getattr(config, "recurrent", False):
        stack = make_env_stack(config, num_envs=1)
        return recurrent.policy(config, ppo_state.params, stack, deterministic)
    return stateless_policy(lambda obs, k: ppo.act(config, ppo_state, obs, k, deterministic))


def play_episodes(env: Any, params: Any, policy: Policy, key: jax.Array,
                  max_steps: int) -> tuple[jax.Array, jax.Array]:
    """One episode in each of ``env``'s N environments (batched ``params``), stopping when
    all have ended or after ``max_steps``; returns (episode return, ended) per env."""
    reset_key, key = jax.random.split(key)
    obs, env_state = env.reset(reset_key, params)
    n = jax.tree.leaves(obs)[0].shape[0]
    initial_carry, act = policy

    def body(c: tuple) -> tuple:
        env_state, obs, memory, key, done, ret, t = c
        key, act_key, step_key = jax.random.split(key, 3)
        memory, action = act(memory, obs, act_key)
        obs, env_state, _, _, _, info = env.step(step_key, env_state, action, params)
        ret = jnp.where(done, ret, info["episode_return"])
        return env_state, obs, memory, key, done | info["episode_done"], ret, t + 1

    init = (env_state, obs, initial_carry(n), key, jnp.zeros((n,), bool), jnp.zeros((n,)), 0)
    out = jax.lax.while_loop(lambda c: (c[-1] < max_steps) & ~jnp.all(c[4]), body, init)
    return out[5], out[4]


def level_complexity(space: Any, levels: Any) -> dict[str, jax.Array]:
    """Mean of the level space's complexity measures over a batch of levels."""
    return {f"level_{k}": jnp.mean(v) for k, v in jax.vmap(space.complexity)(levels).items()}


HeldoutCheck = Callable[[Any, jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def heldout_check(config: Any) -> HeldoutCheck | None:
    """``check(ppo_state, key, update, previous) -> (solve_rate, measured)``: the mean
    solve rate over the held-out mazes (``heldout_episodes`` stochastic episodes each)
    when ``update % heldout_every == 0``, else ``previous``. None when switched off."""
    if not getattr(config, "heldout_every", 0):
        return None
    from rlfoundry.envs import EpisodeStatistics, VectorEnv
    from rlfoundry.envs.maze import Maze
    from rlfoundry.envs.maze_heldout import heldout_levels, stack_params

    with jax.ensure_compile_time_eval():  # constants, even when called while tracing
        levels = jax.tree.map(np.asarray, stack_params(heldout_levels()))
    params = jax.tree.map(lambda x: np.repeat(x, config.heldout_episodes, axis=0), levels)
    n = int(params.level.agent_dir.shape[0])
    env = VectorEnv(EpisodeStatistics(Maze()), n, batched_params=True)
    cap = int(np.max(np.asarray(params.max_steps_in_episode))) + 1

    def check(ppo_state: Any, key: jax.Array, update: jax.Array,
              previous: jax.Array) -> tuple[jax.Array, jax.Array]:
        def measure() -> jax.Array:
            policy = agent_policy(config, ppo_state, False)
            returns, _ = play_episodes(env, params, policy, key, cap)
            return (returns > 0).mean().astype(jnp.float32)

        due = (update % config.heldout_every) == 0
        return jax.lax.cond(due, measure, lambda: previous.astype(jnp.float32)), due

    return check
