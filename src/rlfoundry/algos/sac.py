"""Soft Actor-Critic (Haarnoja et al., 2018) for continuous actions, with automatic
entropy tuning (Haarnoja et al., 2018b, "SAC algorithms and applications").

SAC maximises return plus α times the policy's entropy. The policy is a Gaussian squashed
by ``tanh`` into the action box; twin critics and their Polyak-averaged targets curb
over-estimation; α is tuned so the policy's entropy stays near ``-action_dim``.

Per update (the shared off-policy loop in :mod:`rlfoundry.algos.offpolicy`): act with
sampled actions (uniformly random until ``learning_starts`` transitions are stored), store
the transitions, then ``gradient_steps`` times on a sampled minibatch:
  1. soft Q target  y = r + γ (1 - terminated) (min_i Q'_i(s', a') - α log π(a'|s')),
     a' ~ π(·|s'); regress every Q_i(s, a) on y;
  2. policy: minimise  E[α log π(ã|s) - min_i Q_i(s, ã)],  ã ~ π(·|s) reparameterised;
  3. temperature: minimise  E[-log α · (log π(ã|s) + target_entropy)],  target = -dim(A);
  4. critic targets:  θ'_i <- τ θ_i + (1 - τ) θ'_i.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlfoundry.algos.base import EnvStack
from rlfoundry.algos.offpolicy import (
    Experience,
    Learner,
    Metrics,
    OffPolicyConfig,
    OffPolicyState,
    actor_critic_algorithm,
    adam,
    critic_ensemble,
    descend,
    fit_critics,
    init_actor_critic,
    polyak,
    td_target,
    validate_off_policy,
)
from rlfoundry.algos.offpolicy_nets import (
    ActionScale,
    CriticEnsemble,
    SquashedGaussianActor,
    squashed_sample,
)
from rlfoundry.config import check_positive_ints, check_range, leaf, static


class SACConfig(OffPolicyConfig):
    """SAC hyperparameters (shared off-policy ones in :class:`OffPolicyConfig`).
    Defaults: Pendulum-v1, one gradient step per environment step."""

    num_critics: int = static(2)
    autotune: bool = static(True)
    alpha: float = leaf(1.0)  # the entropy coefficient (its initial value if autotune)

    def validate(self) -> None:
        validate_off_policy(self, SAC)
        check_positive_ints(self, ("num_critics",))
        check_range(self, "alpha", 0.0, 1e6, low_open=self.autotune)


Networks = tuple[SquashedGaussianActor, CriticEnsemble, ActionScale]


def networks(config: SACConfig, stack: EnvStack) -> Networks:
    actor = SquashedGaussianActor(stack.action_dim, config.hidden_sizes, config.activation)
    scale = ActionScale.from_bounds(stack.action_low, stack.action_high, stack.action_dim)
    return actor, critic_ensemble(config), scale


def init(config: SACConfig, key: jax.Array) -> OffPolicyState:
    log_alpha = jnp.log(jnp.asarray(config.alpha, jnp.float32))
    return init_actor_critic(
        config, key, lambda stack: networks(config, stack)[0], ("critic",),
        {"log_alpha": log_alpha},
    )


def gradient_step(
    config: SACConfig, nets: Networks, learner: Learner, batch: Experience, key: jax.Array
) -> tuple[Learner, Metrics]:
    actor, critic, scale = nets
    tx = adam(config)
    params, opt = learner.params, learner.opt_state
    alpha = jnp.exp(params["log_alpha"])
    next_noise, noise = jax.random.normal(key, (2, *batch.action.shape))

    # 1. soft Q target from the target critics and a fresh action at s'
    next_action, next_log_prob = squashed_sample(
        *actor.apply(params["actor"], batch.next_obs), next_noise, scale
    )
    next_q = critic.apply(learner.target_params["critic"], batch.next_obs, next_action).min(0)
    y = td_target(batch.reward, batch.terminated, next_q - alpha * next_log_prob, config.gamma)
    critic_params, critic_opt, q_loss, q_mean = fit_critics(
        critic, tx, params["critic"], opt["critic"], batch, y
    )

    # 2. policy improvement against the updated critics
    def policy_loss(actor_params: Any) -> tuple[jax.Array, jax.Array]:
        action, log_prob = squashed_sample(*actor.apply(actor_params, batch.obs), noise, scale)
        q = critic.apply(critic_params, batch.obs, action).min(0)
        return (alpha * log_prob - q).mean(), log_prob

    actor_params, actor_opt, actor_loss, log_prob = descend(
        tx, policy_loss, params["actor"], opt["actor"]
    )

    # 3. temperature: raise α when the entropy -log π is below the target, else lower it
    log_alpha, alpha_opt = params["log_alpha"], opt["log_alpha"]
    if config.autotune:
        target_entropy = -batch.action.shape[-1]  # -dim(A)
        gap = jax.lax.stop_gradient(log_prob + target_entropy)
        log_alpha, alpha_opt, _, _ = descend(
            tx, lambda la: (-(la * gap).mean(), None), log_alpha, alpha_opt
        )

    # 4. Polyak-averaged critic targets
    new_params = {"actor": actor_params, "critic": critic_params, "log_alpha": log_alpha}
    critic_target = polyak(critic_params, learner.target_params["critic"], config.tau)
    learner = Learner(
        params=new_params,
        target_params={"critic": critic_target},
        opt_state={"actor": actor_opt, "critic": critic_opt, "log_alpha": alpha_opt},
        steps=learner.steps + 1,
    )
    return learner, {
        "q_loss": q_loss,
        "q_mean": q_mean,
        "actor_loss": actor_loss,
        "alpha": alpha,
        "entropy": -log_prob.mean(),
    }


def policy(
    config: SACConfig, nets: Networks, actor_params: Any, obs: jax.Array,
    normal: jax.Array | None = None,
) -> jax.Array:
    """A sample ``scale(tanh(mean + std * normal))``, or the squashed mean without noise."""
    actor, _, scale = nets
    mean, log_std = actor.apply(actor_params, obs)
    if normal is None:
        return scale(jnp.tanh(mean))
    return squashed_sample(mean, log_std, normal, scale)[0]


SAC = actor_critic_algorithm(
    "sac", SACConfig, init, networks, policy, gradient_step,
    description="Soft Actor-Critic (twin Q, tanh-Gaussian policy, automatic entropy tuning)",
)
