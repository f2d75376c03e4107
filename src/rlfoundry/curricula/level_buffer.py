"""Prioritized Level Replay's level buffer (Jiang et al., 2021), as a pytree.

Holds up to ``capacity`` levels with a score and the update at which each was last seen.
Replay samples from ``(1 − ρ)·P_score + ρ·P_staleness`` where ``P_score`` is rank-based,
``∝ (1/rank)^(1/β)`` (or uniform over the top-k), and ``P_staleness ∝ now − last_seen``.
New levels enter if the buffer has room or they beat the lowest score; a level already in
the buffer (same content hash) is updated in place, never duplicated. Every operation is
pure and jittable, so the buffer lives inside the compiled training step and ``vmap``s over
seeds.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


def _bits(x: jax.Array) -> jax.Array:
    """A leaf's contents as uint32 words: floats by their bit pattern (so 0.25 and 0.75 differ;
    -0.0 is folded onto 0.0), integers and booleans by value."""
    x = jnp.ravel(jnp.asarray(x))
    if jnp.issubdtype(x.dtype, jnp.floating):
        return jax.lax.bitcast_convert_type(x.astype(jnp.float32) + 0.0, jnp.uint32)
    return x.astype(jnp.uint32)


def level_hash(level: Any) -> jax.Array:
    """Two 32-bit hashes of a level's contents (collisions ~2^-64), for duplicate checks."""
    leaves = [_bits(x) for x in jax.tree.leaves(level)]
    flat = jnp.concatenate(leaves) if leaves else jnp.zeros((1,), jnp.uint32)
    idx = jnp.arange(flat.shape[0], dtype=jnp.uint32)

    def mix(seed: int) -> jax.Array:
        h = flat * jnp.uint32(0x9E3779B1) + idx * jnp.uint32(seed) + jnp.uint32(seed >> 3)
        h = h ^ (h >> 15)
        h = h * jnp.uint32(0x85EBCA77)
        h = h ^ (h >> 13)
        return jax.lax.reduce(h, jnp.uint32(0), jax.lax.add, (0,)) ^ jnp.uint32(seed)

    return jnp.stack([mix(0x27D4EB2F), mix(0x165667B1)])


