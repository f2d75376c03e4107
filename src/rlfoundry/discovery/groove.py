"""GROOVE (Jackson et al., 2023): meta-learn a policy objective over a curriculum of levels.

Learned optimisers generalise as far as the tasks they were meta-trained on; GROOVE picks
those tasks with Prioritized Level Replay scored by *algorithmic regret*: how much worse
the learned objective does on a level than a hand-designed learner (the antagonist). One
generation (REFERENCES §5):
  1. ask the ES for θ_1..θ_P (as in :class:`ObjectiveSearch`);
  2. select L levels: with probability ``replay_prob`` (once the buffer holds L levels)
     replay them from the PLR buffer, else draw new ones from the level space;
  3. train an agent with objective(θ_i) on every level, vmapped over members × levels
     (the same inner seeds for every member: common random numbers);
  4. train the antagonist (A2C, or PPO with the clip objective) on every level;
  5. fitness_i = mean over levels of (return_i − antagonist return), i.e. minus the
     member's regret; tell the ES;
  6. score the levels and curate the buffer: replayed levels get their new score, new
     levels enter if they beat the lowest score.
Scores (``curriculum``): ``groove`` = regret = antagonist return − the population's mean
return; ``pvl`` / ``maxmc`` = the positive value loss / MaxMC of the population's trained
agents on a final rollout (the usual PLR scores, baselines); ``uniform`` = always new
levels (domain randomisation, the other baseline). Every step is its own small compiled
program; the host only passes arrays between them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.algos.a2c import A2CConfig
from rlfoundry.algos.base import make_env_stack
from rlfoundry.algos.ppo import networks, rollout_batch
from rlfoundry.algos.rollout import EnvCarry
from rlfoundry.config import batch_axes
from rlfoundry.curricula.level_buffer import LevelBuffer
from rlfoundry.curricula.levels import level_space
from rlfoundry.curricula.scores import max_mc, positive_value_loss
from rlfoundry.discovery.objective_search import (
    DiscoveryConfig,
    ObjectiveSearch,
    final_return,
    generation_stats,
    shard_population,
    strong_types,
)
from rlfoundry.engine import algorithm_for
from rlfoundry.envs import make


class GrooveState(struct.PyTreeNode):
    """The meta-state of a GROOVE run (checkpointed whole): the ES and the level buffer."""

    es_state: Any
    key: jax.Array
    generation: jax.Array
    ppo_returns: jax.Array  # unused by GROOVE (ones), kept for the run folder's summary
    buffer: LevelBuffer


def train_on_level(config: Any, level: Any, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
    """``engine.train`` with every environment playing ``level`` (the env's params)."""
    algo = algorithm_for(config)
    init_key, reset_key = jax.random.split(key)
    state = algo.init(config, init_key)
    obs, env_state = make_env_stack(config).env.reset(reset_key, level)
    state = state.replace(env=EnvCarry(env_state, obs), env_params=level)
    return jax.lax.scan(lambda s, _: algo.update(config, s), state, None,
                        algo.num_updates(config))


def antagonist_config(config: DiscoveryConfig) -> Any:
    """The hand-designed learner regret is measured against, with the inner run's budget."""
    inner = config.inner_configs()[0]
    if config.antagonist == "ppo":
        return inner  # PPOConfig with the default PPO-clip objective
    return A2CConfig(env=inner.env, total_steps=inner.total_steps, num_envs=inner.num_envs,
                     hidden_sizes=inner.hidden_sizes, activation=inner.activation,
                     gamma=inner.gamma)


class GrooveSearch(ObjectiveSearch):
    """ES over a learned objective, on levels chosen by a PLR buffer (see module doc)."""

    def __init__(self, config: DiscoveryConfig, backend: Any = None):
        config.validate()
        self.space = level_space(config.envs[0])
        self.example_level = make(config.envs[0])[1]
        self.antagonist = antagonist_config(config)
        super().__init__(config, backend)

    def programs(self) -> dict[str, Any]:
        return {"ask": self.ask, "select": self.select, "evaluate": self.evaluate,
                "antagonist": self.antagonist_returns, "fitness": self.fitness,
                "tell": self.tell, "curate": self.curate}

    # -- the compiled parts -------------------------------------------------------------
    def ask(self, meta: GrooveState) -> tuple[jax.Array, Any, dict[str, jax.Array]]:
        key, ask_key, select_key, inner_key, ant_key, tell_key = jax.random.split(meta.key, 6)
        thetas, es_state = self.strategy.ask(ask_key, meta.es_state, self.strategy.default_params)
        return thetas, es_state, {"next": key, "select": select_key, "inner": inner_key,
                                  "antagonist": ant_key, "tell": tell_key}

    def select(self, buffer: LevelBuffer, key: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        """Step 2: this generation's levels, their buffer slots and whether they replay."""
        n = self.config.levels
        mode_key, new_key, replay_key = jax.random.split(key, 3)
        new = jax.vmap(self.space.generate, in_axes=(0, None))(
            jax.random.split(new_key, n), self.example_level)
        if self.config.curriculum == "uniform":
            return new, jnp.zeros((n,), jnp.int32), jnp.bool_(False)
        idx, replayed = buffer.sample(replay_key, n)
        ready = buffer.size >= n
        replay = ready & (jax.random.uniform(mode_key) < self.config.replay_prob)
        levels = jax.tree.map(lambda a, b: jnp.where(replay, b, a), new, replayed)
        return levels, idx.astype(jnp.int32), replay

    def level_score(self, config: Any, state: Any, metrics: dict[str, jax.Array],
                    key: jax.Array) -> jax.Array:
        """PVL or MaxMC of a trained agent on one fresh rollout of its level. MaxMC's best
        return is the best per-update mean episode return seen while training."""
        if self.config.curriculum not in ("pvl", "maxmc"):
            return jnp.float32(0.0)
        stack = make_env_stack(config)
        actor, critic = networks(config, stack)
        k1, k2 = jax.random.split(key)
        _, _, batch = rollout_batch(config, stack, actor, critic, state, k1, k2)
        if self.config.curriculum == "pvl":
            return positive_value_loss(batch.advantage[:, None])[0]
        seen = jnp.where(metrics["episodes"] > 0, metrics["episode_return"], -jnp.inf).max()
        best = jnp.where(jnp.isfinite(seen), seen, 0.0)
        return max_mc(batch.value[:, None], best[None])[0]

    def evaluate_level(self, thetas: jax.Array, level: Any, key: jax.Array
                       ) -> tuple[jax.Array, jax.Array]:
        """Train with objective(θ_i) on one level, vmapped over the population: the [P]
        final returns and level scores (common random numbers: one key for all)."""
        cfg = self.inner[0].replace(objective=self.objective(thetas))

        def member(c: Any) -> tuple[jax.Array, jax.Array]:
            state, metrics = train_on_level(c, level, key)
            score = self.level_score(c, state, metrics, jax.random.fold_in(key, 1))
            return final_return(metrics, self.config.final_fraction), score

        return jax.vmap(member, in_axes=(batch_axes(cfg, ("objective.theta",)),))(cfg)

    def evaluate(self, thetas: jax.Array, levels: Any, key: jax.Array) -> dict[str, jax.Array]:
        """Step 3: [P, L] returns and scores, every (member, level) pair in one program
        (each level with its own inner seed, shared by all members)."""
        keys = jax.random.split(key, self.config.levels)
        returns, scores = jax.vmap(self.evaluate_level, in_axes=(None, 0, 0))(
            shard_population(thetas), levels, keys)
        return {"returns": returns.T, "scores": scores.T}

    def antagonist_returns(self, levels: Any, key: jax.Array) -> jax.Array:
        """Step 4: the antagonist's final return on every level, [L]."""
        keys = jax.random.split(key, self.config.levels)
        _, metrics = jax.vmap(train_on_level, in_axes=(None, 0, 0))(self.antagonist, levels,
                                                                    keys)
        return final_return(metrics, self.config.final_fraction)

    def fitness(self, returns: jax.Array, antagonist: jax.Array) -> jax.Array:
        """Step 5: minus each member's mean regret over the levels, [P]."""
        return (returns - antagonist[None, :]).mean(1)

    def curate(self, buffer: LevelBuffer, levels: Any, idx: jax.Array, replay: jax.Array,
               out: dict[str, jax.Array], antagonist: jax.Array
               ) -> tuple[LevelBuffer, dict[str, jax.Array]]:
        """Step 6: score the levels and update the buffer; returns it and level statistics."""
        regret = antagonist - out["returns"].mean(0)
        scores = regret if self.config.curriculum == "groove" else out["scores"].mean(0)
        if self.config.curriculum != "uniform":
            buffer = jax.lax.cond(replay, lambda b: b.update_replayed(idx, scores),
                                  lambda b: b.insert(levels, scores), buffer)
        buffer = buffer.tick()
        complexity = jax.vmap(self.space.complexity)(levels)
        stats = {
            "antagonist_return": antagonist.mean(),
            "regret_mean": regret.mean(),
            "level_score_mean": scores.mean(),
            "replayed": replay.astype(jnp.float32),
            **{f"level_{k}": v.mean() for k, v in complexity.items()},
        }
        if self.config.curriculum != "uniform":  # (uniform keeps no buffer)
            stats.update(buffer.stats())
        return buffer, stats

    # -- host side ----------------------------------------------------------------------
    def init(self, key: jax.Array) -> GrooveState:
        es_key, buffer_key, key = jax.random.split(key, 3)
        es_state = self.strategy.init(es_key, self.theta0, self.strategy.default_params)
        capacity = 1 if self.config.curriculum == "uniform" else self.config.buffer_size
        buffer = LevelBuffer.create(self.space.generate(buffer_key, self.example_level),
                                    capacity)
        return strong_types(GrooveState(es_state, key, jnp.int32(0), jnp.ones((1,)), buffer))

    def step(self, meta: GrooveState) -> tuple[GrooveState, dict[str, float]]:
        import time

        t0 = time.perf_counter()
        compiled0 = self.compiled_seconds
        thetas, es_state, keys = self.timed(self._ask, meta)
        levels, idx, replay = self.timed(self._select, meta.buffer, keys["select"])
        out = self.backend.evaluate(self, thetas, levels, keys["inner"])
        antagonist = self.timed(self._antagonist, levels, keys["antagonist"])
        fitness = self.timed(self._fitness, out["returns"], antagonist)
        es_state, theta_norm = self.timed(self._tell, meta, es_state, thetas, fitness,
                                          keys["tell"])
        buffer, level_stats = self.timed(self._curate, meta.buffer, levels, idx, replay, out,
                                         antagonist)
        meta = GrooveState(es_state, keys["next"], meta.generation + 1, meta.ppo_returns,
                           buffer)
        stats = generation_stats(fitness, out["returns"], theta_norm, **level_stats)
        self.host_seconds += (time.perf_counter() - t0) - (self.compiled_seconds - compiled0)
        return meta, stats


def heldout_returns(config: Any, levels: Any, keys: jax.Array,
                    fraction: float = 0.25) -> jax.Array:
    """Final return of ``config`` (any learner and objective) trained from scratch on each
    of ``levels`` with each key: [seeds, levels], all runs in one compiled program. The
    held-out evaluation of a learned objective: ``config = inner.replace(objective=learned)``."""
    run = _RUN_PROGRAMS.setdefault(fraction, jax.jit(jax.vmap(jax.vmap(
        lambda c, level, k: final_return(train_on_level(c, level, k)[1], fraction),
        in_axes=(None, 0, None)), in_axes=(None, None, 0))))
    return run(config, levels, keys)


_RUN_PROGRAMS: dict[float, Any] = {}
