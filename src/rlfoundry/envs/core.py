"""The one environment contract of rlfoundry.

It is gymnax's (>= 1.0): ``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``
with auto-reset, where ``info["final_observation"]`` holds the observation the episode
ended on. Environments subclass :class:`Environment` (gymnax's base class) and implement
``reset_env``/``step_env``; wrappers subclass :class:`Wrapper` and override ``reset``/``step``.
A *level* is just an environment's params, so curricula choose params per reset.
"""

from __future__ import annotations

from typing import Any

import jax
from gymnax.environments import spaces
from gymnax.environments.environment import Environment, EnvParams, EnvState

__all__ = ["Environment", "EnvParams", "EnvState", "Wrapper", "spaces", "is_discrete", "unwrap"]

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

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None) -> StepResult:
        return self._env.step(key, state, action, params)


def is_discrete(space: Any) -> bool:
    """True for a single categorical action space."""
    return isinstance(space, spaces.Discrete)


def unwrap(env: Environment) -> Environment:
    """The innermost environment below any wrappers."""
    while isinstance(env, Wrapper):
        env = env.env
    return env
