"""Collecting experience: T steps from N vectorised environments in one ``lax.scan``.

Shared by every on-policy learner (and by evaluation). The policy is any function
``act(noise, obs) -> (action, log_prob)`` of pre-drawn noise (drawn for all T steps in
one vectorised call, which on a CPU is much cheaper than a PRNG split per step; the
environments' auto-resets are pre-drawn the same way, see :meth:`VectorEnv.draw_resets`). The
rollout stores what GAE needs, including the pre-reset ``final_obs`` of every step, so
truncated episodes can bootstrap from ``V(final_obs)`` while terminated ones do not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

ActFn = Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]


@struct.dataclass
class Transition:
    """One step of N environments; a rollout stacks these to shape [T, N, ...]."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    episode_done: jax.Array


@struct.dataclass
class EnvCarry:
    """What a rollout carries from one update to the next."""

    env_state: Any
    obs: jax.Array


def collect(
    env: Any,
    env_params: Any,
    carry: EnvCarry,
    key: jax.Array,
    num_steps: int,
    act: ActFn,
    noise: Any,
) -> tuple[EnvCarry, Transition]:
    """Run ``act`` in ``env`` for ``num_steps``; returns the new carry and [T, N] transitions.

    ``noise`` has a leading axis T: step t's policy sees ``noise[t]``.
    """
    num_envs = jax.tree.leaves(carry.obs)[0].shape[0]

    def step(c: EnvCarry, xs: tuple[Any, jax.Array, Any]) -> tuple[EnvCarry, Transition]:
        step_noise, env_key, reset = xs
        action, log_prob = act(step_noise, c.obs)
        obs, env_state, reward, terminated, truncated, info = env.step(
            env_key, c.env_state, action, env_params, reset=reset
        )
        t = Transition(
            obs=c.obs,
            action=action,
            log_prob=log_prob,
            reward=reward.astype(jnp.float32),
            terminated=terminated,
            truncated=truncated,
            final_obs=info["final_observation"],
            episode_return=info["episode_return"],
            episode_length=info["episode_length"],
            episode_done=info["episode_done"],
        )
        return EnvCarry(env_state, obs), t

    env_keys, resets = step_inputs(env, env_params, key, num_steps, num_envs)
    return jax.lax.scan(step, carry, (noise, env_keys, resets))


def step_inputs(
    env: Any, env_params: Any, key: jax.Array, num_steps: int, num_envs: int
) -> tuple[jax.Array, Any]:
    """What a T-step rollout feeds its environment, drawn before the loop: one key per step
    and environment [T, N], and the pre-drawn auto-resets (``None`` where the stack draws
    its own, see :meth:`VectorEnv.draw_resets`)."""
    step_key, reset_key = jax.random.split(key)
    env_keys = jax.random.split(step_key, (num_steps, num_envs))
    return env_keys, env.draw_resets(reset_key, env_params, num_steps)


def episode_metrics(t: Transition) -> dict[str, jax.Array]:
    """Mean return and length of the episodes that ended in a rollout, and their count."""
    done = t.episode_done.astype(jnp.float32)
    count = done.sum()
    safe = jnp.maximum(count, 1.0)
    return {
        "episode_return": (t.episode_return * done).sum() / safe,
        "episode_length": (t.episode_length * done).sum() / safe,
        "episodes": count,
    }
