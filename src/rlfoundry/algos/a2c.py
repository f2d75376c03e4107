"""Advantage Actor-Critic (A2C, the synchronous variant of Mnih et al., 2016).

Per update:
  1. collect T steps from N environments with the current policy;
  2. n-step (λ = 1) or GAE advantages, bootstrapping truncated episodes from V(final obs)
     (shared with PPO: :func:`rlfoundry.algos.ppo.rollout_batch`);
  3. one gradient step on the whole batch: -A·log π(a|s) + c_v·(V(s) - target)² - c_e·H[π].

A2C is PPO with one epoch of one minibatch (at ratio 1 the clipped surrogate's gradient is
A·∇log π), but it is written out here because its loss is the plain policy gradient and its
optimiser is RMSprop, as in the paper.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlfoundry.algos.base import Algorithm, make_env_stack, validate_common
from rlfoundry.algos.ppo import (
    Batch,
    PPOState,
    check_networks,
    init_state,
    networks,
    rollout_batch,
)
from rlfoundry.algos.ppo import act as ppo_act
from rlfoundry.algos.rollout import episode_metrics
from rlfoundry.config import check_range, leaf, static
from rlfoundry.errors import ConfigError
from rlfoundry.nets import policy_distribution


class A2CConfig(struct.PyTreeNode):
    """A2C hyperparameters. Defaults: RL Zoo's CartPole-v1 settings (8 envs × 5 steps,
    RMSprop 7e-4, n-step returns, no entropy bonus) plus a linear learning-rate decay,
    which solves CartPole-v1 within 500k steps."""

    env: str = static("CartPole-v1")
    total_steps: int = static(500_000)
    num_envs: int = static(8)
    num_steps: int = static(5)
    network: str = static("mlp")
    hidden_sizes: tuple[int, ...] = static((64, 64))
    activation: str = static("tanh")
    optimizer: str = static("rmsprop")
    anneal_lr: bool = static(True)
    normalize_advantages: bool = static(False)
    normalize_observations: bool = static(False)
    scale_rewards: bool = static(False)
    init_log_std: float = static(0.0)
    sde: bool = static(False)
    sde_sample_freq: int = static(-1)
    lr: float = leaf(7e-4)
    gamma: float = leaf(0.99)
    gae_lambda: float = leaf(1.0)
    ent_coef: float = leaf(0.0)
    vf_coef: float = leaf(0.5)
    max_grad_norm: float = leaf(0.5)

    def validate(self) -> None:
        validate_common(self, A2C)
        check_networks(self)
        if self.optimizer not in ("rmsprop", "adam"):
            raise ConfigError(f"optimizer must be 'rmsprop' or 'adam', got {self.optimizer!r}.")
        check_range(self, "lr", 0.0, 1.0, low_open=True)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "gae_lambda", 0.0, 1.0)
        check_range(self, "ent_coef", 0.0, 100.0)
        check_range(self, "vf_coef", 0.0, 100.0)
        check_range(self, "max_grad_norm", 0.0, 1e9, low_open=True)


def num_updates(config: A2CConfig) -> int:
    return config.total_steps // (config.num_envs * config.num_steps)


def optimizer(config: A2CConfig) -> optax.GradientTransformation:
    """RMSprop (decay 0.99, as in the paper and SB3) or Adam, with global-norm clipping and
    an optional linear decay of the learning rate to 0 (one gradient step per update)."""
    total = num_updates(config)
    schedule = (lambda n: config.lr * (1.0 - n / total)) if config.anneal_lr else config.lr
    if config.optimizer == "rmsprop":
        tx = optax.rmsprop(schedule, decay=0.99, eps=1e-5)
    else:
        tx = optax.adam(schedule, eps=1e-5)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), tx)


def init(config: A2CConfig, key: jax.Array) -> PPOState:
    return init_state(config, key, optimizer(config).init)


def loss(
    config: A2CConfig, params: Any, actor: Any, critic: Any, batch: Batch
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The actor-critic loss on the whole batch."""
    dist = policy_distribution(actor.apply(params["actor"], batch.obs))
    adv = batch.advantage
    if config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss = -jnp.mean(adv * dist.log_prob(batch.action))
    value = critic.apply(params["critic"], batch.obs)
    v_loss = 0.5 * jnp.mean((value - batch.target) ** 2)
    entropy = jnp.mean(dist.entropy())
    total = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
    return total, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy}


def update(config: A2CConfig, state: PPOState) -> tuple[PPOState, dict[str, jax.Array]]:
    stack = make_env_stack(config)
    actor, critic = networks(config, stack)
    key, rollout_key, noise_key = jax.random.split(state.key, 3)
    carry, traj, batch = rollout_batch(config, stack, actor, critic, state, rollout_key, noise_key)
    grads, losses = jax.grad(
        lambda p: loss(config, p, actor, critic, batch), has_aux=True
    )(state.params)
    updates, opt_state = optimizer(config).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = PPOState(params, opt_state, carry, state.env_params, key, state.update + 1)
    return new_state, {**losses, **episode_metrics(traj)}


A2C = Algorithm(
    name="a2c",
    config_cls=A2CConfig,
    init=init,
    update=update,
    act=ppo_act,
    description="Advantage Actor-Critic: one full-batch policy-gradient step per rollout",
)
