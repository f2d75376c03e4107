"""Meta-training a learned policy objective (LPO / TA-LPO) with evolution strategies.

One generation, as three compiled programs the host calls in turn:
  1. ask the ES (evosax; OpenES with antithetic pairs and centred-rank fitness by default)
     for a population of drift-network weights θ_1..θ_P;
  2. evaluate: for every task, run P *complete* inner PPO trainings with objective(θ_i),
     vmapped over the population (sharded over devices when there are several, or split
     into Ray tasks by the ``ray`` backend, :mod:`rlfoundry.discovery.backends`);
  3. tell: fitness_i = mean over tasks of the final return, optionally divided by PPO's
     final return on that task (measured once, at initialisation); evosax minimises, so it
     is told −fitness.
Keeping ask/tell apart from the big vmapped training keeps each program small (jaxlib
0.10.2's CPU runtime deadlocks more often in one huge program) and lets the evaluation run
elsewhere. The host only checkpoints, logs and reports between generations.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import evosax.algorithms
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from rlfoundry.algos.ppo import PPOConfig
from rlfoundry.config import batch_axes, from_dict
from rlfoundry.engine import train
from rlfoundry.errors import ConfigError, suggest
from rlfoundry.objectives import LPO, TALPO
from rlfoundry.objectives.learned import drift_net_size, init_drift_net

LEARNED = {"lpo": LPO, "ta_lpo": TALPO}

# Inner-loop PPO settings per task: small budgets so a generation fits a CPU.
INNER_DEFAULTS: dict[str, dict[str, Any]] = {
    "CartPole-v1": {"total_steps": 65_536, "num_envs": 8, "num_steps": 64},
    "Gridworld-random-v0": {"total_steps": 16_384, "num_envs": 8, "num_steps": 32,
                            "num_minibatches": 4, "hidden_sizes": (32, 32), "lr": 1e-3},
}
CURRICULA = ("none", "groove", "uniform", "pvl", "maxmc")
ANTAGONISTS = ("a2c", "ppo")
BACKENDS = ("vmap", "ray")


@dataclasses.dataclass(frozen=True)
class DiscoveryConfig:
    """Host-level settings of a discovery run (saved as JSON in the run folder)."""

    objective: str = "lpo"
    envs: tuple[str, ...] = ("CartPole-v1",)
    generations: int = 50
    population: int = 16
    strategy: str = "Open_ES"
    sigma: float = 0.03
    lr: float = 0.03
    decay: float = 0.99
    hidden: int = 32
    ppo_init: bool = False
    normalize_by_ppo: bool = True
    final_fraction: float = 0.1
    inner: tuple[tuple[str, Any], ...] = ()  # PPO overrides shared by all tasks
    # GROOVE (rlfoundry.discovery.groove): levels chosen per generation by a curriculum
    curriculum: str = "none"  # none | groove (regret PLR) | uniform | pvl | maxmc
    levels: int = 4  # levels per generation
    buffer_size: int = 256
    replay_prob: float = 0.5
    antagonist: str = "a2c"  # the hand-designed learner that regret compares with
    # where the population's inner trainings run
    backend: str = "vmap"  # vmap | ray
    ray_address: str = ""  # empty: a local Ray started by the run
    shards: int = 2  # Ray tasks per generation

    def validate(self) -> None:
        if self.objective not in LEARNED:
            raise ConfigError(
                f"unknown learned objective {self.objective!r}.{suggest(self.objective, LEARNED)}"
            )
        if self.strategy not in evosax.algorithms.algorithms:
            raise ConfigError(
                f"unknown ES strategy {self.strategy!r}."
                f"{suggest(self.strategy, evosax.algorithms.algorithms)}"
            )
        for name in ("generations", "population", "hidden"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}.")
        if self.population % 2:
            raise ConfigError(
                f"population must be even (antithetic pairs), got {self.population}."
            )
        if not self.envs:
            raise ConfigError("envs is empty; name at least one task.")
        for name, value, options in (("curriculum", self.curriculum, CURRICULA),
                                     ("antagonist", self.antagonist, ANTAGONISTS),
                                     ("backend", self.backend, BACKENDS)):
            if value not in options:
                raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}.")
        for name in ("levels", "buffer_size", "shards"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}.")
        if not 0.0 < self.final_fraction <= 1.0:
            raise ConfigError(f"final_fraction must be in (0, 1], got {self.final_fraction}.")
        if not 0.0 <= self.replay_prob <= 1.0:
            raise ConfigError(f"replay_prob must be in [0, 1], got {self.replay_prob}.")
        if self.curriculum != "none":
            from rlfoundry.curricula.levels import level_space

            if len(self.envs) != 1:
                raise ConfigError("a level curriculum trains on one environment's levels; "
                                  "pass one --env (e.g. Gridworld-random-v0).")
            level_space(self.envs[0])
        for cfg in self.inner_configs():
            cfg.validate()

    def inner_configs(self) -> list[PPOConfig]:
        """The inner PPO config of every task (objective weights still unset)."""
        out = []
        for env in self.envs:
            settings = {**INNER_DEFAULTS.get(env, {}), **dict(self.inner), "env": env}
            out.append(from_dict(PPOConfig, settings))
        return out

    def num_params(self) -> int:
        return drift_net_size(LEARNED[self.objective].num_inputs, self.hidden)


def generation_stats(fitness: jax.Array, returns: jax.Array, theta_norm: jax.Array,
                     **extra: jax.Array) -> dict[str, float]:
    """One generation's log row on the host: fitness spread over the population, returns
    ([population, tasks]: mean, and each task's best member averaged), the mean's norm."""
    stats = {
        "fitness_mean": fitness.mean(),
        "fitness_max": fitness.max(),
        "fitness_min": fitness.min(),
        "return_mean": returns.mean(),
        "return_max": returns.max(axis=0).mean(),
        "theta_norm": theta_norm,
        **extra,
    }
    return {k: float(v) for k, v in jax.device_get(stats).items()}


def make_strategy(config: DiscoveryConfig, solution: jax.Array) -> Any:
    """The evosax strategy: OpenES (antithetic pairs, centred-rank fitness shaping, Adam on
    the mean, σ and learning rate decayed per generation) or any other evosax strategy by
    name with its defaults. evosax minimises, so callers pass −fitness."""
    if config.strategy == "Open_ES":
        return evosax.algorithms.Open_ES(
            population_size=config.population,
            solution=solution,
            use_antithetic_sampling=True,
            optimizer=optax.adam(optax.exponential_decay(config.lr, 1, config.decay)),
            std_schedule=optax.exponential_decay(config.sigma, 1, config.decay),
        )
    return evosax.algorithms.algorithms[config.strategy](
        population_size=config.population, solution=solution
    )


class MetaState(struct.PyTreeNode):
    """Everything a discovery run carries between generations (checkpointed whole)."""

    es_state: Any
    key: jax.Array
    generation: jax.Array
    ppo_returns: jax.Array  # [tasks]: PPO's final return, the fitness normaliser


def final_return(metrics: dict[str, jax.Array], fraction: float) -> jax.Array:
    """Episode-weighted mean return over the last ``fraction`` of updates ([..., updates])."""
    r, n = metrics["episode_return"], metrics["episodes"]
    last = max(int(r.shape[-1] * fraction), 1)
    return (r[..., -last:] * n[..., -last:]).sum(-1) / jnp.maximum(n[..., -last:].sum(-1), 1.0)


_PROGRAMS: dict[tuple[type, DiscoveryConfig], dict[str, Any]] = {}


def program_key(config: DiscoveryConfig) -> DiscoveryConfig:
    """The settings the compiled programs depend on: not the number of generations, nor
    where the evaluation runs (so a resumed or longer run, or a Ray worker, reuses them)."""
    return dataclasses.replace(config, generations=1, backend="vmap", ray_address="", shards=1)


class ObjectiveSearch:
    """ES over a learned objective's weights; ``step`` runs one generation."""

    def __init__(self, config: DiscoveryConfig, backend: Any = None):
        config.validate()
        self.config = config
        cls = LEARNED[config.objective]
        self.objective_cls = cls
        self.inner = config.inner_configs()
        theta0 = jnp.asarray(init_drift_net(cls.num_inputs, config.hidden))
        self.strategy = make_strategy(config, theta0)
        self.theta0 = theta0
        # One set of compiled programs per search setting, shared by every instance.
        programs = _PROGRAMS.setdefault((type(self), program_key(config)), {})
        for name, fn in self.programs().items():
            setattr(self, f"_{name}", programs.setdefault(name, jax.jit(fn)))
        if backend is None:
            from rlfoundry.discovery.backends import make_backend

            backend = make_backend(config)
        self.backend = backend
        self.host_seconds = 0.0
        self.compiled_seconds = 0.0

    def programs(self) -> dict[str, Any]:
        """The functions compiled once per setting (``self._<name>`` after init)."""
        return {"ask": self.ask, "evaluate": self.evaluate, "fitness": self.fitness,
                "tell": self.tell, "baseline": self.ppo_baseline}

    # -- the compiled parts -------------------------------------------------------------
    def objective(self, theta: jax.Array) -> Any:
        return self.objective_cls(
            hidden=self.config.hidden, ppo_init=self.config.ppo_init, theta=theta
        )

    def task_returns(self, thetas: jax.Array, key: jax.Array) -> jax.Array:
        """Final return of a complete inner training per (task, member): [tasks, P]."""
        out = []
        for cfg in self.inner:
            cfg = cfg.replace(objective=self.objective(thetas))
            axes = batch_axes(cfg, ("objective.theta",))
            keys = jnp.broadcast_to(key, (thetas.shape[0], *key.shape))
            _, metrics = jax.vmap(train, in_axes=(axes, 0))(cfg, keys)
            out.append(final_return(metrics, self.config.final_fraction))
        return jnp.stack(out)

    def evaluate(self, thetas: jax.Array, key: jax.Array) -> jax.Array:
        """Step 2, the expensive program: [P, tasks] final returns. Every member trains
        with the same inner seed (common random numbers), so fitness differences come
        from the objectives, not from luck. Pure per member, so any split of the
        population (Ray shards) gives the same numbers."""
        return self.task_returns(shard_population(thetas), key).T

    def evaluate_population(self, thetas: jax.Array, *args: Any) -> Any:
        """Step 2 on the host: the compiled evaluation (what a backend runs per shard)."""
        return self.timed(self._evaluate, thetas, *args)

    def ppo_baseline(self, key: jax.Array, seeds: int = 4) -> jax.Array:
        """PPO's final return per task, averaged over ``seeds`` runs."""
        out = []
        for cfg in self.inner:
            _, metrics = jax.vmap(train, in_axes=(None, 0))(cfg, jax.random.split(key, seeds))
            out.append(final_return(metrics, self.config.final_fraction).mean())
        return jnp.stack(out)

    def fitness(self, returns: jax.Array, ppo_returns: jax.Array) -> jax.Array:
        """[P, tasks] returns -> [P] fitness."""
        if self.config.normalize_by_ppo:
            returns = returns / jnp.maximum(jnp.abs(ppo_returns), 1e-6)[None, :]
        return returns.mean(1)

    def ask(self, meta: MetaState) -> tuple[jax.Array, Any, dict[str, jax.Array]]:
        """Step 1: the population, the ES state after asking, and this generation's keys."""
        key, ask_key, inner_key, tell_key = jax.random.split(meta.key, 4)
        thetas, es_state = self.strategy.ask(ask_key, meta.es_state, self.strategy.default_params)
        return thetas, es_state, {"next": key, "inner": inner_key, "tell": tell_key}

    def tell(self, meta: MetaState, es_state: Any, thetas: jax.Array, fitness: jax.Array,
             key: jax.Array) -> tuple[Any, jax.Array]:
        """Step 3: update the ES with the fitness; returns the ES state and the mean's norm."""
        es_state, _ = self.strategy.tell(key, thetas, -fitness, es_state,
                                         self.strategy.default_params)
        return es_state, jnp.linalg.norm(self.strategy.get_mean(es_state))

    # -- host side ----------------------------------------------------------------------
    def init(self, key: jax.Array) -> MetaState:
        es_key, base_key, key = jax.random.split(key, 3)
        es_state = self.strategy.init(es_key, self.theta0, self.strategy.default_params)
        if self.config.normalize_by_ppo:
            ppo_returns = self._baseline(base_key)
        else:
            ppo_returns = jnp.ones((len(self.inner),))
        meta = MetaState(es_state, key, jnp.int32(0), ppo_returns)
        return strong_types(meta)

    def timed(self, fn: Any, *args: Any) -> Any:
        """Call a compiled program and wait for it, counting the time as compiled code."""
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        self.compiled_seconds += time.perf_counter() - t0
        return out

    def step(self, meta: MetaState) -> tuple[MetaState, dict[str, float]]:
        """One generation; returns the new meta-state and host-side statistics."""
        t0 = time.perf_counter()
        compiled0 = self.compiled_seconds
        thetas, es_state, keys = self.timed(self._ask, meta)
        returns = self.backend.evaluate(self, thetas, keys["inner"])
        fitness = self.timed(self._fitness, returns, meta.ppo_returns)
        es_state, theta_norm = self.timed(self._tell, meta, es_state, thetas, fitness,
                                          keys["tell"])
        meta = MetaState(es_state, keys["next"], meta.generation + 1, meta.ppo_returns)
        out = generation_stats(fitness, returns, theta_norm)
        self.host_seconds += (time.perf_counter() - t0) - (self.compiled_seconds - compiled0)
        return meta, out

    def mean_objective(self, meta: MetaState) -> Any:
        """The objective at the ES mean: what a discovery run hands to training."""
        return self.objective(self.strategy.get_mean(meta.es_state))


def strong_types(tree: Any) -> Any:
    """Strong dtypes, so the programs' input types never change (no recompile)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), tree)


def shard_population(thetas: jax.Array) -> jax.Array:
    """Spread the population axis over the local devices when there are several."""
    devices = jax.devices()
    if len(devices) < 2 or thetas.shape[0] % len(devices):
        return thetas
    mesh = jax.sharding.Mesh(np.array(devices), ("population",))
    spec = jax.sharding.PartitionSpec("population")
    return jax.lax.with_sharding_constraint(thetas, jax.sharding.NamedSharding(mesh, spec))
