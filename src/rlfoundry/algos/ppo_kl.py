"""PPO with an adaptive KL penalty (Schulman et al., 2017, section 4).

Per update:
  1. collect a rollout and compute GAE advantages, as PPO does;
  2. K epochs of minibatch steps maximising  r·A - β·KL  (plus value loss and entropy),
     with β the learner's current coefficient;
  3. d = mean KL(π_old || π_new) over the whole batch after the epochs, then
     β ← 2β if d > 1.5·d_target,  β ← β/2 if d < d_target/1.5.

The penalty is an :class:`~rlfoundry.objectives.Objective` (``kl_penalty``), so steps 1-2
are PPO's own (:func:`rlfoundry.algos.ppo.rollout_batch`, :func:`~rlfoundry.algos.ppo.optimise`);
this module only adds β to the state and its adaptation. With a fixed β the objective also
works inside plain PPO (``objective: {kind: kl_penalty, beta: ...}``).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rlfoundry.algos.base import Algorithm, make_env_stack
from rlfoundry.algos.ppo import (
    PPOConfig,
    PPOState,
    networks,
    optimise,
    rollout_batch,
)
from rlfoundry.algos.ppo import act as ppo_act
from rlfoundry.algos.ppo import init as ppo_init
from rlfoundry.algos.rollout import episode_metrics
from rlfoundry.config import check_range, leaf, node, register_node
from rlfoundry.nets import policy_distribution
from rlfoundry.objectives import Objective


def sample_kl(log_ratio: jax.Array) -> jax.Array:
    """Per-sample estimate of KL(π_old || π_new) from actions drawn by π_old:
    (r - 1) - log r, which is >= 0, 0 at r = 1 and unbiased."""
    return jnp.expm1(log_ratio) - log_ratio


@register_node
class KLPenalty(Objective):
    """Surrogate ``r·A - β·KL``: the drift is β times the sample KL."""

    kind = "kl_penalty"
    beta: float = leaf(1.0)

    def drift(self, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        return self.beta * sample_kl(jnp.log(ratio))

    def validate(self) -> None:
        check_range(self, "beta", 0.0, 1e6)


class PPOKLConfig(PPOConfig):
    """PPO's settings; ``objective.beta`` is the initial β and ``kl_target`` is d_target."""

    objective: Objective = node(KLPenalty)
    kl_target: float = leaf(0.01)

    def validate(self) -> None:
        super().validate()
        check_range(self, "kl_target", 0.0, 100.0, low_open=True)


class PPOKLState(PPOState):
    """PPO's state plus the current penalty coefficient β."""

    beta: jax.Array


def init(config: PPOKLConfig, key: jax.Array) -> PPOKLState:
    state = ppo_init(config, key)
    fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    return PPOKLState(**fields, beta=jnp.float32(config.objective.beta))


def adapt_beta(beta: jax.Array, kl: jax.Array, target: jax.Array | float) -> jax.Array:
    """Schulman et al.'s rule: double β when the update moved too far, halve it when too little."""
    return jnp.where(kl > 1.5 * target, beta * 2.0, jnp.where(kl < target / 1.5, beta / 2.0, beta))


def update(config: PPOKLConfig, state: PPOKLState) -> tuple[PPOKLState, dict[str, jax.Array]]:
    stack = make_env_stack(config)
    actor, critic = networks(config, stack)
    key, rollout_key, noise_key, epoch_key = jax.random.split(state.key, 4)
    carry, traj, batch = rollout_batch(config, stack, actor, critic, state, rollout_key, noise_key)

    penalised = config.replace(objective=config.objective.replace(beta=state.beta))
    params, opt_state, losses = optimise(penalised, actor, critic, state, batch, epoch_key)

    new_log_prob = policy_distribution(actor.apply(params["actor"], batch.obs)).log_prob(
        batch.action
    )
    kl = jnp.mean(sample_kl(new_log_prob - batch.log_prob))
    beta = adapt_beta(state.beta, kl, config.kl_target)
    new_state = PPOKLState(
        params, opt_state, carry, state.env_params, key, state.update + 1, beta
    )
    return new_state, {**losses, **episode_metrics(traj), "kl": kl, "beta": state.beta}


PPO_KL = Algorithm(
    name="ppo_kl",
    config_cls=PPOKLConfig,
    init=init,
    update=update,
    act=ppo_act,
    description="PPO with an adaptive KL penalty instead of the clip",
)