class LevelBuffer(struct.PyTreeNode):
    """The buffer's state; hyperparameters are numeric leaves (vmappable) or static."""

    levels: Any  # pytree, leading axis = capacity
    scores: jax.Array  # [capacity]
    last_seen: jax.Array  # [capacity] update index
    hashes: jax.Array  # [capacity, 2]
    filled: jax.Array  # [capacity] bool
    max_returns: jax.Array  # [capacity] best episode return seen on the level (MaxMC's R_max)
    now: jax.Array  # updates so far
    temperature: float = 0.3  # β of rank prioritisation
    staleness_coef: float = 0.3  # ρ
    top_k: int = struct.field(pytree_node=False, default=0)  # 0 = rank over all levels
    prioritization: str = struct.field(pytree_node=False, default="rank")

    @classmethod
    def create(
        cls, example_level: Any, capacity: int, *, temperature: float = 0.3,
        staleness_coef: float = 0.3, top_k: int = 0, prioritization: str = "rank",
    ) -> LevelBuffer:
        levels = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype),
                              example_level)
        return cls(
            levels=levels,
            scores=jnp.zeros((capacity,), jnp.float32),
            last_seen=jnp.zeros((capacity,), jnp.int32),
            hashes=jnp.zeros((capacity, 2), jnp.uint32),
            filled=jnp.zeros((capacity,), bool),
            max_returns=jnp.full((capacity,), -jnp.inf, jnp.float32),
            now=jnp.int32(0),
            temperature=temperature,
            staleness_coef=staleness_coef,
            top_k=top_k,
            prioritization=prioritization,
        )

    @property
    def capacity(self) -> int:
        return self.scores.shape[-1]

    @property
    def size(self) -> jax.Array:
        return self.filled.sum(-1)

    def fill_fraction(self) -> jax.Array:
        return self.size / self.capacity

    def score_weights(self) -> jax.Array:
        """P_score over filled slots: rank (∝ (1/rank)^(1/β)), top-k uniform, or 'value'
        (∝ score^(1/β)); empty slots get 0."""
        masked = jnp.where(self.filled, self.scores, -jnp.inf)
        order = jnp.argsort(-masked)
        ranks = jnp.empty_like(order).at[order].set(jnp.arange(1, self.capacity + 1))
        if self.prioritization == "value":
            positive = jnp.maximum(jnp.where(self.filled, self.scores, 0.0), 0.0)
            w = positive ** (1.0 / self.temperature)
        else:
            w = (1.0 / ranks.astype(jnp.float32)) ** (1.0 / self.temperature)
        if self.top_k:
            w = jnp.where(ranks <= self.top_k, 1.0, 0.0)
        w = jnp.where(self.filled, w, 0.0)
        return w / jnp.maximum(w.sum(), 1e-12)

    def staleness_weights(self) -> jax.Array:
        stale = jnp.where(self.filled, (self.now - self.last_seen).astype(jnp.float32), 0.0)
        total = stale.sum()
        uniform = self.filled / jnp.maximum(self.size, 1)
        return jnp.where(total > 0, stale / jnp.maximum(total, 1e-12), uniform)

    def replay_distribution(self) -> jax.Array:
        return (
            (1.0 - self.staleness_coef) * self.score_weights()
            + self.staleness_coef * self.staleness_weights()
        )

    def sample(self, key: jax.Array, n: int) -> tuple[jax.Array, Any]:
        """Indices and levels of ``n`` replayed levels (with replacement)."""
        idx = jax.random.choice(key, self.capacity, (n,), p=self.replay_distribution())
        return idx, jax.tree.map(lambda x: x[idx], self.levels)

    def update_replayed(self, idx: jax.Array, scores: jax.Array,
                        returns: jax.Array | None = None) -> LevelBuffer:
        """New scores for replayed levels; they become fresh (last seen now). ``returns``
        (best episode return of this visit) raise the levels' recorded best."""
        out = self.replace(
            scores=self.scores.at[idx].set(scores),
            last_seen=self.last_seen.at[idx].set(self.now),
        )
        if returns is not None:
            out = out.replace(max_returns=out.max_returns.at[idx].max(returns))
        return out

    def insert(self, levels: Any, scores: jax.Array,
               returns: jax.Array | None = None) -> LevelBuffer:
        """Offer a batch of new levels: duplicates update their entry; others fill an empty
        slot or replace the lowest-scoring level if they score higher. ``returns`` are the
        levels' best episode returns so far (kept as the best of old and new for duplicates)."""
        hashes = jax.vmap(level_hash)(levels)
        if returns is None:
            returns = jnp.full(scores.shape, -jnp.inf, jnp.float32)

        def one(buf: LevelBuffer, item: tuple[Any, ...]) -> tuple[Any, None]:
            level, score, h, best = item
            same = buf.filled & jnp.all(buf.hashes == h, axis=-1)
            is_dup = same.any()
            dup_idx = jnp.argmax(same)
            empty_idx = jnp.argmin(buf.filled)
            has_room = ~buf.filled.all()
            low_idx = jnp.argmin(jnp.where(buf.filled, buf.scores, jnp.inf))
            target = jnp.where(is_dup, dup_idx, jnp.where(has_room, empty_idx, low_idx))
            accept = is_dup | has_room | (score > buf.scores[low_idx])
            write = lambda arr, v: arr.at[target].set(jnp.where(accept, v, arr[target]))
            new = buf.replace(
                levels=jax.tree.map(write, buf.levels, level),
                scores=write(buf.scores, score),
                last_seen=write(buf.last_seen, buf.now),
                hashes=buf.hashes.at[target].set(jnp.where(accept, h, buf.hashes[target])),
                filled=write(buf.filled, True),
                max_returns=write(buf.max_returns, jnp.where(
                    is_dup, jnp.maximum(buf.max_returns[target], best), best)),
            )
            return new, None

        buf, _ = jax.lax.scan(one, self, (levels, scores.astype(jnp.float32), hashes,
                                          returns.astype(jnp.float32)))
        return buf

    def tick(self) -> LevelBuffer:
        """Advance the clock by one update (staleness grows)."""
        return self.replace(now=self.now + 1)

    def top(self, n: int) -> tuple[jax.Array, Any]:
        """The ``n`` highest-scoring levels (for rendering and logging)."""
        idx = jnp.argsort(-jnp.where(self.filled, self.scores, -jnp.inf))[:n]
        return idx, jax.tree.map(lambda x: x[idx], self.levels)

    def stats(self) -> dict[str, jax.Array]:
        """What to log per update: fill, score distribution (mean, std, max, quartiles; 0
        while empty) and staleness (mean, max) of the filled slots."""
        f = self.filled.astype(jnp.float32)
        n = jnp.maximum(f.sum(), 1.0)
        mean = (self.scores * f).sum() / n
        stale = ((self.now - self.last_seen) * f).sum() / n
        scores = jnp.where(self.filled, self.scores, jnp.nan)
        quartiles = jnp.nan_to_num(jnp.nanquantile(scores, jnp.array([0.25, 0.5, 0.75])))
        return {
            "buffer_fill": f.mean(),
            "buffer_score_mean": mean,
            "buffer_score_max": jnp.where(self.filled, self.scores, -jnp.inf).max(),
            "buffer_score_std": jnp.sqrt(((self.scores - mean) ** 2 * f).sum() / n),
            **{f"buffer_score_p{q}": v for q, v in zip((25, 50, 75), quartiles, strict=True)},
            "buffer_staleness_mean": stale,
            "buffer_staleness_max": jnp.where(self.filled, self.now - self.last_seen, 0).max(),
        }
