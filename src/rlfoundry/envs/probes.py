"""Probe environments: one-question MDPs that localise learner bugs.

Each isolates one thing a learner must get right (value of a constant, value of an
observation, discounting, credit to actions, conditioning on observations); a learner
that fails one has a bug in exactly that part. Observations are 1-D floats.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.envs.core import Environment, spaces


@struct.dataclass
class ProbeState:
    obs: jax.Array
    time: jax.Array


@struct.dataclass
class ProbeParams:
    max_steps_in_episode: int = 1000


class _Probe(Environment):
    num_actions_: int = 2
    continuous: bool = False

    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams()

    @property
    def num_actions(self) -> int:
        return self.num_actions_

    def action_space(self, params: Any = None) -> Any:
        if self.continuous:
            return spaces.Box(-1.0, 1.0, (1,), jnp.float32)
        return spaces.Discrete(self.num_actions_)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def _sign_obs(self, key: jax.Array) -> jax.Array:
        return jnp.where(jax.random.bernoulli(key), 1.0, -1.0)[None].astype(jnp.float32)

    def _first_obs(self, key: jax.Array) -> jax.Array:
        return jnp.zeros((1,), jnp.float32)

    def reset_env(self, key: jax.Array, params: ProbeParams) -> tuple[jax.Array, ProbeState]:
        obs = self._first_obs(key)
        return obs, ProbeState(obs, jnp.int32(0))

    def _reward(self, state: ProbeState, action: Any) -> jax.Array:
        raise NotImplementedError

    def step_env(
        self, key: jax.Array, state: ProbeState, action: Any, params: ProbeParams
    ) -> tuple[jax.Array, ProbeState, jax.Array, jax.Array, dict[str, Any]]:
        reward = self._reward(state, action).astype(jnp.float32)
        new = ProbeState(state.obs, state.time + 1)
        return state.obs, new, reward, jnp.bool_(True), {}


class ConstantReward(_Probe):
    """Reward 1 every (one-step) episode: V = 1. Tests the value loss."""

    def _reward(self, state: ProbeState, action: Any) -> jax.Array:
        return jnp.float32(1.0)


class ObservationReward(_Probe):
    """Observation is ±1 and so is the reward: V(o) = o. Tests the value net's input."""

    def _first_obs(self, key: jax.Array) -> jax.Array:
        return self._sign_obs(key)

    def _reward(self, state: ProbeState, action: Any) -> jax.Array:
        return state.obs[0]


class TwoStepDiscount(_Probe):
    """Observation 0 then 1; reward 1 only at the end: V(0) = γ, V(1) = 1. Tests discounting."""

    def step_env(
        self, key: jax.Array, state: ProbeState, action: Any, params: ProbeParams
    ) -> tuple[jax.Array, ProbeState, jax.Array, jax.Array, dict[str, Any]]:
        first = state.obs[0] == 0.0
        obs = jnp.ones((1,), jnp.float32)
        reward = jnp.where(first, 0.0, 1.0).astype(jnp.float32)
        new = ProbeState(obs, state.time + 1)
        return obs, new, reward, jnp.logical_not(first), {}


class ActionReward(_Probe):
    """Action 1 pays +1, action 0 pays -1: π(1) → 1, V → 1. Tests the policy gradient."""

    def _reward(self, state: ProbeState, action: Any) -> jax.Array:
        return jnp.where(action == 1, 1.0, -1.0)


class ObservationActionReward(_Probe):
    """Observation ±1; the action that matches it (1 for +1, 0 for -1) pays +1, else -1.

    Tests that the policy conditions on the observation.
    """

    def _first_obs(self, key: jax.Array) -> jax.Array:
        return self._sign_obs(key)

    def _reward(self, state: ProbeState, action: Any) -> jax.Array:
        wanted = jnp.where(state.obs[0] > 0, 1, 0)
        return jnp.where(action == wanted, 1.0, -1.0)


class ContinuousActionReward(_Probe):
    """Continuous action in [-1, 1]; reward ``1 - (a - 0.5)^2``: the mean should reach 0.5."""

    continuous = True
    num_actions_ = 1  # the action dimension, as gymnax's continuous envs report it

    def _reward(self, state: ProbeState, action: Any) -> jax.Array:
        a = jnp.clip(jnp.reshape(action, ()), -1.0, 1.0)
        return 1.0 - (a - 0.5) ** 2


PROBES = {
    "Probe-Constant-v0": ConstantReward,
    "Probe-Observation-v0": ObservationReward,
    "Probe-TwoStep-v0": TwoStepDiscount,
    "Probe-Action-v0": ActionReward,
    "Probe-ObservationAction-v0": ObservationActionReward,
    "Probe-ContinuousAction-v0": ContinuousActionReward,
}
