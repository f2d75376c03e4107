"""Advantage estimation: generalised advantage estimation with correct truncation.

For step t with reward r_t, value v_t and ``next_value_t = V(final_obs_t)`` (the state the
step actually reached, before any auto-reset):

    delta_t = r_t + γ (1 - terminated_t) next_value_t - v_t
    A_t     = delta_t + γ λ (1 - done_t) A_{t+1},   done_t = terminated_t or truncated_t

so a time-limit truncation bootstraps from the value of where the agent was, a true
termination does not, and neither lets the trace leak into the next episode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: jax.Array | float,
    lam: jax.Array | float,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets, shape [T, ...], computed backwards over T."""
    not_terminated = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - jnp.logical_or(terminated, truncated).astype(jnp.float32)
    deltas = rewards + gamma * not_terminated * next_values - values

    def back(acc: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, nd = x
        acc = delta + gamma * lam * nd * acc
        return acc, acc

    _, adv = jax.lax.scan(
        back, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True, unroll=unroll
    )
    return adv, adv + values


def discounted_returns(
    rewards: jax.Array, terminated: jax.Array, truncated: jax.Array,
    next_values: jax.Array, gamma: jax.Array | float,
) -> jax.Array:
    """Monte-Carlo returns ``G_t = r_t + γ·tail_t``, shape [T, ...]: the tail is ``G_{t+1}``
    inside an episode, 0 after a termination, and ``V(final_obs_t)`` (``next_values``) after
    a truncation or at the rollout's last step, where the episode goes on unseen."""
    terminated = terminated.astype(bool)
    last = jnp.zeros(rewards.shape, bool).at[-1].set(True)
    bootstrap = (truncated.astype(bool) | last) & ~terminated

    def back(g_next: jax.Array, x: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array]:
        r, term, boot, nv = x
        g = r + gamma * jnp.where(term, 0.0, jnp.where(boot, nv, g_next))
        return g, g

    _, returns = jax.lax.scan(
        back, jnp.zeros_like(rewards[0]), (rewards, terminated, bootstrap, next_values),
        reverse=True,
    )
    return returns
