"""Epochs of shuffled minibatches over a flat batch, as one ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def flatten_time(batch: Any) -> Any:
    """[T, N, ...] -> [T * N, ...] for every leaf."""
    return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), batch)


def epochs_of_minibatches(
    key: jax.Array,
    carry: Any,
    batch: Any,
    num_epochs: int,
    num_minibatches: int,
    step: Callable[[Any, Any], tuple[Any, Any]],
    unroll: int = 1,
) -> tuple[Any, Any]:
    """Apply ``step(carry, minibatch)`` over ``num_epochs`` random splits of ``batch``.

    ``batch`` leaves share a leading size B divisible by ``num_minibatches``. Returns the
    final carry and the step outputs averaged over all minibatches.
    """
    size = jax.tree.leaves(batch)[0].shape[0]
    mb = size // num_minibatches

    def epoch(c: Any, k: jax.Array) -> tuple[Any, Any]:
        perm = jax.random.permutation(k, size)
        shuffled = jax.tree.map(
            lambda x: jnp.take(x, perm, axis=0).reshape((num_minibatches, mb, *x.shape[1:])),
            batch,
        )
        return jax.lax.scan(step, c, shuffled, unroll=unroll)

    carry, out = jax.lax.scan(epoch, carry, jax.random.split(key, num_epochs))
    return carry, jax.tree.map(jnp.mean, out)
