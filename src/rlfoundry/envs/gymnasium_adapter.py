"""Any rlfoundry environment as a Gymnasium environment.

For tools that speak Gymnasium (evaluation scripts, Stable-Baselines3, ``check_env``).
gymnax's own ``GymnaxToGymWrapper`` returns JAX arrays, auto-resets and never seeds
``np_random``, so it fails Gymnasium 1.3's ``check_env``; this adapter returns numpy values of the
declared dtypes and follows Gymnasium's episode protocol: the step that ends an episode
returns that episode's last observation, and the user calls ``reset`` to start the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces as gym_spaces

from rlfoundry.envs.core import Environment, spaces
from rlfoundry.envs.registry import make
from rlfoundry.errors import ConfigError

__all__ = ["GymnasiumEnv", "to_gymnasium_space"]


def to_gymnasium_space(space: Any) -> gym_spaces.Space:
    """The Gymnasium equivalent of a gymnax space (per-dimension bounds and dtype kept)."""
    if isinstance(space, spaces.Discrete):
        return gym_spaces.Discrete(int(space.n))
    if isinstance(space, spaces.Box):
        dtype = np.dtype(space.dtype)
        shape = tuple(int(d) for d in space.shape)
        # Bounds are cast to the space's dtype, so a float32 space keeps float32 bounds
        # (CartPole's ±float32-max would overflow to inf if rounded through float64).
        low = np.broadcast_to(np.asarray(space.low).astype(dtype), shape).copy()
        high = np.broadcast_to(np.asarray(space.high).astype(dtype), shape).copy()
        return gym_spaces.Box(low, high, shape, dtype)
    if isinstance(space, spaces.Dict):
        return gym_spaces.Dict({k: to_gymnasium_space(s) for k, s in space.spaces.items()})
    if isinstance(space, spaces.Tuple):
        return gym_spaces.Tuple(tuple(to_gymnasium_space(s) for s in space.spaces))
    raise ConfigError(f"cannot convert a {type(space).__name__} space to Gymnasium.")


def _to_numpy(value: Any, space: gym_spaces.Space) -> Any:
    """A JAX value as the numpy type ``space`` declares (the checker compares dtypes)."""
    if isinstance(space, gym_spaces.Discrete):
        return np.int64(np.asarray(value))
    if isinstance(space, gym_spaces.Box):
        return np.array(value, dtype=space.dtype).reshape(space.shape)
    if isinstance(space, gym_spaces.Dict):
        get = value.__getitem__ if isinstance(value, Mapping) else partial(getattr, value)
        return {k: _to_numpy(get(k), s) for k, s in space.spaces.items()}
    if isinstance(space, gym_spaces.Tuple):
        return tuple(_to_numpy(v, s) for v, s in zip(value, space.spaces, strict=True))
    raise TypeError(f"unsupported space {space!r}")


def _to_jax(action: Any, space: Any) -> Any:
    """A Gymnasium action as the fixed dtype/shape the jitted step was compiled for."""
    if isinstance(space, spaces.Discrete):
        return jnp.asarray(action, dtype=space.dtype)
    if isinstance(space, spaces.Box):
        return jnp.asarray(np.asarray(action, dtype=np.dtype(space.dtype)).reshape(space.shape))
    if isinstance(space, spaces.Dict):
        return {k: _to_jax(action[k], s) for k, s in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(_to_jax(a, s) for a, s in zip(action, space.spaces, strict=True))
    return jnp.asarray(action)


def _seed_key(seed: int) -> jax.Array:
    """A key from every bit of a (non-negative, arbitrarily large) Gymnasium seed;
    ``jax.random.key`` alone keeps only the low 32 bits."""
    seed = int(seed)
    key = jax.random.key(seed & 0xFFFFFFFF)
    seed >>= 32
    while seed:
        key = jax.random.fold_in(key, seed & 0xFFFFFFFF)
        seed >>= 32
    return key


# ``env`` is static: one compilation per environment object, shared by every adapter on it
# (and reused across params of one structure, e.g. a shorter time limit).
@partial(jax.jit, static_argnums=0)
def _reset(env: Environment, key: jax.Array, params: Any) -> tuple[Any, Any]:
    return env.reset(key, params)


@partial(jax.jit, static_argnums=0)
def _step(env: Environment, key: jax.Array, state: Any, action: Any, params: Any) -> tuple:
    # The auto-resetting step (so wrappers work too); the episode's own last observation
    # is ``final_observation``. The auto-reset state is never observed: reset() replaces it.
    _, state, reward, terminated, truncated, info = env.step(key, state, action, params)
    info = dict(info)
    final_obs = info.pop("final_observation")
    return final_obs, state, reward, terminated, truncated, info


class GymnasiumEnv(gymnasium.Env):
    """A registered name (or an ``(env, params)`` pair) as a ``gymnasium.Env``.

    ``reset(seed=s)`` restarts the JAX key stream at ``jax.random.key(s)``, so a seeded
    episode is reproducible; ``reset()`` without a seed continues the stream. There is no
    auto-reset: after ``terminated or truncated`` call ``reset``. ``info`` carries the
    environment's extra outputs as numpy values. The JAX environment and its params are
    ``jax_env`` and ``params``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        env: str | Environment,
        params: Any = None,
        *,
        render_mode: str | None = None,
    ):
        if render_mode is not None:
            raise ConfigError(f"render_mode={render_mode!r}: rendering is not supported.")
        if isinstance(env, str):
            if params is None:
                # A spec lets gymnasium (and check_env) rebuild the env and know it is seeded.
                self.spec = gymnasium.envs.registration.EnvSpec(
                    id=f"rlfoundry/{env}",
                    entry_point=GymnasiumEnv,
                    nondeterministic=False,
                    kwargs={"env": env},
                    disable_env_checker=True,
                )
            env, _ = make(env)
        self.jax_env = env
        self.params = env.default_params if params is None else params
        self.render_mode = render_mode
        self._jax_action_space = env.action_space(self.params)
        self.action_space = to_gymnasium_space(self._jax_action_space)
        self.observation_space = to_gymnasium_space(env.observation_space(self.params))
        self._key: jax.Array | None = None
        self._state: Any = None
        self._done = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode; a seed restarts the key stream, otherwise it continues.

        ``options`` is accepted for API compatibility and ignored: params are fixed per
        instance (build another adapter on the same env object to change them; it reuses
        the compiled functions).
        """
        super().reset(seed=seed)
        if seed is not None:
            self._key = _seed_key(seed)
        elif self._key is None:  # first reset without a seed: random, via np_random
            self._key = jax.random.key(int(self.np_random.integers(2**31)))
        self._key, key = jax.random.split(self._key)
        obs, self._state = _reset(self.jax_env, key, self.params)
        self._done = False
        return _to_numpy(obs, self.observation_space), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """One transition; at an episode's end the observation is its last, not a reset one."""
        if self._state is None:
            raise gymnasium.error.ResetNeeded("call reset() before step().")
        if self._done:
            gymnasium.logger.warn(
                "step() called after the episode ended; call reset(). "
                "The environment continues from a fresh episode."
            )
        if isinstance(self.action_space, gym_spaces.Discrete) and not self.action_space.contains(
            action
        ):
            raise ValueError(f"action {action!r} is not in {self.action_space}.")
        self._key, key = jax.random.split(self._key)
        obs, self._state, reward, terminated, truncated, info = _step(
            self.jax_env, key, self._state, _to_jax(action, self._jax_action_space), self.params
        )
        terminated, truncated = bool(terminated), bool(truncated)
        self._done = terminated or truncated
        info = jax.tree.map(np.asarray, jax.device_get(info))
        obs = _to_numpy(obs, self.observation_space)
        return obs, float(reward), terminated, truncated, info
