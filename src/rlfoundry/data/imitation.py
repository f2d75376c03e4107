"""Learning from demonstrations: behaviour-cloning pre-training and an imitation loss.

With ``imitation.data`` set (an npz of :mod:`rlfoundry.data.trajectories`), a PPO-family
learner (1) starts from an actor pre-trained by ``pretrain_steps`` Adam steps on the
demonstrations' action negative log-likelihood, and (2) adds ``coef · decay^n · NLL`` on a
minibatch of demonstrations to its loss at update ``n``, so early updates stay close to
the expert while the weight fades. The demonstrations are constants of the compiled
program (loaded at trace time). With ``data`` empty nothing is traced: no cost.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlfoundry.config import check_range, leaf, register_node, static
from rlfoundry.data.trajectories import Trajectories, load
from rlfoundry.errors import ConfigError
from rlfoundry.nets import policy_distribution


@register_node
class ImitationConfig(struct.PyTreeNode):
    """Demonstrations and how strongly to imitate them (off while ``data`` is empty)."""

    kind = "imitation"
    data: str = static("")
    episodes: int = static(0)  # use only the first N episodes of the file (0 = all)
    pretrain_steps: int = static(300)
    pretrain_lr: float = leaf(1e-3)
    batch_size: int = static(256)
    coef: float = leaf(0.5)
    decay: float = leaf(0.98)

    @property
    def active(self) -> bool:
        return bool(self.data)

    def validate(self, env: str, obs_shape: tuple[int, ...], discrete: bool,
                 action_dim: int) -> None:
        if not self.active:
            return
        for name in ("pretrain_steps", "episodes"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"imitation.{name} must be an integer >= 0, got {v!r}.")
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise ConfigError(f"imitation.batch_size must be a positive integer, got "
                              f"{self.batch_size!r}.")
        check_range(self, "pretrain_lr", 0.0, 1.0, low_open=True)
        check_range(self, "coef", 0.0, 1e6)
        check_range(self, "decay", 0.0, 1.0)
        demonstrations(self.data, self.episodes, env, obs_shape, discrete, action_dim)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float, episodes: int, env: str, obs_shape: tuple[int, ...],
                 discrete: bool, action_dim: int) -> Trajectories:
    data = load(path, env=env, obs_shape=obs_shape,
                action_kind="discrete" if discrete else "continuous",
                num_actions=action_dim if discrete else None)
    return data.select_episodes(episodes) if episodes else data


def demonstrations(path: str, episodes: int, env: str, obs_shape: tuple[int, ...],
                   discrete: bool, action_dim: int) -> Trajectories:
    """The validated dataset (cached per file version)."""
    p = Path(path)
    mtime = p.stat().st_mtime if p.is_file() else 0.0
    return _load_cached(str(p), mtime, episodes, env, tuple(obs_shape), discrete, action_dim)


def action_nll(actor: Any, actor_params: Any, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """Mean negative log-likelihood of ``actions`` under the policy: the BC loss."""
    return -policy_distribution(actor.apply(actor_params, obs)).log_prob(actions).mean()


def _demo_arrays(cfg: ImitationConfig, env: str, stack: Any) -> tuple[jax.Array, jax.Array]:
    data = demonstrations(cfg.data, cfg.episodes, env, stack.obs_shape, stack.discrete,
                          stack.action_dim)
    return jnp.asarray(data.obs), jnp.asarray(data.actions)


def _sample(key: jax.Array, obs: jax.Array, actions: jax.Array,
            size: int) -> tuple[jax.Array, jax.Array]:
    if obs.shape[0] <= size:
        return obs, actions
    idx = jax.random.randint(key, (size,), 0, obs.shape[0])
    return obs[idx], actions[idx]


def pretrain(cfg: ImitationConfig, env: str, stack: Any, actor: Any, actor_params: Any,
             key: jax.Array) -> Any:
    """``pretrain_steps`` Adam steps of behaviour cloning from ``actor_params``."""
    if not cfg.active or cfg.pretrain_steps == 0:
        return actor_params
    obs, actions = _demo_arrays(cfg, env, stack)
    tx = optax.adam(cfg.pretrain_lr)

    def step(c: tuple[Any, Any], k: jax.Array) -> tuple[tuple[Any, Any], jax.Array]:
        params, opt = c
        o, a = _sample(k, obs, actions, cfg.batch_size)
        loss, grads = jax.value_and_grad(lambda p: action_nll(actor, p, o, a))(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), opt), loss

    keys = jax.random.split(key, cfg.pretrain_steps)
    (params, _), _ = jax.lax.scan(step, (actor_params, tx.init(actor_params)), keys)
    return params


def imitation_term(cfg: ImitationConfig, env: str, stack: Any, actor: Any,
                   update: jax.Array, key: jax.Array) -> Any:
    """``loss(actor_params)`` to add during update ``update``: ``coef·decay^update·NLL``
    on one random minibatch of demonstrations (the same for every SGD step of it)."""
    obs, actions = _demo_arrays(cfg, env, stack)
    o, a = _sample(key, obs, actions, cfg.batch_size)
    weight = cfg.coef * cfg.decay ** update.astype(jnp.float32)

    def loss(actor_params: Any) -> tuple[jax.Array, jax.Array]:
        nll = action_nll(actor, actor_params, o, a)
        return weight * nll, nll

    return loss
