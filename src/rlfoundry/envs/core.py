"""The one environment contract of rlfoundry.

It is gymnax's (>= 1.0): ``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``
with auto-reset, where ``info["final_observation"]`` holds the observation the episode
ended on. Environments subclass :class:`Environment` (gymnax's base class) and implement
``reset_env``/``step_env``; wrappers subclass :class:`Wrapper` and override ``reset``/``step``.
A *level* is just an environment's params, so curricula choose params per reset.

Every ``step`` also takes an optional ``reset``: a reset ``(obs, state)`` of the innermost
environment drawn in advance (see :meth:`VectorEnv.draw_resets`). Wrappers pass it down
untouched; the innermost environment auto-resets to it instead of drawing one, which lets a
rollout draw the resets of all its T steps in one vectorised call before its loop (on a CPU,
drawing a reset state and splitting a key inside every step of a scan costs ~a third of a
CartPole rollout). The distribution of episodes is unchanged.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.environments.environment import Environment, EnvParams, EnvState

__all__ = [
    "Environment", "EnvParams", "EnvState", "Wrapper", "spaces", "is_discrete", "unwrap",
    "step_with_reset", "presamples_resets",
]

StepResult = tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]


class Wrapper(Environment):
    """Base for wrappers: forwards everything to the wrapped environment.

    Subclasses override ``reset``/``step`` (the auto-resetting API), never ``step_env``,
    so a wrapper sees whole transitions including ``info["final_observation"]``.
    """

    def __init__(self, env: Environment):
        self._env = env

    @property
    def env(self) -> Environment:
        return self._env

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def default_params(self) -> Any:
        return self._env.default_params

    @property
    def name(self) -> str:
        return self._env.name

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def action_space(self, params: Any = None) -> Any:
        return self._env.action_space(params if params is not None else self.default_params)

    def observation_space(self, params: Any = None) -> Any:
        return self._env.observation_space(params if params is not None else self.default_params)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        return self._env.reset(key, params)

    def step(
        self, key: jax.Array, state: Any, action: Any, params: Any = None, reset: Any = None
    ) -> StepResult:
        return self._inner_step(key, state, action, params, reset)

    def _inner_step(
        self, key: jax.Array, state: Any, action: Any, params: Any, reset: Any
    ) -> StepResult:
        """The wrapped environment's step, handing down a pre-drawn ``reset``."""
        return step_with_reset(self._env, key, state, action, params, reset)


def presamples_resets(env: Environment) -> bool:
    """True if a pre-drawn reset can be handed down through ``env``: every wrapper's
    ``step`` takes ``reset`` (a user's wrapper written without it does not), and the
    innermost environment's auto-reset is gymnax's (``step`` not overridden), so a reset
    from its ``reset_env`` stands in for the one its ``step`` would draw."""
    while isinstance(env, Wrapper):
        if "reset" not in inspect.signature(type(env).step).parameters:
            return False
        env = env.env
    return isinstance(env, Environment) and type(env).step is Environment.step


def step_with_reset(
    env: Environment, key: jax.Array, state: Any, action: Any, params: Any, reset: Any
) -> StepResult:
    """``env.step`` that auto-resets to ``reset = (obs, state)`` if one is given.

    Same transition and ``info`` as gymnax's ``Environment.step``; the whole ``key`` goes to
    ``step_env`` because no reset needs drawing."""
    if reset is None:  # (also for wrappers written without the ``reset`` argument)
        return env.step(key, state, action, params)
    if isinstance(env, Wrapper):
        return env.step(key, state, action, params, reset=reset)
    params = env.default_params if params is None else params
    obs_st, state_st, reward, terminated, info = env.step_env(key, state, action, params)
    truncated = env.is_truncated(state_st, params)
    done = jnp.logical_or(terminated, truncated)
    obs_re, state_re = reset
    pick = lambda re, st: jax.lax.select(done, re, st)
    state = jax.tree.map(pick, state_re, state_st)
    obs = jax.tree.map(pick, obs_re, obs_st)
    info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_st}
    return obs, state, reward, terminated, truncated, info


def is_discrete(space: Any) -> bool:
    """True for a single categorical action space."""
    return isinstance(space, spaces.Discrete)


def unwrap(env: Environment) -> Environment:
    """The innermost environment below any wrappers."""
    while isinstance(env, Wrapper):
        env = env.env
    return env
