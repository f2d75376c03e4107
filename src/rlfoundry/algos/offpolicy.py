"""What every off-policy learner (DQN, SAC, TD3, DDPG) shares: state, update loop, targets.

One update, identical for all of them:
  1. act for T steps in N environments with the behaviour policy (random actions until
     ``learning_starts`` transitions are stored, then the learner's exploration policy);
  2. write the N*T transitions into the replay buffer, storing the *pre-reset* final
     observation as the next observation;
  3. once the buffer holds ``learning_starts`` transitions, take ``gradient_steps``
     gradient steps on uniformly sampled minibatches (a ``lax.scan``; the check is a
     ``lax.cond``, so the whole run is one compiled program).

A learner supplies its behaviour policy and one gradient step; the bootstrapped target
:func:`td_target` and target-network averaging :func:`polyak` are shared, so the
truncation rule (bootstrap through time limits, not through terminations) lives once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlfoundry.algos.base import Algorithm, EnvStack, make_env_stack, validate_common
from rlfoundry.algos.offpolicy_nets import CriticEnsemble
from rlfoundry.algos.replay import ReplayBuffer
from rlfoundry.algos.rollout import EnvCarry, collect, episode_metrics
from rlfoundry.config import check_positive_ints, check_range, leaf, static
from rlfoundry.errors import ConfigError


class Experience(struct.PyTreeNode):
    """One stored transition. ``next_obs`` is where the step led (the final observation of
    an episode that ended, not the reset one); ``terminated`` excludes time-limit ends."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    next_obs: jax.Array


class Learner(struct.PyTreeNode):
    """What gradient steps change: online and target parameters, optimiser states and the
    number of gradient steps taken (for target-update periods and policy delays)."""

    params: Any
    target_params: Any
    opt_state: Any
    steps: jax.Array


class OffPolicyState(struct.PyTreeNode):
    """Everything that changes during training; a checkpoint is exactly this.

    ``noise`` is each environment's latest exploration noise (continuous actions), the
    state of the correlated noise process when ``noise_correlation > 0``."""

    learner: Learner
    buffer: ReplayBuffer
    env: EnvCarry
    env_params: Any
    key: jax.Array
    update: jax.Array
    noise: jax.Array


Metrics = dict[str, jax.Array]
GradientStep = Callable[[Learner, Experience, jax.Array], tuple[Learner, Metrics]]
Behaviour = Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]
Policy = Callable[[jax.Array, jax.Array], jax.Array]


# --- configuration -----------------------------------------------------------------------


class OffPolicyConfig(struct.PyTreeNode):
    """Settings every off-policy learner has; each learner's config extends this one and
    may override defaults. Static fields shape the program, leaves can be vmapped.

    Defaults are for Pendulum-v1 with SAC/TD3 on a small CPU: one gradient step per
    environment step (4 envs x 16 steps, then 64 gradient steps), 64x64 networks,
    minibatches of 128 and τ = 0.02 (faster than the papers' 0.005: at 15k steps both
    reach greedy returns of about -150 with it, TD3 lagging by ~3k steps with 0.005).
    """

    env: str = static("Pendulum-v1")
    total_steps: int = static(20_000)
    num_envs: int = static(4)
    num_steps: int = static(16)
    buffer_size: int = static(100_000)
    batch_size: int = static(128)
    learning_starts: int = static(1_000)
    gradient_steps: int = static(64)
    hidden_sizes: tuple[int, ...] = static((64, 64))
    activation: str = static("relu")
    lr: float = leaf(1e-3)
    gamma: float = leaf(0.99)
    tau: float = leaf(0.02)
    noise_correlation: float = leaf(0.0)


