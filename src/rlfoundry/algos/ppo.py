"""Proximal Policy Optimisation (Schulman et al., 2017), discrete and continuous.

Per update:
  1. collect T steps from N environments with the current policy;
  2. evaluate V on the visited and reached (pre-reset) observations, batched;
  3. GAE advantages, bootstrapping truncated episodes from V(final observation);
  4. K epochs of shuffled minibatches maximising the objective's surrogate
     (PPO clip by default; any :class:`rlfoundry.objectives.Objective`)
     minus the value loss (optionally clipped) plus an entropy bonus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlfoundry.algos.advantages import gae
from rlfoundry.algos.base import Algorithm, EnvStack, make_env_stack, validate_common
from rlfoundry.algos.minibatch import epochs_of_minibatches, flatten_time
from rlfoundry.algos.rollout import EnvCarry, Transition, collect, episode_metrics
from rlfoundry.config import check_positive_ints, check_range, leaf, node, static
from rlfoundry.data.imitation import ImitationConfig, imitation_term, pretrain
from rlfoundry.errors import ConfigError
from rlfoundry.nets import (
    Critic,
    DiscreteActor,
    GaussianActor,
    deterministic_action,
    policy_distribution,
    policy_noise,
    sample_with_noise,
)
from rlfoundry.objectives import Objective, PPOClip
from rlfoundry.rewards.spec import RewardConfig


class PPOConfig(struct.PyTreeNode):
    """PPO hyperparameters. Defaults: the classic-control settings of CleanRL/PureJaxRL."""

    env: str = static("CartPole-v1")
    total_steps: int = static(500_000)
    num_envs: int = static(4)
    num_steps: int = static(128)
    update_epochs: int = static(4)
    num_minibatches: int = static(4)
    network: str = static("mlp")
    hidden_sizes: tuple[int, ...] = static((64, 64))
    activation: str = static("tanh")
    anneal_lr: bool = static(True)
    normalize_advantages: bool = static(True)
    clip_value: bool = static(True)
    normalize_observations: bool = static(False)
    scale_rewards: bool = static(False)
    lr: float = leaf(2.5e-4)
    gamma: float = leaf(0.99)
    gae_lambda: float = leaf(0.95)
    ent_coef: float = leaf(0.01)
    vf_coef: float = leaf(0.5)
    max_grad_norm: float = leaf(0.5)
    # clip the actor's and the critic's gradient norms separately (see clip_each_network)
    clip_per_network: bool = static(False)
    vf_clip: float = leaf(0.2)
    init_log_std: float = static(0.0)
    sde: bool = static(False)
    sde_sample_freq: int = static(-1)
    objective: Objective = node(PPOClip)
    reward: RewardConfig = node(RewardConfig)
    imitation: ImitationConfig = node(ImitationConfig)

    def validate(self) -> None:
        validate_common(self, PPO)
        check_positive_ints(self, ("update_epochs", "num_minibatches"))
        check_networks(self)
        batch = self.num_envs * self.num_steps
        if batch % self.num_minibatches:
            raise ConfigError(
                f"the batch num_envs*num_steps={batch} does not divide into "
                f"num_minibatches={self.num_minibatches}; pick a divisor of {batch}."
            )
        check_range(self, "lr", 0.0, 1.0, low_open=True)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "gae_lambda", 0.0, 1.0)
        check_range(self, "ent_coef", 0.0, 100.0)
        check_range(self, "vf_coef", 0.0, 100.0)
        check_range(self, "max_grad_norm", 0.0, 1e9, low_open=True)
        check_range(self, "vf_clip", 0.0, 1e9, low_open=True)
        self.objective.validate()


def check_networks(config: Any) -> None:
    """Network settings shared by every actor-critic learner built on :func:`networks`."""
    sizes = config.hidden_sizes
    if not sizes or any((not isinstance(h, int)) or h <= 0 for h in sizes):
        raise ConfigError(f"hidden_sizes must be positive integers, got {config.hidden_sizes}.")
    if config.network not in ("mlp", "cnn"):
        raise ConfigError(f"network must be 'mlp' or 'cnn', got {config.network!r}.")
    if config.activation not in ("tanh", "relu", "gelu", "silu"):
        raise ConfigError(
            f"activation must be tanh, relu, gelu or silu, got {config.activation!r}."
        )
    if config.sde_sample_freq == 0 or config.sde_sample_freq < -1:
        raise ConfigError(
            f"sde_sample_freq must be a positive number of steps or -1 (once per rollout), "
            f"got {config.sde_sample_freq}."
        )


class PPOState(struct.PyTreeNode):
    """Everything that changes during training; a checkpoint is exactly this."""

    params: Any
    opt_state: Any
    env: EnvCarry
    env_params: Any
    key: jax.Array
    update: jax.Array


class Batch(struct.PyTreeNode):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array
    weight: jax.Array


def networks(config: PPOConfig, stack: EnvStack) -> tuple[Any, Critic]:
    cnn = config.network == "cnn"
    # flat observations that pack an image (the maze's view) declare its shape
    image = tuple(getattr(stack.env, "image_shape", ())) if cnn else ()
    if stack.discrete:
        actor = DiscreteActor(
            stack.action_dim, config.hidden_sizes, config.activation, cnn, image
        )
    else:
        actor = GaussianActor(
            stack.action_dim, config.hidden_sizes, config.activation, cnn, config.init_log_std,
            image, config.sde,
        )
    return actor, Critic(config.hidden_sizes, config.activation, cnn, image)


def num_updates(config: PPOConfig) -> int:
    return config.total_steps // (config.num_envs * config.num_steps)


def clip_each_network(max_norm: Any) -> optax.GradientTransformation:
    """Global-norm clipping applied to each top-level entry of the gradient (``actor``,
    ``critic``) on its own. With one joint norm, a large value error (unclipped rewards, γ
    near 1) can fill the whole budget and shrink the policy's step with it. Stateless, like
    ``optax.clip_by_global_norm``, so optimiser states (and checkpoints) keep their shape."""
    joint = optax.clip_by_global_norm(max_norm)

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        if not isinstance(updates, dict):
            return joint.update(updates, state, params)
        return {k: joint.update(v, state)[0] for k, v in updates.items()}, state

    return optax.GradientTransformation(joint.init, update)


def optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Adam with global-norm clipping (one joint norm, as in CleanRL and PureJaxRL, or one
    per network with ``clip_per_network``); the learning rate decays linearly per update if
    ``anneal_lr`` (rebuilt from the config on every call, so ``lr`` can be a vmapped leaf)."""
    steps_per_update = config.update_epochs * config.num_minibatches
    total = num_updates(config)

    def schedule(count: jax.Array) -> jax.Array:
        if not config.anneal_lr:
            return config.lr
        return config.lr * (1.0 - (count // steps_per_update) / total)

    clip = clip_each_network if config.clip_per_network else optax.clip_by_global_norm
    return optax.chain(clip(config.max_grad_norm), optax.adam(schedule, eps=1e-5))


def init(config: PPOConfig, key: jax.Array) -> PPOState:
    return init_state(config, key, optimizer(config).init)


def init_state(config: Any, key: jax.Array, init_opt: Callable[[Any], Any]) -> PPOState:
    """Actor and critic parameters, ``init_opt(params)`` as the optimiser state, and
    freshly reset environments: the start of every actor-critic learner here."""
    stack = make_env_stack(config)
    actor, critic = networks(config, stack)
    key, actor_key, critic_key, env_key = jax.random.split(key, 4)
    obs, env_state = stack.env.reset(env_key, stack.params)
    dummy = jnp.zeros((1, *stack.obs_shape))
    params = {"actor": actor.init(actor_key, dummy), "critic": critic.init(critic_key, dummy)}
    imitation = getattr(config, "imitation", None)
    if imitation is not None and imitation.active:  # behaviour-cloning warm start
        key, bc_key = jax.random.split(key)
        params["actor"] = pretrain(imitation, config.env, stack, actor, params["actor"], bc_key)
    return PPOState(
        params=params,
        opt_state=init_opt(params),
        env=EnvCarry(env_state, obs),
        env_params=stack.params,
        key=key,
        update=jnp.int32(0),
    )


def policy_loss(
    config: PPOConfig, params: Any, actor: Any, critic: Any, mb: Batch, progress: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's loss on one minibatch: -surrogate + c_v * value loss - c_e * entropy."""
    dist = policy_distribution(actor.apply(params["actor"], mb.obs))
    return loss_terms(config, dist, critic.apply(params["critic"], mb.obs), mb, progress)


def loss_terms(
    config: PPOConfig, dist: Any, value: jax.Array, mb: Batch, progress: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`policy_loss` given the network's outputs on the minibatch (any leading shape),
    so networks that are not applied observation by observation (an LSTM) share it."""
    log_prob = dist.log_prob(mb.action)
    log_ratio = log_prob - mb.log_prob
    ratio = jnp.exp(log_ratio)
    adv = mb.advantage
    if config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    weight_sum = jnp.maximum(mb.weight.sum(), 1e-8)
    wmean = lambda x: (mb.weight * x).sum() / weight_sum
    surrogate = config.objective.surrogate(ratio, log_ratio, adv, progress)
    pg_loss = -wmean(surrogate)

    v_loss = (value - mb.target) ** 2
    if config.clip_value:
        clipped = mb.value + jnp.clip(value - mb.value, -config.vf_clip, config.vf_clip)
        v_loss = jnp.maximum(v_loss, (clipped - mb.target) ** 2)
    v_loss = 0.5 * wmean(v_loss)
    entropy = wmean(dist.entropy())
    loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
    return loss, {
        "policy_loss": pg_loss,
        "value_loss": v_loss,
        "entropy": entropy,
        "approx_kl": wmean((ratio - 1.0) - log_ratio),
        "drift_active": wmean((config.objective.drift(ratio, adv, progress) > 0).astype(float)),
    }


def rollout_noise(
    config: Any, policy: Callable[[jax.Array], Any], obs: jax.Array, key: jax.Array
) -> jax.Array:
    """The exploration noise of a whole rollout, drawn before it: per step, or with gSDE
    one noise matrix per ``sde_sample_freq`` steps (-1: one for the rollout)."""
    hold = config.sde_sample_freq if config.sde else 1
    return policy_noise(key, jax.eval_shape(policy, obs), config.num_steps, hold)


def rollout_batch(
    config: Any, stack: EnvStack, actor: Any, critic: Any, state: PPOState,
    rollout_key: jax.Array, noise_key: jax.Array,
) -> tuple[EnvCarry, Transition, Batch]:
    """Steps 1-3 of the update: collect a rollout with the current actor, evaluate V on the
    visited and reached observations, and compute GAE advantages and value targets."""
    policy = lambda obs: actor.apply(state.params["actor"], obs)
    noise = rollout_noise(config, policy, state.env.obs, noise_key)
    act = lambda eps, obs: sample_with_noise(policy(obs), eps)
    carry, traj = collect(
        stack.env, state.env_params, state.env, rollout_key, config.num_steps, act, noise
    )

    values = critic.apply(state.params["critic"], traj.obs)
    next_values = critic.apply(state.params["critic"], traj.final_obs)
    advantages, targets = gae(
        traj.reward, values, next_values, traj.terminated, traj.truncated,
        config.gamma, config.gae_lambda,
    )
    batch = flatten_time(
        Batch(traj.obs, traj.action, traj.log_prob, values, advantages, targets,
              jnp.ones_like(values))
    )
    return carry, traj, batch


def optimise(
    config: PPOConfig, actor: Any, critic: Any, state: PPOState, batch: Batch, key: jax.Array
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """Step 4: K epochs of minibatch Adam steps on :func:`policy_loss`; returns the new
    parameters, optimiser state and the losses averaged over minibatches.

    With demonstrations (``config.imitation.data``) the loss gains the imitation term of
    :func:`rlfoundry.data.imitation.imitation_term`; without, nothing extra is traced."""
    tx = optimizer(config)
    progress = state.update / num_updates(config)
    imitation = getattr(config, "imitation", None)
    extra = None
    if imitation is not None and imitation.active:
        key, demo_key = jax.random.split(key)
        extra = imitation_term(imitation, config.env, make_env_stack(config), actor,
                               state.update, demo_key)

    def loss_fn(p: Any, mb: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
        loss, info = policy_loss(config, p, actor, critic, mb, progress)
        if extra is not None:
            bc, nll = extra(p["actor"])
            loss, info = loss + bc, {**info, "imitation_nll": nll}
        return loss, info

    def sgd_step(c: tuple[Any, Any], mb: Batch) -> tuple[tuple[Any, Any], dict[str, jax.Array]]:
        params, opt_state = c
        grads, info = jax.grad(loss_fn, has_aux=True)(params, mb)
        updates, opt_state = tx.update(grads, opt_state, params)
        # before clipping: how hard max_grad_norm bites
        info = {**info, "grad_norm": optax.tree.norm(grads)}
        return (optax.apply_updates(params, updates), opt_state), info

    (params, opt_state), losses = epochs_of_minibatches(
        key, (state.params, state.opt_state), batch,
        config.update_epochs, config.num_minibatches, sgd_step,
    )
    return params, opt_state, losses


def update(config: PPOConfig, state: PPOState) -> tuple[PPOState, dict[str, jax.Array]]:
    stack = make_env_stack(config)
    actor, critic = networks(config, stack)
    key, rollout_key, epoch_key = jax.random.split(state.key, 3)
    key, noise_key = jax.random.split(key)
    carry, traj, batch = rollout_batch(config, stack, actor, critic, state, rollout_key, noise_key)
    params, opt_state, losses = optimise(config, actor, critic, state, batch, epoch_key)
    new_state = PPOState(params, opt_state, carry, state.env_params, key, state.update + 1)
    return new_state, {**losses, **episode_metrics(traj)}


def act(
    config: PPOConfig, state: PPOState, obs: jax.Array, key: jax.Array, deterministic: bool
) -> jax.Array:
    """The trained policy's action for a batch of observations."""
    stack = make_env_stack(config, num_envs=1)
    actor, _ = networks(config, stack)
    out = actor.apply(state.params["actor"], obs)
    if deterministic:
        return deterministic_action(out)
    return policy_distribution(out).sample(seed=key)


PPO = Algorithm(
    name="ppo",
    config_cls=PPOConfig,
    init=init,
    update=update,
    act=act,
    description="Proximal Policy Optimisation (clip or any pluggable objective)",
)
