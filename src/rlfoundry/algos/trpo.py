"""Trust Region Policy Optimisation (Schulman et al., 2015), discrete and continuous.

Per update:
  1. collect a rollout and compute GAE advantages (shared with PPO:
     :func:`rlfoundry.algos.ppo.rollout_batch`);
  2. g = ∇ L(θ) of the surrogate L(θ) = E[π_θ(a|s)/π_old(a|s) · A] at θ_old;
  3. solve F x = g by conjugate gradient, F the Fisher matrix (the Hessian of the mean
     KL(π_old || π_θ)) seen only through products F v = ∇(∇KL · v) (``jax.jvp`` of
     ``jax.grad``), plus damping;
  4. the largest step along x allowed by the quadratic KL model: β = sqrt(2 δ / xᵀF x);
  5. backtracking line search on θ_old + c^i β x, i = 0, 1, ...: accept the first step whose
     surrogate improves on L(θ_old) and whose mean KL is at most δ; else keep θ_old;
  6. the critic: a few epochs of minibatch Adam on the GAE value targets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from rlfoundry.algos.base import Algorithm, make_env_stack, validate_common
from rlfoundry.algos.minibatch import epochs_of_minibatches
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
from rlfoundry.config import check_positive_ints, check_range, leaf, static
from rlfoundry.errors import ConfigError
from rlfoundry.nets import policy_distribution


class TRPOConfig(struct.PyTreeNode):
    """TRPO hyperparameters. Defaults: CartPole-v1 (solves it within 300k steps)."""

    env: str = static("CartPole-v1")
    total_steps: int = static(300_000)
    num_envs: int = static(8)
    num_steps: int = static(128)
    network: str = static("mlp")
    hidden_sizes: tuple[int, ...] = static((64, 64))
    activation: str = static("tanh")
    normalize_advantages: bool = static(True)
    normalize_observations: bool = static(False)
    scale_rewards: bool = static(False)
    init_log_std: float = static(0.0)
    sde: bool = static(False)
    sde_sample_freq: int = static(-1)
    cg_iters: int = static(10)
    backtrack_iters: int = static(10)
    vf_epochs: int = static(10)
    vf_minibatches: int = static(4)
    gamma: float = leaf(0.99)
    gae_lambda: float = leaf(0.98)
    max_kl: float = leaf(0.01)
    damping: float = leaf(0.1)
    backtrack_coef: float = leaf(0.8)
    vf_lr: float = leaf(1e-3)
    max_grad_norm: float = leaf(0.5)

    def validate(self) -> None:
        validate_common(self, TRPO)
        check_networks(self)
        check_positive_ints(self, ("cg_iters", "backtrack_iters", "vf_epochs", "vf_minibatches"))
        batch = self.num_envs * self.num_steps
        if batch % self.vf_minibatches:
            raise ConfigError(
                f"the batch num_envs*num_steps={batch} does not divide into "
                f"vf_minibatches={self.vf_minibatches}; pick a divisor of {batch}."
            )
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "gae_lambda", 0.0, 1.0)
        check_range(self, "max_kl", 0.0, 10.0, low_open=True)
        check_range(self, "damping", 0.0, 1e3)
        check_range(self, "backtrack_coef", 0.0, 1.0, low_open=True)
        check_range(self, "vf_lr", 0.0, 1.0, low_open=True)
        check_range(self, "max_grad_norm", 0.0, 1e9, low_open=True)


def critic_optimizer(config: TRPOConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.vf_lr))


def init(config: TRPOConfig, key: jax.Array) -> PPOState:
    """PPO's state; the optimiser state is the critic's only (the actor moves by CG steps)."""
    return init_state(config, key, lambda p: critic_optimizer(config).init(p["critic"]))


def conjugate_gradient(
    matvec: Callable[[jax.Array], jax.Array], b: jax.Array, iters: int
) -> jax.Array:
    """Approximate solution of A x = b for symmetric positive-definite A, from x = 0."""

    def step(c: tuple[jax.Array, ...], _: None) -> tuple[tuple[jax.Array, ...], None]:
        x, r, p, rr = c
        ap = matvec(p)
        alpha = rr / (jnp.vdot(p, ap) + 1e-10)
        x, r = x + alpha * p, r - alpha * ap
        rr_new = jnp.vdot(r, r)
        return (x, r, r + (rr_new / (rr + 1e-10)) * p, rr_new), None

    (x, *_), _ = jax.lax.scan(step, (jnp.zeros_like(b), b, b, jnp.vdot(b, b)), None, iters)
    return x


def policy_step(
    config: TRPOConfig, actor: Any, actor_params: Any, batch: Batch
) -> tuple[Any, dict[str, jax.Array]]:
    """Steps 2-5: the natural-gradient step with the KL-constrained line search."""
    adv = batch.advantage
    if config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    theta_old, unravel = ravel_pytree(actor_params)
    old_dist = policy_distribution(jax.lax.stop_gradient(actor.apply(actor_params, batch.obs)))

    def dist(theta: jax.Array) -> Any:
        return policy_distribution(actor.apply(unravel(theta), batch.obs))

    def surrogate(theta: jax.Array) -> jax.Array:
        return jnp.mean(jnp.exp(dist(theta).log_prob(batch.action) - batch.log_prob) * adv)

    def mean_kl(theta: jax.Array) -> jax.Array:
        return jnp.mean(old_dist.kl_divergence(dist(theta)))

    # 2-3. natural gradient direction x ≈ F⁻¹ g
    surr_old, g = jax.value_and_grad(surrogate)(theta_old)
    fisher = lambda v: jax.jvp(jax.grad(mean_kl), (theta_old,), (v,))[1] + config.damping * v
    x = conjugate_gradient(fisher, g, config.cg_iters)
    # 4. the step that reaches the KL bound under the quadratic model
    full_step = jnp.sqrt(2.0 * config.max_kl / (jnp.vdot(x, fisher(x)) + 1e-10)) * x
    # 5. backtracking: every candidate evaluated at once, the first acceptable one taken
    fractions = config.backtrack_coef ** jnp.arange(config.backtrack_iters)
    surr, kl = jax.vmap(lambda f: (surrogate(theta_old + f * full_step),
                                   mean_kl(theta_old + f * full_step)))(fractions)
    ok = (surr > surr_old) & (kl <= config.max_kl)
    accepted = ok.any()
    fraction = jnp.where(accepted, fractions[jnp.argmax(ok)], 0.0)
    theta = theta_old + fraction * full_step
    return unravel(theta), {
        "policy_loss": -surrogate(theta),
        "improvement": surrogate(theta) - surr_old,
        "kl": mean_kl(theta),
        "step_fraction": fraction,
        "accepted": accepted.astype(jnp.float32),
    }


def update(config: TRPOConfig, state: PPOState) -> tuple[PPOState, dict[str, jax.Array]]:
    stack = make_env_stack(config)
    actor, critic = networks(config, stack)
    key, rollout_key, noise_key, critic_key = jax.random.split(state.key, 4)
    # 1. rollout and advantages
    carry, traj, batch = rollout_batch(config, stack, actor, critic, state, rollout_key, noise_key)
    # 2-5. the actor's trust-region step
    actor_params, policy_info = policy_step(config, actor, state.params["actor"], batch)

    # 6. the critic's regression on the value targets
    tx = critic_optimizer(config)

    def critic_step(c: tuple[Any, Any], mb: Batch) -> tuple[tuple[Any, Any], jax.Array]:
        params, opt_state = c
        loss, grads = jax.value_and_grad(
            lambda p: 0.5 * jnp.mean((critic.apply(p, mb.obs) - mb.target) ** 2)
        )(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (critic_params, opt_state), value_loss = epochs_of_minibatches(
        critic_key, (state.params["critic"], state.opt_state), batch,
        config.vf_epochs, config.vf_minibatches, critic_step,
    )
    params = {"actor": actor_params, "critic": critic_params}
    new_state = PPOState(params, opt_state, carry, state.env_params, key, state.update + 1)
    return new_state, {**policy_info, "value_loss": value_loss, **episode_metrics(traj)}


TRPO = Algorithm(
    name="trpo",
    config_cls=TRPOConfig,
    init=init,
    update=update,
    act=ppo_act,
    description="Trust Region Policy Optimisation: conjugate-gradient natural step, KL line search",
)
