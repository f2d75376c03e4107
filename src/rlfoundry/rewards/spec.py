"""The ``reward`` settings of a learner: what to train on instead of the raw env reward.

A :class:`RewardConfig` node sits in every PPO-family config (``config.reward``); the
defaults change nothing and add no wrapper. Sources are reward code (see
:mod:`rlfoundry.rewards.code`), validated when the config is, before any training:

* ``code``: ``def reward(obs, action, next_obs, info)`` replaces the env reward
  (``info["reward"]`` is the env's, so code can add a bonus to it);
* ``aux`` and ``aux_weights``: auxiliary rewards blended in, ``r + Σ wᵢ·auxᵢ`` (the
  weights are a vmappable leaf: :mod:`rlfoundry.rewards.blend` searches them by ES);
* ``potential``: ``def potential(obs)`` adds shaping ``γ·Φ(s') − Φ(s)``;
* ``model``: a reward network fitted from preferences (:mod:`rlfoundry.rewards.preferences`,
  an ``.npz``) replaces the env reward by ``r_ψ(obs, action)``;
* ``scale`` and ``clip``: a constant factor, then clipping to ``[-clip, clip]`` (0 = off).

Running-return normalisation is the config's own ``scale_rewards`` flag.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlfoundry.config import check_range, leaf, register_node, static
from rlfoundry.errors import ConfigError
from rlfoundry.rewards.code import check_program, check_source
from rlfoundry.rewards.transforms import (
    ClipReward,
    MultiplyReward,
    PotentialShaping,
    RewardFunction,
)


@register_node
class RewardConfig(struct.PyTreeNode):
    """Reward design settings (all off by default)."""

    kind = "reward"
    code: str = static("")
    model: str = static("")
    aux: tuple[str, ...] = static(())
    aux_weights: Any = leaf(None)
    potential: str = static("")
    scale: float = leaf(1.0)
    clip: float = static(0.0)

    @property
    def active(self) -> bool:
        return bool(self.code or self.model or self.aux or self.potential or self.clip) or not (
            isinstance(self.scale, (int, float)) and self.scale == 1.0
        )

    def weights(self) -> jax.Array:
        """The auxiliary weights (ones if unset)."""
        if self.aux_weights is None:
            return jnp.ones((len(self.aux),), jnp.float32)
        return jnp.asarray(self.aux_weights, jnp.float32)

    def validate(self, env_name: str | None = None) -> None:
        """Check every source (AST, then compiled on sample transitions of ``env_name``)."""
        check_range(self, "scale", -1e6, 1e6)
        if not isinstance(self.clip, (int, float)) or self.clip < 0:
            raise ConfigError(f"reward.clip must be >= 0 (0 = off), got {self.clip!r}.")
        if self.aux_weights is not None and not isinstance(self.aux_weights, jax.core.Tracer):
            w = np.asarray(self.aux_weights)
            if w.shape[-1:] != (len(self.aux),):
                raise ConfigError(
                    f"reward.aux_weights has {w.shape[-1] if w.ndim else 1} value(s) for "
                    f"{len(self.aux)} auxiliary reward(s); give one weight per reward."
                )
        if self.code and self.model:
            raise ConfigError("reward.code and reward.model both replace the reward; set one.")
        if self.model:
            from rlfoundry.rewards.preferences import load_reward_model

            load_reward_model(self.model, env_name)
        fns = compiled_sources(self)
        if env_name is None or not fns:
            return
        samples = sample_transitions(env_name)
        obs, action, next_obs, info = samples
        for where, (name, fn) in fns.items():
            args = (obs,) if name == "potential" else samples
            check_program(fn, args, where)


def compiled_sources(cfg: RewardConfig) -> dict[str, tuple[str, Any]]:
    """``{where: (function name, function)}`` of every source in ``cfg`` (validated)."""
    out: dict[str, tuple[str, Any]] = {}
    if cfg.code:
        out["reward code"] = ("reward", _checked(cfg.code, "reward", "reward code"))
    for i, src in enumerate(cfg.aux):
        where = f"reward.aux[{i}]"
        out[where] = ("reward", _checked(src, "reward", where))
    if cfg.potential:
        out["reward.potential"] = ("potential",
                                   _checked(cfg.potential, "potential", "reward.potential"))
    return out


@functools.lru_cache(maxsize=64)
def _checked(source: str, name: str, where: str) -> Any:
    return check_source(source, name, where).function


@functools.lru_cache(maxsize=16)
def sample_transitions(env_name: str, n: int = 32) -> tuple[Any, ...]:
    """``(obs, action, next_obs, info)`` of ``n`` random transitions (a few steps in from
    reset) of the bare environment: what reward code is checked on."""
    from rlfoundry.envs import make

    env, params = make(env_name)
    space = env.action_space(params)
    keys = jax.random.split(jax.random.PRNGKey(0), n)

    def one(key: jax.Array) -> tuple[Any, ...]:
        k_reset, k_steps = jax.random.split(key)
        obs, state = env.reset(k_reset, params)

        def step(c: tuple[Any, Any], k: jax.Array) -> tuple[tuple[Any, Any], tuple[Any, ...]]:
            o, s = c
            ka, ks = jax.random.split(k)
            a = space.sample(ka)
            o2, s2, r, term, trunc, info = env.step(ks, s, a, params)
            out = (o, a, info["final_observation"],
                   {"reward": r.astype(jnp.float32), "terminated": term, "truncated": trunc})
            return (o2, s2), out

        _, traj = jax.lax.scan(step, (obs, state), jax.random.split(k_steps, 4))
        return jax.tree.map(lambda x: x[-1], traj)

    return jax.device_get(jax.jit(jax.vmap(one))(keys))


def wrap_rewards(env: Any, cfg: RewardConfig, gamma: Any, env_name: str | None = None) -> Any:
    """Wrap a single environment (already inside EpisodeStatistics) with ``cfg``'s reward
    transforms, in the order code or model → blend → shaping → scale → clip."""
    if not cfg.active:
        return env
    fns = compiled_sources(cfg)
    if cfg.code:
        env = RewardFunction(env, fns["reward code"][1])
    if cfg.model:
        from rlfoundry.rewards.preferences import learned_reward

        env = RewardFunction(env, learned_reward(cfg.model, env_name))
    if cfg.aux:
        aux = [fns[f"reward.aux[{i}]"][1] for i in range(len(cfg.aux))]
        weights = cfg.weights()

        def blended(obs: Any, action: Any, next_obs: Any, info: dict[str, Any]) -> jax.Array:
            extra = jnp.stack([jnp.asarray(f(obs, action, next_obs, info), jnp.float32)
                               for f in aux])
            return info["reward"] + jnp.dot(weights, extra)

        env = RewardFunction(env, blended)
    if cfg.potential:
        env = PotentialShaping(env, fns["reward.potential"][1], gamma)
    if not (isinstance(cfg.scale, (int, float)) and cfg.scale == 1.0):
        env = MultiplyReward(env, cfg.scale)
    if cfg.clip:
        env = ClipReward(env, -cfg.clip, cfg.clip)
    return env
