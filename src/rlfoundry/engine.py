"""The training engine: ``train(config, key)`` as one pure function, and its chunked twin.

``train`` is ``init`` followed by a ``lax.scan`` of ``update``: one compiled program that
``vmap`` maps over seeds, hyperparameters and populations. :class:`Trainer` runs the same
updates in compiled chunks of fixed length so the host can show progress, write logs and
save checkpoints between chunks without recompiling; updates past the end of training
inside the last chunk are skipped with ``lax.cond`` (and flagged invalid in the metrics).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.algos import ALGORITHMS, Algorithm
from rlfoundry.config import batch_axes
from rlfoundry.errors import ConfigError, suggest


def algorithm_for(config: Any) -> Algorithm:
    """The learner a config belongs to."""
    for algo in ALGORITHMS.values():
        if type(config) is algo.config_cls:
            return algo
    raise ConfigError(f"no algorithm uses config class {type(config).__name__}.")


def get_algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}.{suggest(name, ALGORITHMS)}")
    return ALGORITHMS[name]


def train(config: Any, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
    """Train from scratch: returns the final state and per-update metrics [num_updates]."""
    algo = algorithm_for(config)
    state = algo.init(config, key)
    return jax.lax.scan(lambda s, _: algo.update(config, s), state, None, algo.num_updates(config))


def run_chunk(
    config: Any, state: Any, start: jax.Array, length: int
) -> tuple[Any, dict[str, jax.Array]]:
    """``length`` updates from update ``start``; updates at or past the end are skipped."""
    algo = algorithm_for(config)
    total = algo.num_updates(config)

    def body(s: Any, i: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        active = start + i < total
        new, metrics = jax.lax.cond(
            active,
            lambda x: algo.update(config, x),
            lambda x: (x, jax.tree.map(jnp.zeros_like, _metric_shapes(config, x))),
            s,
        )
        return new, {**metrics, "valid": active}

    return jax.lax.scan(body, state, jnp.arange(length))


def _metric_shapes(config: Any, state: Any) -> dict[str, Any]:
    algo = algorithm_for(config)
    shapes = jax.eval_shape(lambda s: algo.update(config, s)[1], state)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


@dataclass
class ChunkReport:
    """What the host sees after each chunk."""

    updates_done: int
    total_updates: int
    steps_done: int
    total_steps: int
    metrics: dict[str, np.ndarray]  # [seeds, updates_in_chunk] per key, valid rows only
    elapsed: float


def _with_seed_axis(tree: Any) -> Any:
    return jax.tree.map(lambda x: jnp.expand_dims(x, 0), tree)


def _without_seed_axis(tree: Any) -> Any:
    return jax.tree.map(lambda x: x[0], tree)


def seed_keys(seeds: Sequence[int] | int) -> jax.Array:
    """One PRNG key per seed (``seeds`` is a count from 0 or an explicit list)."""
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    return jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, dtype=jnp.uint32))


@dataclass
class Trainer:
    """Host loop: runs ``config`` for several seeds at once (vmapped) in compiled chunks.

    ``batched`` names config leaves that carry one value per seed (e.g. a grid of learning
    rates), so a hyperparameter sweep is the same compiled program as a seed sweep.
    """

    config: Any
    seeds: Sequence[int] | int = 1
    chunk_updates: int = 50
    batched: tuple[str, ...] = ()
    callbacks: list[Callable[[ChunkReport], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config.validate()
        if self.chunk_updates <= 0:
            raise ConfigError(f"chunk_updates must be positive, got {self.chunk_updates}.")
        self.algo = algorithm_for(self.config)
        self.total_updates = self.algo.num_updates(self.config)
        self.steps_per_update = self.algo.steps_per_update(self.config)
        self.chunk_updates = min(self.chunk_updates, self.total_updates)
        self.keys = seed_keys(self.seeds)
        axes = batch_axes(self.config, self.batched)
        chunk = lambda c, s, start: run_chunk(c, s, start, self.chunk_updates)
        # No buffer donation: on CPU it made single-seed chunks ~60% slower (bench), and the
        # host keeps the last completed state for checkpoints on Ctrl-C.
        if self.num_seeds == 1 and not self.batched:
            # One seed runs the unbatched program and only adds the seed axis: a vmap over
            # a size-1 axis leaves batched matmuls that cost ~10% on CPU (PPO CartPole).
            self._init = jax.jit(lambda c, k: _with_seed_axis(self.algo.init(c, k[0])))
            self._chunk = jax.jit(
                lambda c, s, start: _with_seed_axis(chunk(c, _without_seed_axis(s), start))
            )
        else:
            self._init = jax.jit(jax.vmap(self.algo.init, in_axes=(axes, 0)))
            self._chunk = jax.jit(jax.vmap(chunk, in_axes=(axes, 0, None)))
        self.compile_seconds = 0.0

    @property
    def num_seeds(self) -> int:
        return int(self.keys.shape[0])

    def init(self) -> Any:
        return self._init(self.config, self.keys)

    def compile(self, state: Any) -> None:
        """Compile the chunk program ahead of time (so timing excludes compilation)."""
        t0 = time.perf_counter()
        self._chunk = self._chunk.lower(self.config, state, jnp.int32(0)).compile()
        self.compile_seconds += time.perf_counter() - t0

    def run(
        self, state: Any | None = None, until: int | None = None
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """Run from ``state`` (or a fresh init) to ``until`` updates (default: the end).

        Returns the final state and the metrics of every update run, [seeds, updates].
        """
        t0 = time.perf_counter()
        if state is None:
            state = self.init()
        if hasattr(self._chunk, "lower"):  # not compiled yet
            self.compile(state)
        done = int(np.asarray(jax.tree.leaves(state.update)[0]).reshape(-1)[0])
        until = self.total_updates if until is None else min(until, self.total_updates)
        history: list[dict[str, np.ndarray]] = []
        while done < until:
            state, metrics = self._chunk(self.config, state, jnp.int32(done))
            metrics = jax.device_get(metrics)
            valid = np.asarray(metrics.pop("valid"))[0]
            metrics = {k: np.asarray(v)[:, valid] for k, v in metrics.items()}
            done = min(done + self.chunk_updates, self.total_updates)
            history.append(metrics)
            report = ChunkReport(
                done, self.total_updates, done * self.steps_per_update,
                self.total_updates * self.steps_per_update, metrics, time.perf_counter() - t0,
            )
            for cb in self.callbacks:
                cb(report)
        merged = (
            {k: np.concatenate([h[k] for h in history], axis=1) for k in history[0]}
            if history else {}
        )
        return state, merged
