"""Level scores: estimates of how much an agent can still learn on a level (its regret).

Both take [T, N] rollout quantities (one column per environment = per level) and a mask of
the steps that belong to the scored level's episodes; they return one score per level.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    mask = mask.astype(jnp.float32)
    return (x * mask).sum(0) / jnp.maximum(mask.sum(0), 1.0)


def positive_value_loss(advantages: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """PVL = mean_t max(GAE_t, 0): how much better things went than the critic expected."""
    mask = jnp.ones_like(advantages) if mask is None else mask
    return _masked_mean(jnp.maximum(advantages, 0.0), mask)


def max_mc(
    values: jax.Array, max_returns: jax.Array, mask: jax.Array | None = None
) -> jax.Array:
    """MaxMC = mean_t (R_max(level) − V(s_t)), R_max the best return ever seen on the level."""
    mask = jnp.ones_like(values) if mask is None else mask
    return _masked_mean(max_returns[None, :] - values, mask)
