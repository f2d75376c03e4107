"""Learned reward blending: ES over the weights of auxiliary rewards (a bi-level search).

The learner trains on ``r_env + Σ wᵢ·auxᵢ`` (``config.reward.aux``); which weights help is
judged only by the *primary* return, the environment's own (the episode statistics sit
inside the reward wrappers, so ``episode_return`` is always the env reward). Per
generation:

  1. ask OpenES (evosax; antithetic pairs, centred ranks, Adam on the mean) for P weight
     vectors around the current mean (initially all ones: equal weights);
  2. train P complete inner PPO runs on the blended rewards, vmapped over the population
     (the weights are a config leaf), all with the same inner seed (common random numbers);
  3. fitness = final primary return; tell the ES.

An auxiliary reward that misleads (its optimum is not the task's) lowers the primary
return of members that weight it more, so the ES mean moves its weight down. The ES step
and the inner trainings are separate compiled programs (jaxlib 0.10.2 can hang in one big
generation program; see the README).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import evosax.algorithms
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlfoundry.config import batch_axes
from rlfoundry.engine import train
from rlfoundry.errors import ConfigError


def final_return(metrics: dict[str, jax.Array], fraction: float) -> jax.Array:
    """Episode-weighted mean primary return over the last ``fraction`` of updates."""
    r, n = metrics["episode_return"], metrics["episodes"]
    last = max(int(r.shape[-1] * fraction), 1)
    return (r[..., -last:] * n[..., -last:]).sum(-1) / jnp.maximum(n[..., -last:].sum(-1), 1.0)


@dataclasses.dataclass(frozen=True)
class BlendSearch:
    """ES over ``config.reward.aux_weights`` with the primary return as fitness."""

    config: Any
    population: int = 8
    generations: int = 8
    sigma: float = 0.5
    lr: float = 0.3
    final_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not self.config.reward.aux:
            raise ConfigError("blend search needs auxiliary rewards (reward.aux).")
        if self.population < 2 or self.population % 2:
            raise ConfigError(f"population must be even and >= 2, got {self.population}.")
        if self.generations <= 0:
            raise ConfigError(f"generations must be positive, got {self.generations}.")
        self.config.validate()

    @property
    def num_weights(self) -> int:
        return len(self.config.reward.aux)

    def strategy(self) -> Any:
        return evosax.algorithms.Open_ES(
            population_size=self.population,
            solution=jnp.ones((self.num_weights,)),
            use_antithetic_sampling=True,
            optimizer=optax.adam(self.lr),
            std_schedule=optax.constant_schedule(self.sigma),
        )

    def with_weights(self, weights: jax.Array) -> Any:
        return self.config.replace(reward=self.config.reward.replace(aux_weights=weights))

    def returns(self, weights: jax.Array, key: jax.Array) -> jax.Array:
        """Final primary return of one inner training per weight vector [P, k] -> [P]."""
        cfg = self.with_weights(weights)
        axes = batch_axes(cfg, ("reward.aux_weights",))
        keys = jnp.broadcast_to(key, (weights.shape[0], *key.shape))
        _, metrics = jax.vmap(train, in_axes=(axes, 0))(cfg, keys)
        return final_return(metrics, self.final_fraction)

    def run(self, key: jax.Array, log: Any = None) -> dict[str, Any]:
        """The search; returns the mean weights and fitness per generation."""
        strategy = self.strategy()
        params = strategy.default_params
        key, init_key = jax.random.split(key)
        state = strategy.init(init_key, jnp.ones((self.num_weights,)), params)
        ask = jax.jit(lambda k, s: strategy.ask(k, s, params))
        tell = jax.jit(lambda k, x, f, s: strategy.tell(k, x, f, s, params)[0])
        inner = jax.jit(self.returns)
        history: dict[str, list[Any]] = {"mean_weights": [np.ones(self.num_weights).tolist()],
                                         "fitness_mean": [], "fitness_max": []}
        for g in range(self.generations):
            key, ask_key, inner_key, tell_key = jax.random.split(key, 4)
            weights, state = ask(ask_key, state)
            fitness = inner(weights, inner_key)
            state = tell(tell_key, weights, -fitness, state)
            mean = np.asarray(strategy.get_mean(state))
            history["mean_weights"].append(mean.tolist())
            history["fitness_mean"].append(float(fitness.mean()))
            history["fitness_max"].append(float(fitness.max()))
            if log is not None:
                log(f"generation {g + 1}: fitness mean {float(fitness.mean()):.2f} max "
                    f"{float(fitness.max()):.2f}; mean weights {np.round(mean, 3).tolist()}")
        history["weights"] = history["mean_weights"][-1]
        return history
