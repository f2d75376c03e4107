"""A replay buffer that lives inside the compiled program: a pytree ring buffer.

The buffer is a pytree of arrays with a fixed leading capacity, plus a write pointer and a
size, so it is part of a learner's state: a whole off-policy training run stays one
``jit``-compiled function that ``vmap`` maps over seeds and hyperparameters, and a
checkpoint of the state includes the buffer. ``add`` writes a batch of B items at the
pointer (wrapping around, overwriting the oldest), ``sample`` draws uniformly among the
``size`` items written so far.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.algos.minibatch import flatten_time


class ReplayBuffer(struct.PyTreeNode):
    """``data`` leaves have shape [capacity, ...]; items ``[0, size)`` are valid."""

    data: Any
    pointer: jax.Array  # where the next item goes
    size: jax.Array  # how many items are valid (at most capacity)

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]

    @classmethod
    def create(cls, example: Any, capacity: int) -> ReplayBuffer:
        """An empty buffer for items shaped like ``example`` (one item, no batch axis)."""
        data = jax.tree.map(
            lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example
        )
        return cls(data, jnp.int32(0), jnp.int32(0))

    def add(self, batch: Any) -> ReplayBuffer:
        """Write B items (leaves [B, ...], B <= capacity) after the last one written."""
        count = jax.tree.leaves(batch)[0].shape[0]
        if count > self.capacity:
            raise ValueError(f"cannot add {count} items to a buffer of capacity {self.capacity}")
        index = (self.pointer + jnp.arange(count)) % self.capacity
        data = jax.tree.map(lambda buf, x: buf.at[index].set(x), self.data, batch)
        return ReplayBuffer(
            data,
            (self.pointer + count) % self.capacity,
            jnp.minimum(self.size + count, self.capacity),
        )

    def add_rollout(self, rollout: Any) -> ReplayBuffer:
        """Write a [T, N, ...] rollout, time-major (step t of every env before step t + 1)."""
        return self.add(flatten_time(rollout))

    def sample(self, key: jax.Array, batch_size: int) -> Any:
        """``batch_size`` items drawn uniformly, with replacement, from the valid ones."""
        index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(self.size, 1))
        return jax.tree.map(lambda buf: buf[index], self.data)