def validate_off_policy(config: OffPolicyConfig, algo: Algorithm) -> None:
    """Checks every off-policy config shares (on top of :func:`validate_common`)."""
    validate_common(config, algo)
    check_positive_ints(config, ("buffer_size", "batch_size", "gradient_steps"))
    starts = config.learning_starts
    if not isinstance(starts, int) or isinstance(starts, bool) or starts < 0:
        raise ConfigError(f"learning_starts must be a non-negative integer, got {starts!r}.")
    per_update = config.num_envs * config.num_steps
    if config.buffer_size < per_update:
        raise ConfigError(
            f"buffer_size={config.buffer_size} cannot hold one update's "
            f"num_envs*num_steps={per_update} transitions; raise buffer_size."
        )
    if starts > config.buffer_size:
        raise ConfigError(
            f"learning_starts={starts} exceeds buffer_size={config.buffer_size}, so learning "
            "would never start; lower learning_starts or raise buffer_size."
        )
    sizes = config.hidden_sizes
    if not sizes or any((not isinstance(h, int)) or isinstance(h, bool) or h <= 0 for h in sizes):
        raise ConfigError(f"hidden_sizes must be positive integers, got {config.hidden_sizes}.")
    if config.activation not in ("tanh", "relu", "gelu", "silu"):
        raise ConfigError(
            f"activation must be tanh, relu, gelu or silu, got {config.activation!r}."
        )
    check_range(config, "lr", 0.0, 1.0, low_open=True)
    check_range(config, "gamma", 0.0, 1.0)
    check_range(config, "tau", 0.0, 1.0, low_open=True)
    check_range(config, "noise_correlation", 0.0, 0.9999)
    if isinstance(config.noise_correlation, (int, float)) and config.noise_correlation > 0 and (
        "continuous" not in algo.action_spaces
    ):
        raise ConfigError(f"noise_correlation applies to continuous actions; {algo.name} acts "
                          "in discrete spaces (leave it at 0).")


# --- state ---------------------------------------------------------------------------------


def init_state(
    config: Any, stack: EnvStack, key: jax.Array, learner: Learner, action_example: jax.Array
) -> OffPolicyState:
    """Reset the environments and create an empty buffer of ``config.buffer_size``."""
    key, env_key, noise_key = jax.random.split(key, 3)
    obs, env_state = stack.env.reset(env_key, stack.params)
    example = Experience(obs[0], action_example, jnp.float32(0.0), jnp.bool_(False), obs[0])
    return OffPolicyState(
        learner=learner,
        buffer=ReplayBuffer.create(example, config.buffer_size),
        env=EnvCarry(env_state, obs),
        env_params=stack.params,
        key=key,
        update=jnp.int32(0),
        noise=jax.random.normal(noise_key, (config.num_envs, *jnp.shape(action_example)),
                                jnp.float32),
    )


def env_steps_done(config: Any, state: OffPolicyState) -> jax.Array:
    """Environment steps taken before this update (over all N environments)."""
    return state.update * (config.num_envs * config.num_steps)


# --- acting --------------------------------------------------------------------------------


