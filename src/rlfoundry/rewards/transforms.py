"""Composable reward wrappers: a reward function of the transition, potential-based
shaping, clipping and constant scaling.

They wrap a single environment *outside* :class:`~rlfoundry.envs.EpisodeStatistics`, so
logged episode returns stay the task's own reward whatever the learner is trained on.
Running-return normalisation is :class:`rlfoundry.envs.ScaleReward` (a vector wrapper,
``scale_rewards=True`` in a config); it is re-exported here rather than duplicated.

A reward function is ``fn(obs, action, next_obs, info) -> reward`` with ``info`` holding
the environment's ``reward``, ``terminated`` and ``truncated``; ``next_obs`` is the
pre-reset observation the step reached (``info["final_observation"]`` of the contract).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.envs.core import StepResult, Wrapper
from rlfoundry.envs.wrappers import ScaleReward

RewardFn = Callable[[jax.Array, jax.Array, jax.Array, dict[str, jax.Array]], jax.Array]

__all__ = ["ClipReward", "MultiplyReward", "PotentialShaping", "RewardFunction", "ScaleReward",
           "shaped_reward"]


@struct.dataclass
class ObsMemoryState:
    """The wrapped state plus the observation the next action is taken from."""

    env_state: Any
    obs: jax.Array


class RewardFunction(Wrapper):
    """Replaces the reward by ``fn(obs, action, next_obs, info)``."""

    def __init__(self, env: Any, fn: RewardFn):
        super().__init__(env)
        self.fn = fn

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, ObsMemoryState]:
        obs, state = self._env.reset(key, params)
        return obs, ObsMemoryState(state, obs)

    def step(self, key: jax.Array, state: ObsMemoryState, action: Any,
             params: Any = None, reset: Any = None) -> StepResult:
        obs, env_state, reward, terminated, truncated, info = self._inner_step(
            key, state.env_state, action, params, reset
        )
        view = {"reward": reward.astype(jnp.float32), "terminated": terminated,
                "truncated": truncated}
        new = self.fn(state.obs, action, info["final_observation"], view)
        new = jnp.asarray(new, jnp.float32).reshape(())
        return obs, ObsMemoryState(env_state, obs), new, terminated, truncated, info


def shaped_reward(potential: Callable[[jax.Array], jax.Array], gamma: float) -> RewardFn:
    """``r + γ·Φ(s') − Φ(s)`` with ``Φ(s') = 0`` when the episode terminated (Ng et al.,
    1999): the shaping telescopes to ``−Φ(s₀)`` along any episode, so the optimal policy
    is unchanged. Truncation keeps ``Φ(s')``: the episode was cut, not finished."""

    def fn(obs: jax.Array, action: Any, next_obs: jax.Array, info: dict[str, Any]) -> jax.Array:
        nxt = jnp.where(info["terminated"], 0.0, potential(next_obs))
        return info["reward"] + gamma * nxt - potential(obs)

    return fn


class PotentialShaping(RewardFunction):
    """Adds potential-based shaping ``γ·Φ(s') − Φ(s)`` to the reward."""

    def __init__(self, env: Any, potential: Callable[[jax.Array], jax.Array], gamma: float):
        super().__init__(env, shaped_reward(potential, gamma))
        self.potential = potential
        self.gamma = gamma


class MultiplyReward(Wrapper):
    """Multiplies the reward by a constant (which may be a traced, vmapped leaf)."""

    def __init__(self, env: Any, scale: Any):
        super().__init__(env)
        self.scale = scale

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None,
             reset: Any = None) -> StepResult:
        obs, state, reward, terminated, truncated, info = self._inner_step(
            key, state, action, params, reset
        )
        return obs, state, reward * self.scale, terminated, truncated, info


class ClipReward(Wrapper):
    """Clips the reward into ``[low, high]`` (DQN's ``[-1, 1]`` on Atari)."""

    def __init__(self, env: Any, low: float, high: float):
        super().__init__(env)
        self.low, self.high = low, high

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None,
             reset: Any = None) -> StepResult:
        obs, state, reward, terminated, truncated, info = self._inner_step(
            key, state, action, params, reset
        )
        return obs, state, jnp.clip(reward, self.low, self.high), terminated, truncated, info
