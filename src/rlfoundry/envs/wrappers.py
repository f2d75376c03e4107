"""Composable environment wrappers.

Single-environment wrappers (episode statistics, flattening, action clipping) see one
environment; :class:`VectorEnv` batches N of them; vector wrappers (observation and
reward normalisation) sit on top of a :class:`VectorEnv` so their running statistics are
shared by all N environments, as in Stable-Baselines3's ``VecNormalize``. Every wrapper
keeps the six-value contract and rewrites ``info["final_observation"]`` consistently.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlfoundry.envs.core import (
    Environment,
    StepResult,
    Wrapper,
    presamples_resets,
    spaces,
    step_with_reset,
    unwrap,
)


@struct.dataclass
class EpisodeStatisticsState:
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array


class EpisodeStatistics(Wrapper):
    """Adds ``episode_return``, ``episode_length`` and ``episode_done`` to ``info``.

    On the step an episode ends (terminated or truncated) ``episode_done`` is true and
    the two statistics describe the completed episode; otherwise they are the running
    values of the current episode. Returns are of the *unscaled* reward, so put this
    wrapper inside any reward transform.
    """

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, EpisodeStatisticsState]:
        obs, env_state = self._env.reset(key, params)
        return obs, EpisodeStatisticsState(env_state, jnp.float32(0.0), jnp.int32(0))

    def step(
        self, key: jax.Array, state: EpisodeStatisticsState, action: Any, params: Any = None,
        reset: Any = None,
    ) -> StepResult:
        obs, env_state, reward, terminated, truncated, info = self._inner_step(
            key, state.env_state, action, params, reset
        )
        done = jnp.logical_or(terminated, truncated)
        ep_return = state.episode_return + reward.astype(jnp.float32)
        ep_length = state.episode_length + 1
        info = {
            **info,
            "episode_return": ep_return,
            "episode_length": ep_length,
            "episode_done": done,
        }
        new_state = EpisodeStatisticsState(
            env_state, ep_return * (1.0 - done), ep_length * (1 - done.astype(jnp.int32))
        )
        return obs, new_state, reward, terminated, truncated, info


class FlattenObservation(Wrapper):
    """Flattens array observations to one dimension (for MLP policies)."""

    def observation_space(self, params: Any = None) -> spaces.Box:
        space = self._env.observation_space(params if params is not None else self.default_params)
        size = int(np.prod(space.shape))
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), space.shape).reshape(-1)
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), space.shape).reshape(-1)
        return spaces.Box(low, high, (size,), jnp.float32)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        obs, state = self._env.reset(key, params)
        return jnp.reshape(obs, (-1,)).astype(jnp.float32), state

    def step(
        self, key: jax.Array, state: Any, action: Any, params: Any = None, reset: Any = None
    ) -> StepResult:
        obs, state, reward, terminated, truncated, info = self._inner_step(
            key, state, action, params, reset
        )
        flat = lambda o: jnp.reshape(o, (-1,)).astype(jnp.float32)
        info = {**info, "final_observation": flat(info["final_observation"])}
        return flat(obs), state, reward, terminated, truncated, info


class ClipAction(Wrapper):
    """Clips continuous actions into the action space's bounds before stepping.

    Gaussian policies sample outside the bounds; the learner keeps the unclipped sample
    for its log-probability, the environment receives the clipped one.
    """

    def step(
        self, key: jax.Array, state: Any, action: Any, params: Any = None, reset: Any = None
    ) -> StepResult:
        space = self.action_space(params)
        action = jnp.clip(action, space.low, space.high)
        return self._inner_step(key, state, action, params, reset)


class VectorEnv(Wrapper):
    """N copies of an environment stepped together with ``vmap``.

    ``params`` is shared by all copies unless ``batched_params`` is true, in which case
    each leaf has a leading axis of size N: one level per environment, as curricula need.
    Auto-reset keeps each copy on its own params (level).
    """

    def __init__(self, env: Environment, num_envs: int, batched_params: bool = False):
        super().__init__(env)
        self.num_envs = int(num_envs)
        self.batched_params = bool(batched_params)

    def _axis(self) -> int | None:
        return 0 if self.batched_params else None

    def split(self, key: jax.Array) -> jax.Array:
        """One key per environment; a batch of N keys passes through unchanged, so a
        rollout can draw all its keys in one vectorised call before its loop."""
        typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        if key.ndim > (0 if typed else 1):
            return key
        return jax.random.split(key, self.num_envs)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        params = self.default_params if params is None else params
        keys = self.split(key)
        return jax.vmap(self._env.reset, in_axes=(0, self._axis()))(keys, params)

    def step(
        self, key: jax.Array, state: Any, action: Any, params: Any = None, reset: Any = None
    ) -> StepResult:
        params = self.default_params if params is None else params
        keys = self.split(key)
        one = lambda k, s, a, p, r: step_with_reset(self._env, k, s, a, p, r)
        return jax.vmap(one, in_axes=(0, 0, 0, self._axis(), 0))(
            keys, state, action, params, reset
        )

    def draw_resets(self, key: jax.Array, params: Any, num_steps: int) -> Any:
        """``num_steps`` pre-drawn resets of every environment, leaves shaped [T, N, ...]
        (step t's ``reset`` argument is element t), or ``None`` where a pre-drawn reset
        cannot be handed down (see :func:`presamples_resets`; ``step`` then draws resets
        as usual)."""
        if not presamples_resets(self._env):
            return None
        inner = unwrap(self._env)
        params = self.default_params if params is None else params
        keys = jax.random.split(key, (num_steps, self.num_envs))
        per_env = jax.vmap(inner.reset_env, in_axes=(0, self._axis()))
        return jax.vmap(per_env, in_axes=(0, None))(keys, params)


@struct.dataclass
class RunningMeanStd:
    """Running mean and variance by parallel (Chan et al.) batch updates."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape: tuple[int, ...]) -> RunningMeanStd:
        return cls(jnp.zeros(shape), jnp.ones(shape), jnp.float32(1e-4))

    def update(self, batch: jax.Array) -> RunningMeanStd:
        batch_mean = batch.mean(axis=0)
        batch_var = batch.var(axis=0)
        batch_count = batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = (
            self.var * self.count
            + batch_var * batch_count
            + delta**2 * self.count * batch_count / total
        )
        return RunningMeanStd(mean, m2 / total, total)


@struct.dataclass
class NormalizeObservationState:
    env_state: Any
    obs_stats: RunningMeanStd


class NormalizeObservation(Wrapper):
    """Normalises observations by running statistics shared across a VectorEnv.

    With ``update_stats=False`` (evaluation) the statistics in the state are used as they
    are, so an evaluation reproduces the training-time normalisation.
    """

    def __init__(self, env: VectorEnv, update_stats: bool = True, clip: float = 10.0):
        super().__init__(env)
        self.update_stats = update_stats
        self.clip = clip

    def _normalize(self, obs: jax.Array, stats: RunningMeanStd) -> jax.Array:
        return jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + 1e-8), -self.clip, self.clip)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, NormalizeObservationState]:
        obs, env_state = self._env.reset(key, params)
        stats = RunningMeanStd.create(obs.shape[1:])
        if self.update_stats:
            stats = stats.update(obs)
        return self._normalize(obs, stats), NormalizeObservationState(env_state, stats)

    def step(
        self, key: jax.Array, state: NormalizeObservationState, action: Any, params: Any = None,
        reset: Any = None,
    ) -> StepResult:
        obs, env_state, reward, terminated, truncated, info = self._inner_step(
            key, state.env_state, action, params, reset
        )
        stats = state.obs_stats.update(obs) if self.update_stats else state.obs_stats
        info = {**info, "final_observation": self._normalize(info["final_observation"], stats)}
        new_state = NormalizeObservationState(env_state, stats)
        return self._normalize(obs, stats), new_state, reward, terminated, truncated, info


