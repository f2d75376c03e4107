"""Episodic policy gradients: REINFORCE with a learned baseline, RLOO and GRPO.

One module, the baseline a switch (``baseline``):
  - ``"critic"``: REINFORCE with a learned value baseline (Williams, 1992):
    A_t = G_t - V(s_t), G_t the discounted Monte-Carlo return to the episode's end; an
    episode still running when the window closes (or truncated by a time limit)
    bootstraps from V of the state it reached. The critic regresses on G_t.
  - ``"rloo"``: REINFORCE leave-one-out (Kool et al., 2019; Ahmadian et al., 2024):
    A_i = R_i - mean_{j≠i} R_j over the G rollouts of a group; no critic.
  - ``"grpo"``: group-relative advantage (Shao et al., 2024): A_i = (R_i - mean R) /
    (std R + eps), std over the group (ddof 0); no critic.
R_i is the undiscounted return of rollout i's episode; every step of the episode gets A_i.

Per update:
  1. reset the N = groups × G environments with one key per group, so the G members of a
     group start from the same state; run the policy for ``num_steps`` (the longest
     episode), and mask every step after each environment's first episode ended;
  2. advantages from the baseline above;
  3. ``update_epochs`` × ``num_minibatches`` steps on PPO's clipped loss over the unmasked
     steps (:func:`rlfoundry.algos.ppo.optimise`). With one epoch of one minibatch the ratio
     is 1 and the gradient is exactly REINFORCE's, E[A ∇log π]; the default (4 × 4, as in
     LOOP) reuses each costly batch of episodes for several clipped steps.

``total_steps`` counts every simulated step, masked ones included (N × num_steps per update).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlfoundry.algos.advantages import discounted_returns
from rlfoundry.algos.base import Algorithm, EnvStack, make_env_stack
from rlfoundry.algos.minibatch import flatten_time
from rlfoundry.algos.ppo import (
    Batch,
    PPOConfig,
    PPOState,
    init,
    networks,
    optimise,
    rollout_noise,
)
from rlfoundry.algos.ppo import act as ppo_act
from rlfoundry.algos.rollout import EnvCarry, Transition, collect, episode_metrics
from rlfoundry.config import leaf, static
from rlfoundry.errors import ConfigError
from rlfoundry.nets import sample_with_noise

BASELINES = ("critic", "rloo", "grpo")
GRPO_EPS = 1e-4


class PGConfig(PPOConfig):
    """Episodic policy-gradient hyperparameters (PPO's, plus the group and the baseline).

    Defaults: GRPO on CartPole-v1, 8 groups of 4 over a 500-step window, 4 clipped epochs
    of 4 minibatches at lr 1e-3 per update (solves it in about 50 updates). ``gae_lambda``,
    ``clip_value`` and ``vf_clip`` are not used (returns are Monte-Carlo).
    """

    baseline: str = static("grpo")
    group_size: int = static(4)
    num_envs: int = static(32)
    num_steps: int = static(500)
    total_steps: int = static(32 * 500 * 50)
    update_epochs: int = static(4)
    num_minibatches: int = static(4)
    lr: float = leaf(1e-3)
    ent_coef: float = leaf(0.0)
    normalize_advantages: bool = static(False)
    clip_value: bool = static(False)

    def validate(self) -> None:
        super().validate()
        if self.baseline not in BASELINES:
            raise ConfigError(
                f"baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}."
            )
        if not isinstance(self.group_size, int) or self.group_size <= 0:
            raise ConfigError(f"group_size must be a positive integer, got {self.group_size!r}.")
        if self.num_envs % self.group_size:
            raise ConfigError(
                f"num_envs={self.num_envs} does not divide into groups of "
                f"group_size={self.group_size}; pick a multiple of {self.group_size}."
            )
        if self.baseline == "rloo" and self.group_size < 2:
            raise ConfigError("rloo needs group_size >= 2 (the baseline leaves one out).")
        if self.normalize_observations or self.scale_rewards:
            raise ConfigError(
                "pg resets every environment each update, which would restart running "
                "statistics; set normalize_observations and scale_rewards to false."
            )


def group_advantages(returns: jax.Array, group_size: int, baseline: str) -> jax.Array:
    """RLOO or GRPO advantage of each rollout's return [N]; groups are consecutive runs
    of ``group_size`` rollouts."""
    r = returns.reshape(-1, group_size)
    if baseline == "rloo":
        others = (r.sum(axis=1, keepdims=True) - r) / (group_size - 1)
        adv = r - others
    else:
        adv = (r - r.mean(axis=1, keepdims=True)) / (r.std(axis=1, keepdims=True) + GRPO_EPS)
    return adv.reshape(returns.shape)


def group_reset(
    config: PGConfig, stack: EnvStack, env_params: Any, key: jax.Array
) -> EnvCarry:
    """Reset the N environments with one key per group: group members share a start state."""
    keys = jax.random.split(key, config.num_envs // config.group_size)
    obs, env_state = stack.env.reset(jnp.repeat(keys, config.group_size, axis=0), env_params)
    return EnvCarry(env_state, obs)


def first_episode_mask(traj: Transition) -> jax.Array:
    """1 on the steps of each environment's first episode in the window, 0 after it ended."""
    done = jnp.logical_or(traj.terminated, traj.truncated).astype(jnp.float32)
    ended_before = jnp.cumsum(done, axis=0) - done
    return (ended_before == 0).astype(jnp.float32)


def update(config: PGConfig, state: PPOState) -> tuple[PPOState, dict[str, jax.Array]]:
    stack = make_env_stack(config)
    actor, critic = networks(config, stack)
    key, reset_key, rollout_key, noise_key, epoch_key = jax.random.split(state.key, 5)

    # 1. one episode per environment, group members from the same start state
    start = group_reset(config, stack, state.env_params, reset_key)
    policy = lambda obs: actor.apply(state.params["actor"], obs)
    noise = rollout_noise(config, policy, start.obs, noise_key)
    act = lambda eps, obs: sample_with_noise(policy(obs), eps)
    carry, traj = collect(
        stack.env, state.env_params, start, rollout_key, config.num_steps, act, noise
    )
    mask = first_episode_mask(traj)

    # 2. advantages
    if config.baseline == "critic":
        values = critic.apply(state.params["critic"], traj.obs)
        next_values = critic.apply(state.params["critic"], traj.final_obs)
        # bootstraps from V(final obs) at truncations and at the window's end only
        returns = discounted_returns(
            traj.reward, traj.terminated, traj.truncated, next_values, config.gamma
        )
        advantages, targets = returns - values, returns
        train_config = config
    else:
        episode_return = (traj.reward * mask).sum(axis=0)
        advantages = jnp.broadcast_to(
            group_advantages(episode_return, config.group_size, config.baseline),
            traj.reward.shape,
        )
        values = targets = jnp.zeros_like(traj.reward)
        train_config = config.replace(vf_coef=0.0)  # no critic: its loss is switched off

    # 3. policy-gradient step(s) on the steps of the first episodes
    batch = flatten_time(
        Batch(traj.obs, traj.action, traj.log_prob, values, advantages, targets, mask)
    )
    params, opt_state, losses = optimise(train_config, actor, critic, state, batch, epoch_key)
    new_state = PPOState(params, opt_state, carry, state.env_params, key, state.update + 1)
    first = traj.replace(episode_done=traj.episode_done & (mask > 0))
    return new_state, {**losses, **episode_metrics(first)}


PG = Algorithm(
    name="pg",
    config_cls=PGConfig,
    init=init,
    update=update,
    act=ppo_act,
    description="Episodic policy gradient: REINFORCE with a critic, RLOO or GRPO baseline",
)
