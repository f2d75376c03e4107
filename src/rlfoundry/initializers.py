"""Orthogonal weight initialisation without LAPACK.

Why not ``flax.linen.initializers.orthogonal``: it calls ``jnp.linalg.qr``, which on the
CPU is a LAPACK custom call. Batched (any ``vmap`` over seeds or an ES population), jaxlib
0.10.2 runs it through ``ParallelBatchMap`` on XLA's intra-op thread pool and blocks that
pool thread until the batch is done; when two such QR calls run at once (the actor's and
the critic's initialisations are independent) every pool thread can end up waiting for
work that no free thread is left to run: a deadlock with all threads idle. Gram-Schmidt
written in JAX ops is plain dot products, and for the matrices of an RL network (at most a
few hundred columns) it costs nothing next to training.

The result is the same distribution as flax's initialiser (the Q factor of a Gaussian
matrix with a positive diagonal R: Haar-distributed orthogonal columns), and to float32
rounding the same matrix for the same key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def gram_schmidt(a: jax.Array) -> jax.Array:
    """Orthonormal columns spanning ``a``'s, column by column ([m, k], m >= k): the Q of
    ``a = QR`` with ``diag(R) > 0``. Classical Gram-Schmidt applied twice per column
    ("twice is enough", Giraud et al. 2005) keeps the columns orthogonal to rounding error."""
    m, k = a.shape

    def column(j: int, q: jax.Array) -> jax.Array:
        v = a[:, j]
        for _ in range(2):  # columns of q not yet filled are zero, so they project nothing
            v = v - q @ (q.T @ v)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, k, column, jnp.zeros((m, k), a.dtype))


def orthogonal(scale: float = 1.0, column_axis: int = -1) -> Any:
    """A flax-compatible initialiser ``init(key, shape, dtype)``: an orthogonal matrix over
    the last axis (columns) and all others flattened (rows), times ``scale``."""

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        if len(shape) < 2:
            raise ValueError(f"orthogonal initialisation needs a matrix, got shape {shape}.")
        shape = tuple(shape)
        cols = shape[column_axis]
        rows = int(np.prod(shape)) // cols
        tall = (max(rows, cols), min(rows, cols))
        q = gram_schmidt(jax.random.normal(key, tall, jnp.float32))
        if rows < cols:
            q = q.T
        q = jnp.moveaxis(q.reshape(*np.delete(shape, column_axis), cols), -1, column_axis)
        return (scale * q).astype(dtype)

    return init