@struct.dataclass
class ScaleRewardState:
    env_state: Any
    discounted_return: jax.Array
    return_stats: RunningMeanStd


class ScaleReward(Wrapper):
    """Divides rewards by the running std of the discounted return (SB3/CleanRL style).

    Keeps the value targets of long-horizon, large-reward tasks near unit scale; the
    optimal policy is unchanged because the scale is a positive constant per update.
    """

    def __init__(self, env: VectorEnv, gamma: float, update_stats: bool = True, clip: float = 10.0):
        super().__init__(env)
        self.gamma = gamma
        self.update_stats = update_stats
        self.clip = clip

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, ScaleRewardState]:
        obs, env_state = self._env.reset(key, params)
        n = self._env.num_envs
        return obs, ScaleRewardState(env_state, jnp.zeros((n,)), RunningMeanStd.create(()))

    def step(
        self, key: jax.Array, state: ScaleRewardState, action: Any, params: Any = None,
        reset: Any = None,
    ) -> StepResult:
        obs, env_state, reward, terminated, truncated, info = self._inner_step(
            key, state.env_state, action, params, reset
        )
        ret = state.discounted_return * self.gamma + reward
        stats = state.return_stats.update(ret) if self.update_stats else state.return_stats
        done = jnp.logical_or(terminated, truncated)
        scaled = jnp.clip(reward / jnp.sqrt(stats.var + 1e-8), -self.clip, self.clip)
        new_state = ScaleRewardState(env_state, ret * (1.0 - done), stats)
        return obs, new_state, scaled, terminated, truncated, info
