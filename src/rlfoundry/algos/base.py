"""What every learner provides, and the environment stack learners train on.

A learner is a config class plus pure functions ``init(config, key) -> state`` and
``update(config, state) -> (state, metrics)``; ``train`` (in :mod:`rlfoundry.engine`) is a
``lax.scan`` of ``update``. ``act`` gives the trained policy for evaluation and rendering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from rlfoundry.config import check_positive_ints
from rlfoundry.envs import (
    ClipAction,
    EpisodeStatistics,
    FlattenObservation,
    NormalizeObservation,
    ScaleReward,
    VectorEnv,
    env_spec,
    is_discrete,
    make,
)
from rlfoundry.errors import ConfigError
from rlfoundry.rewards.spec import wrap_rewards

Policy = tuple[Callable[[int], Any], Callable[[Any, jax.Array, jax.Array], tuple[Any, jax.Array]]]
"""``(initial_memory(n), act(memory, obs, key) -> (memory, action))``: a trained policy played
one step at a time over n environments; the memory is ``None`` for feed-forward agents and,
e.g., an LSTM's state for recurrent ones."""


def stateless_policy(act: Callable[[jax.Array, jax.Array], jax.Array]) -> Policy:
    """A feed-forward ``act(obs, key) -> action`` as a :data:`Policy` with no memory."""
    return (lambda n: None), (lambda memory, obs, key: (memory, act(obs, key)))


def forget_where(policy: Policy, memory: Any, done: jax.Array) -> Any:
    """The policy's memory with the environments whose episode just ended (``done``, [n])
    set back to their initial memory, for playing several episodes in a row."""
    if memory is None:
        return None
    fresh = policy[0](done.shape[0])
    return jax.tree.map(
        lambda m, f: jnp.where(done.reshape(done.shape + (1,) * (m.ndim - 1)), f, m),
        memory, fresh,
    )


@dataclass(frozen=True)
class Algorithm:
    """A learner as the engine sees it.

    ``act`` is the trained policy for one batch of observations; learners whose agent keeps
    a memory (recurrent curricula agents) also give ``policy``, which evaluation and
    rendering use through :meth:`make_policy`."""

    name: str
    config_cls: type
    init: Callable[[Any, jax.Array], Any]
    update: Callable[[Any, Any], tuple[Any, dict[str, jax.Array]]]
    act: Callable[[Any, Any, jax.Array, jax.Array, bool], jax.Array]
    action_spaces: tuple[str, ...] = ("discrete", "continuous")
    description: str = ""
    policy: Callable[[Any, Any, bool], Policy] | None = None

    def make_policy(self, config: Any, state: Any, deterministic: bool) -> Policy:
        """The trained state's :data:`Policy` (one seed's state)."""
        if self.policy is not None:
            return self.policy(config, state, deterministic)
        return stateless_policy(lambda obs, key: self.act(config, state, obs, key, deterministic))

    def num_updates(self, config: Any) -> int:
        return config.total_steps // self.steps_per_update(config)

    def steps_per_update(self, config: Any) -> int:
        return config.num_envs * config.num_steps


@dataclass(frozen=True)
class EnvStack:
    """The wrapped, vectorised training environment and what learners need to know of it."""

    env: Any
    params: Any
    obs_shape: tuple[int, ...]
    discrete: bool
    action_dim: int
    action_low: Any = None
    action_high: Any = None


def make_env_stack(
    config: Any, num_envs: int | None = None, *, flatten: bool | None = None,
    update_stats: bool = True,
) -> EnvStack:
    """Build ``config.env`` wrapped for training: statistics, flattening, clipping, vectorised,
    then (optionally) observation normalisation and reward scaling shared across envs.

    Configs with ``per_env_levels = True`` (curricula) get one params pytree (level) per
    environment: ``EnvStack.params`` then has a leading axis of size ``num_envs``."""
    base, params = make(config.env)
    per_env = bool(getattr(config, "per_env_levels", False))
    space = base.action_space(params)
    discrete = is_discrete(space)
    env = EpisodeStatistics(base)
    reward = getattr(config, "reward", None)
    if reward is not None:  # reward code, blends, shaping: outside the episode statistics
        env = wrap_rewards(env, reward, config.gamma, config.env)
    obs_shape = tuple(base.observation_space(params).shape)
    if flatten is None:
        flatten = getattr(config, "network", "mlp") == "mlp"
    if flatten and len(obs_shape) != 1:
        env = FlattenObservation(env)
        obs_shape = tuple(env.observation_space(params).shape)
    if not discrete:
        env = ClipAction(env)
    n = num_envs or config.num_envs
    env = VectorEnv(env, n, batched_params=per_env)
    if per_env:
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), params)
    if getattr(config, "normalize_observations", False):
        env = NormalizeObservation(env, update_stats=update_stats)
    if getattr(config, "scale_rewards", False):
        env = ScaleReward(env, gamma=config.gamma, update_stats=update_stats)
    if discrete:
        return EnvStack(env, params, obs_shape, True, int(space.n))
    return EnvStack(env, params, obs_shape, False, int(space.shape[0]), space.low, space.high)


def validate_common(config: Any, algo: Algorithm) -> None:
    """Checks shared by every learner: the environment exists and suits the algorithm,
    and sizes are positive and consistent."""
    spec = env_spec(config.env)
    if spec.needs_download:
        raise ConfigError(
            f"environment {config.env!r} downloads a data set at start-up, which this "
            "installation does not do; pick another environment."
        )
    check_positive_ints(config, ("total_steps", "num_envs", "num_steps"))
    base, params = make(config.env)
    kind = "discrete" if is_discrete(base.action_space(params)) else "continuous"
    if hasattr(base, "vocab") and hasattr(base, "act_len"):  # a text environment
        kind = "text"
    if kind not in algo.action_spaces:
        raise ConfigError(
            f"{algo.name} needs a {' or '.join(algo.action_spaces)} action space but "
            f"{config.env} is {kind}; use an algorithm for {kind} actions "
            f"(see `rlfoundry list algos`)."
        )
    if getattr(config, "sde", False) and kind != "continuous":
        raise ConfigError(
            f"sde (state-dependent exploration) needs continuous actions but {config.env} "
            f"is {kind}; drop sde=true."
        )
    check_reward_and_demonstrations(config)
    if config.total_steps < algo.steps_per_update(config):
        raise ConfigError(
            f"total_steps={config.total_steps} is less than one update "
            f"(num_envs*num_steps={algo.steps_per_update(config)}); raise total_steps."
        )


def check_reward_and_demonstrations(config: Any) -> None:
    """Validate reward code (AST, then on sample transitions) and the demonstration file
    of configs that have them, so a bad file fails here, before any training."""
    reward = getattr(config, "reward", None)
    if reward is not None:
        reward.validate(config.env)
    imitation = getattr(config, "imitation", None)
    if imitation is not None and imitation.active:
        stack = make_env_stack(config)
        imitation.validate(config.env, stack.obs_shape, stack.discrete, stack.action_dim)