def correlated(previous: jax.Array, white: jax.Array, rho: jax.Array | float) -> jax.Array:
    """The AR(1) process ``x_t = ρ x_{t-1} + √(1 - ρ²) ε_t`` over the leading (time) axis of
    ``white`` (standard normal ε), continuing from ``previous``: every x_t is still standard
    normal, but consecutive ones are correlated ρ (the discrete Ornstein-Uhlenbeck process;
    ρ = 0 gives ``white`` back). Temporally coherent pushes explore sparse-reward tasks
    such as MountainCarContinuous that independent noise almost never solves."""
    scale = jnp.sqrt(1.0 - rho**2)

    def step(x: jax.Array, eps: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = rho * x + scale * eps
        return x, x

    return jax.lax.scan(step, previous, white)[1]


def behaviour(
    config: Any,
    state: OffPolicyState,
    stack: EnvStack,
    key: jax.Array,
    policy: Policy,
    epsilon: jax.Array | float = 0.0,
) -> tuple[Any, Behaviour]:
    """Pre-drawn noise for T steps and the ``act(noise_t, obs)`` that :func:`collect` runs.

    Each action is uniformly random with probability ``epsilon`` (1 while the buffer
    warms up to ``learning_starts``), else ``policy(noise_t, obs)``, where the noise is
    standard normal shaped like continuous actions (correlated across steps by
    ``config.noise_correlation``, see :func:`correlated`) or, for discrete actions,
    standard Gumbel with one value per action (discrete SAC samples
    ``argmax(logits + noise)``; DQN ignores it)."""
    shape = (config.num_steps, config.num_envs)
    coin_key, random_key, normal_key = jax.random.split(key, 3)
    warming_up = env_steps_done(config, state) < config.learning_starts
    epsilon = jnp.where(warming_up, 1.0, epsilon)
    if stack.discrete:  # Gumbel noise, one per action: argmax(logits + noise) samples
        random_actions = jax.random.randint(random_key, shape, 0, stack.action_dim)
        normal = jax.random.gumbel(normal_key, (*shape, stack.action_dim))
    else:
        low = jnp.broadcast_to(jnp.asarray(stack.action_low, jnp.float32), (stack.action_dim,))
        high = jnp.broadcast_to(jnp.asarray(stack.action_high, jnp.float32), (stack.action_dim,))
        random_actions = jax.random.uniform(
            random_key, (*shape, stack.action_dim), minval=low, maxval=high
        )
        normal = correlated(state.noise, jax.random.normal(normal_key, (*shape, stack.action_dim)),
                            config.noise_correlation)
    noise = (jax.random.uniform(coin_key, shape), random_actions, normal)

    def act(step_noise: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        coin, random_action, normal_t = step_noise
        chosen = policy(normal_t, obs)
        explore = (coin < epsilon).reshape(coin.shape + (1,) * (chosen.ndim - coin.ndim))
        return jnp.where(explore, random_action, chosen), jnp.zeros(coin.shape)

    return noise, act


# --- learning ------------------------------------------------------------------------------


def td_target(
    reward: jax.Array, terminated: jax.Array, next_value: jax.Array, gamma: jax.Array | float
) -> jax.Array:
    """``r + γ (1 - terminated) V(next_obs)``: bootstrap unless the episode truly ended.

    A time-limit truncation is not a termination, so it bootstraps from the value of the
    observation the agent actually reached (stored as ``next_obs``).
    """
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * next_value


def descend(
    tx: optax.GradientTransformation,
    loss_fn: Callable[[Any], tuple[jax.Array, Any]],
    params: Any,
    opt_state: Any,
) -> tuple[Any, Any, jax.Array, Any]:
    """One optimiser step on ``loss_fn(params) -> (loss, aux)``: new params, optimiser
    state, the loss and its auxiliary output."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, aux


def polyak(online: Any, target: Any, tau: jax.Array | float) -> Any:
    """``target <- tau * online + (1 - tau) * target``; ``tau = 1`` copies (a hard update)."""
    return jax.tree.map(lambda o, t: tau * o + (1.0 - tau) * t, online, target)


def masked_mean(values: jax.Array) -> jax.Array:
    """Mean over gradient steps of a metric that is NaN on steps where it was not computed
    (e.g. TD3's actor loss between delayed policy updates); 0 if never computed."""
    count = jnp.sum(~jnp.isnan(values))
    return jnp.where(count > 0, jnp.nansum(values) / jnp.maximum(count, 1), 0.0)


def collect_and_learn(
    config: Any,
    state: OffPolicyState,
    stack: EnvStack,
    policy: Policy,
    gradient_step: GradientStep,
    epsilon: jax.Array | float = 0.0,
) -> tuple[OffPolicyState, Metrics]:
    """One off-policy update (see the module docstring).

    ``policy(normal_noise, obs) -> action`` is the learner's exploration policy (see
    :func:`behaviour` for ``epsilon`` and the warm-up); ``gradient_step(learner, batch,
    key) -> (learner, metrics)`` is its update on one minibatch. Returns the new state and
    metrics: the gradient-step metrics averaged over the update (zeros before learning
    starts) and the finished episodes' statistics.
    """
    key, noise_key, rollout_key, learn_key = jax.random.split(state.key, 4)
    noise, act = behaviour(config, state, stack, noise_key, policy, epsilon)
    carry, traj = collect(
        stack.env, state.env_params, state.env, rollout_key, config.num_steps, act, noise
    )
    buffer = state.buffer.add_rollout(
        Experience(traj.obs, traj.action, traj.reward, traj.terminated, traj.final_obs)
    )

    def learn(learner: Learner) -> tuple[Learner, Metrics]:
        def step(current: Learner, k: jax.Array) -> tuple[Learner, Metrics]:
            sample_key, step_key = jax.random.split(k)
            return gradient_step(current, buffer.sample(sample_key, config.batch_size), step_key)

        keys = jax.random.split(learn_key, config.gradient_steps)
        learner, metrics = jax.lax.scan(step, learner, keys)
        return learner, jax.tree.map(masked_mean, metrics)

    def wait(learner: Learner) -> tuple[Learner, Metrics]:
        shapes = jax.eval_shape(learn, learner)[1]
        return learner, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    learner, losses = jax.lax.cond(
        buffer.size >= config.learning_starts, learn, wait, state.learner
    )
    new_state = state.replace(
        learner=learner, buffer=buffer, env=carry, key=key, update=state.update + 1,
        noise=noise[2][-1] if not stack.discrete else state.noise,
    )
    return new_state, {**losses, **episode_metrics(traj)}


# --- continuous-action actor-critics (SAC, TD3, DDPG) ------------------------------------

ActorPolicy = Callable[[Any, Any, Any, jax.Array, jax.Array | None], jax.Array]


def critic_ensemble(config: Any) -> CriticEnsemble:
    """``config.num_critics`` Q(s, a) networks (two for TD3 and SAC, one for DDPG)."""
    return CriticEnsemble(config.num_critics, config.hidden_sizes, config.activation)


def adam(config: Any) -> optax.GradientTransformation:
    """The actor-critic learners' optimiser (one instance per network)."""
    return optax.adam(config.lr)


def init_actor_critic(
    config: Any,
    key: jax.Array,
    make_actor: Callable[[EnvStack], Any],
    target_names: tuple[str, ...],
    extra_params: dict[str, Any] | None = None,
) -> OffPolicyState:
    """Initial state of a continuous-action actor-critic learner: parameters of the actor
    ``make_actor(stack)``, of the critic ensemble and ``extra_params``, an Adam state for
    each, and target copies of the parameters named in ``target_names``."""
    stack = make_env_stack(config)
    key, actor_key, critic_key = jax.random.split(key, 3)
    obs = jnp.zeros((1, *stack.obs_shape))
    action = jnp.zeros((1, stack.action_dim))
    params = {
        "actor": make_actor(stack).init(actor_key, obs),
        "critic": critic_ensemble(config).init(critic_key, obs, action),
        **(extra_params or {}),
    }
    learner = Learner(
        params=params,
        target_params={name: params[name] for name in target_names},
        opt_state={name: adam(config).init(p) for name, p in params.items()},
        steps=jnp.int32(0),
    )
    return init_state(config, stack, key, learner, jnp.zeros((stack.action_dim,)))


def fit_critics(
    critic: CriticEnsemble,
    tx: optax.GradientTransformation,
    params: Any,
    opt_state: Any,
    batch: Experience,
    target: jax.Array,
) -> tuple[Any, Any, jax.Array, jax.Array]:
    """One step regressing every critic's Q(s, a) on the shared target ``y``:
    loss ``sum_i 0.5 * mean (Q_i(s, a) - y)^2``. Returns params, optimiser state, loss and
    the mean Q value."""

    def loss_fn(p: Any) -> tuple[jax.Array, jax.Array]:
        q = critic.apply(p, batch.obs, batch.action)
        return 0.5 * ((q - target) ** 2).mean(axis=-1).sum(), q.mean()

    return descend(tx, loss_fn, params, opt_state)


def actor_critic_algorithm(
    name: str,
    config_cls: type,
    init: Callable[[Any, jax.Array], OffPolicyState],
    networks: Callable[[Any, EnvStack], Any],
    policy: ActorPolicy,
    gradient_step: Callable[[Any, Any, Learner, Experience, jax.Array], tuple[Learner, Metrics]],
    description: str,
) -> Algorithm:
    """A continuous-action actor-critic learner from its parts: ``networks(config, stack)``
    include an actor with parameters ``params["actor"]`` that acts by ``policy(config,
    nets, actor_params, obs, normal_noise)`` (``normal_noise=None``: deterministic), and
    ``gradient_step(config, nets, learner, batch, key)`` updates on one minibatch."""

    def update(config: Any, state: OffPolicyState) -> tuple[OffPolicyState, Metrics]:
        stack = make_env_stack(config)
        nets = networks(config, stack)
        actor_params = state.learner.params["actor"]
        return collect_and_learn(
            config, state, stack,
            lambda normal, obs: policy(config, nets, actor_params, obs, normal),
            lambda learner, batch, key: gradient_step(config, nets, learner, batch, key),
        )

    def act(
        config: Any, state: OffPolicyState, obs: jax.Array, key: jax.Array, deterministic: bool
    ) -> jax.Array:
        """``policy`` without noise if ``deterministic``, else with fresh noise."""
        stack = make_env_stack(config, num_envs=1)
        normal = None
        if not deterministic:
            normal = jax.random.normal(key, (*obs.shape[:-1], stack.action_dim))
        nets = networks(config, stack)
        return policy(config, nets, state.learner.params["actor"], obs, normal)

    return Algorithm(
        name=name, config_cls=config_cls, init=init, update=update, act=act,
        action_spaces=("continuous",), description=description,
    )
