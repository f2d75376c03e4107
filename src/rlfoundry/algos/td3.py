"""Twin Delayed DDPG (Fujimoto et al., 2018) and DDPG (Lillicrap et al., 2016) as its special
case, for continuous actions.

A deterministic actor μ(s) is trained to maximise a learned Q(s, μ(s)); exploration adds
Gaussian noise to its actions. TD3 adds three fixes to DDPG's over-estimation and
variance: twin critics with the minimum in the target, target policy smoothing (clipped
noise on the target action), and delayed actor and target updates. DDPG here is
"our DDPG" of the TD3 paper: one critic, no smoothing, no delay (``DDPGConfig``).

Per update (the shared off-policy loop in :mod:`rlfoundry.algos.offpolicy`): act with
``μ(s) + N(0, σ_explore)`` (uniformly random until ``learning_starts`` transitions are
stored), store the transitions, then ``gradient_steps`` times on a sampled minibatch:
  1. target action  ã = clip(μ'(s') + clip(ε, -c, c), low, high),  ε ~ N(0, σ_target);
     y = r + γ (1 - terminated) min_i Q'_i(s', ã); regress every Q_i(s, a) on y;
  2. every ``policy_delay`` steps: the actor ascends Q_1(s, μ(s)), then the targets
     move by Polyak averaging, θ' <- τ θ + (1 - τ) θ' (actor and critics).
Noise scales are fractions of the action box's half-range.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlfoundry.algos.base import Algorithm, EnvStack
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
from rlfoundry.algos.offpolicy_nets import ActionScale, CriticEnsemble, DeterministicActor
from rlfoundry.config import check_positive_ints, check_range, leaf, static
from rlfoundry.errors import ConfigError


class TD3Config(OffPolicyConfig):
    """TD3 hyperparameters (shared off-policy ones in :class:`OffPolicyConfig`).
    Defaults: the TD3 paper's noise, delay and τ on Pendulum-v1."""

    num_critics: int = static(2)
    policy_delay: int = static(2)
    exploration_noise: float = leaf(0.1)
    target_noise: float = leaf(0.2)
    target_noise_clip: float = leaf(0.5)

    def validate(self) -> None:
        _validate(self, TD3)


class DDPGConfig(TD3Config):
    """DDPG: TD3 with one critic, no target policy smoothing and no delay."""

    num_critics: int = static(1)
    policy_delay: int = static(1)
    target_noise: float = leaf(0.0)
    target_noise_clip: float = leaf(0.0)

    def validate(self) -> None:
        _validate(self, DDPG)


def _validate(config: TD3Config, algo: Algorithm) -> None:
    validate_off_policy(config, algo)
    check_positive_ints(config, ("num_critics", "policy_delay"))
    if config.gradient_steps % config.policy_delay:
        raise ConfigError(
            f"gradient_steps={config.gradient_steps} is not a multiple of "
            f"policy_delay={config.policy_delay}; pick a multiple so every update makes "
            "the same number of actor steps."
        )
    for name in ("exploration_noise", "target_noise", "target_noise_clip"):
        check_range(config, name, 0.0, 1e3)


Networks = tuple[DeterministicActor, CriticEnsemble, ActionScale]


def networks(config: TD3Config, stack: EnvStack) -> Networks:
    scale = ActionScale.from_bounds(stack.action_low, stack.action_high, stack.action_dim)
    actor = DeterministicActor(stack.action_dim, scale, config.hidden_sizes, config.activation)
    return actor, critic_ensemble(config), scale


def init(config: TD3Config, key: jax.Array) -> OffPolicyState:
    return init_actor_critic(
        config, key, lambda stack: networks(config, stack)[0], ("actor", "critic")
    )


def gradient_step(
    config: TD3Config, nets: Networks, learner: Learner, batch: Experience, key: jax.Array
) -> tuple[Learner, Metrics]:
    actor, critic, scale = nets
    tx = adam(config)
    params, targets, opt = learner.params, learner.target_params, learner.opt_state

    # 1. critics regress on the target with a smoothed target action
    eps = config.target_noise * jax.random.normal(key, batch.action.shape)
    eps = jnp.clip(eps, -config.target_noise_clip, config.target_noise_clip)
    next_action = scale.perturb(actor.apply(targets["actor"], batch.next_obs), eps)
    next_q = critic.apply(targets["critic"], batch.next_obs, next_action).min(0)
    y = td_target(batch.reward, batch.terminated, next_q, config.gamma)
    critic_params, critic_opt, q_loss, q_mean = fit_critics(
        critic, tx, params["critic"], opt["critic"], batch, y
    )
    steps = learner.steps + 1
    critic_done = Learner(
        {**params, "critic": critic_params}, targets, {**opt, "critic": critic_opt}, steps
    )

    # 2. delayed: the actor ascends Q_1(s, μ(s)); targets follow by Polyak averaging
    def improve_policy(current: Learner) -> tuple[Learner, jax.Array]:
        def policy_loss(actor_params: Any) -> tuple[jax.Array, None]:
            action = actor.apply(actor_params, batch.obs)
            return -critic.apply(current.params["critic"], batch.obs, action)[0].mean(), None

        actor_params, actor_opt, loss, _ = descend(
            tx, policy_loss, current.params["actor"], current.opt_state["actor"]
        )
        new_params = {**current.params, "actor": actor_params}
        return current.replace(
            params=new_params,
            target_params=polyak(new_params, current.target_params, config.tau),
            opt_state={**current.opt_state, "actor": actor_opt},
        ), loss

    if config.policy_delay == 1:
        learner, actor_loss = improve_policy(critic_done)
    else:
        learner, actor_loss = jax.lax.cond(
            steps % config.policy_delay == 0,
            improve_policy,
            lambda current: (current, jnp.float32(jnp.nan)),
            critic_done,
        )
    return learner, {"q_loss": q_loss, "q_mean": q_mean, "actor_loss": actor_loss}


def policy(
    config: TD3Config, nets: Networks, actor_params: Any, obs: jax.Array,
    normal: jax.Array | None = None,
) -> jax.Array:
    """μ(s), plus ``exploration_noise`` times the standard-normal noise if given."""
    actor, _, scale = nets
    mean = actor.apply(actor_params, obs)
    if normal is None:
        return mean
    return scale.perturb(mean, config.exploration_noise * normal)


TD3 = actor_critic_algorithm(
    "td3", TD3Config, init, networks, policy, gradient_step,
    description="Twin Delayed DDPG (twin Q, target policy smoothing, delayed actor)",
)
DDPG = actor_critic_algorithm(
    "ddpg", DDPGConfig, init, networks, policy, gradient_step,
    description="Deep Deterministic Policy Gradient (TD3 with one critic, no smoothing/delay)",
)
