"""PPO with an LSTM actor-critic, for partially observed tasks (the UED maze).

Same steps as :mod:`rlfoundry.algos.ppo`, with the network's memory threaded through:
  1. the rollout carries the LSTM state step by step, zeroed where an episode starts;
  2. values come from the rollout itself (they need the memory); the rollout's end
     bootstraps from the value of the last observation;
  3. GAE treats every episode end as terminal (the maze's time limit is part of the task);
  4. K epochs of minibatches *over environments* (whole sequences): the loss re-runs the
     LSTM over each sequence from the rollout's initial state, resetting at episode starts.

Rollouts start from a zero memory: the curricula reset every environment onto new levels
at each update, so no memory survives from one update to the next. The functions mirror
:func:`~rlfoundry.algos.ppo.networks`, ``rollout_batch`` and ``optimise`` so a learner can
pick either set by ``config.recurrent``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlfoundry.algos.advantages import gae
from rlfoundry.algos.base import EnvStack
from rlfoundry.algos.ppo import Batch, PPOState, init_state, loss_terms, num_updates, optimizer
from rlfoundry.algos.rollout import EnvCarry, Transition, step_inputs
from rlfoundry.initializers import orthogonal
from rlfoundry.nets import (
    ACTIVATIONS,
    Torso,
    dense,
    deterministic_action,
    policy_distribution,
    sample_with_noise,
)

Carry = tuple[jax.Array, jax.Array]  # the LSTM's (c, h), each [N, size]


class _LSTMStep(nn.Module):
    """One LSTM step that first forgets the memory of environments starting an episode."""

    size: int

    @nn.compact
    def __call__(
        self, carry: Carry, inputs: tuple[jax.Array, jax.Array]
    ) -> tuple[Carry, jax.Array]:
        x, start = inputs
        carry = jax.tree.map(lambda c: jnp.where(start[:, None], 0.0, c), carry)
        return nn.OptimizedLSTMCell(self.size, recurrent_kernel_init=orthogonal())(
            carry, x
        )


class RecurrentActorCritic(nn.Module):
    """Torso (CNN over the view) -> LSTM -> separate MLP heads for logits and value.

    ``__call__(carry, obs [T, N, D], starts [T, N]) -> (carry, logits [T, N, A],
    values [T, N])``: the whole sequence in one call (a rollout calls it with T = 1).
    """

    num_actions: int
    hidden_sizes: Sequence[int] = (32,)
    activation: str = "relu"
    image_shape: tuple[int, ...] = ()
    lstm_size: int = 256

    @nn.compact
    def __call__(self, carry: Carry, obs: jax.Array, starts: jax.Array) -> tuple[
        Carry, jax.Array, jax.Array
    ]:
        x = Torso((), self.activation, True, self.image_shape)(obs)
        scan = nn.scan(_LSTMStep, variable_broadcast="params", split_rngs={"params": False})
        carry, x = scan(self.lstm_size, name="lstm")(carry, (x, starts))
        act = ACTIVATIONS[self.activation]
        logits, value = x, x
        for h in self.hidden_sizes:
            logits = act(dense(h, np.sqrt(2))(logits))
            value = act(dense(h, np.sqrt(2))(value))
        return carry, dense(self.num_actions, 0.01)(logits), dense(1, 1.0)(value)[..., 0]

    def initial_carry(self, n: int) -> Carry:
        return (jnp.zeros((n, self.lstm_size)), jnp.zeros((n, self.lstm_size)))


class SequenceBatch(Batch):
    """A [T, N] batch plus where episodes start (the LSTM forgets there)."""

    start: jax.Array


def networks(config: Any, stack: EnvStack) -> tuple[RecurrentActorCritic, None]:
    """The recurrent network (actor and critic in one; the second slot is unused)."""
    image = tuple(getattr(stack.env, "image_shape", ()))
    net = RecurrentActorCritic(stack.action_dim, config.hidden_sizes, config.activation, image,
                               config.lstm_size)
    return net, None


def init(config: Any, key: jax.Array) -> PPOState:
    from rlfoundry.algos.base import make_env_stack

    net, _ = networks(config, make_env_stack(config))
    state = init_state(config, key, lambda p: None)
    net_key = jax.random.fold_in(key, 7)
    params = net.init(net_key, net.initial_carry(1), jnp.zeros((1, 1, *state.env.obs.shape[1:])),
                      jnp.zeros((1, 1), bool))
    return state.replace(params=params, opt_state=optimizer(config).init(params))


def rollout_batch(
    config: Any, stack: EnvStack, net: RecurrentActorCritic, _: Any, state: PPOState,
    rollout_key: jax.Array, noise_key: jax.Array,
) -> tuple[EnvCarry, Transition, SequenceBatch]:
    """Steps 1-3: a rollout from a zero memory, values along the way, GAE."""
    n = config.num_envs
    noise = jax.random.gumbel(noise_key, (config.num_steps, n, stack.action_dim))
    env_keys, resets = step_inputs(stack.env, state.env_params, rollout_key, config.num_steps, n)

    def step(c: tuple, xs: tuple) -> tuple:
        env, memory, start = c
        eps, keys, reset = xs
        memory, logits, value = net.apply(state.params, memory, env.obs[None], start[None])
        action, log_prob = sample_with_noise(logits[0], eps)
        obs, env_state, reward, terminated, truncated, info = stack.env.step(
            keys, env.env_state, action, state.env_params, reset=reset)
        t = Transition(env.obs, action, log_prob, reward.astype(jnp.float32), terminated,
                       truncated, info["final_observation"], info["episode_return"],
                       info["episode_length"], info["episode_done"])
        return (EnvCarry(env_state, obs), memory, info["episode_done"]), (t, value[0], start)

    init = (state.env, net.initial_carry(n), jnp.zeros((n,), bool))
    xs = (noise, env_keys, resets)
    (carry, memory, start), (traj, values, starts) = jax.lax.scan(step, init, xs)
    _, _, last_value = net.apply(state.params, memory, carry.obs[None], start[None])
    next_values = jnp.concatenate([values[1:], last_value])
    done = traj.episode_done
    advantages, targets = gae(traj.reward, values, next_values, done, jnp.zeros_like(done),
                              config.gamma, config.gae_lambda)
    batch = SequenceBatch(traj.obs, traj.action, traj.log_prob, values, advantages, targets,
                          jnp.ones_like(values), starts)
    return carry, traj, batch


def sequence_loss(config: Any, params: Any, net: RecurrentActorCritic, mb: SequenceBatch,
                  progress: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's loss on a minibatch of whole sequences [T, n], re-running the LSTM."""
    n = mb.start.shape[1]
    _, logits, value = net.apply(params, net.initial_carry(n), mb.obs, mb.start)
    return loss_terms(config, policy_distribution(logits), value, mb, progress)


def optimise(
    config: Any, net: RecurrentActorCritic, _: Any, state: PPOState, batch: SequenceBatch,
    key: jax.Array,
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """Step 4: K epochs, each a shuffle of the environments into minibatches of sequences."""
    tx = optimizer(config)
    progress = state.update / num_updates(config)
    n, m = batch.start.shape[1], config.num_minibatches

    def sgd_step(c: tuple[Any, Any], mb: SequenceBatch) -> tuple[tuple[Any, Any], Any]:
        params, opt_state = c
        grads, info = jax.grad(lambda p: sequence_loss(config, p, net, mb, progress),
                               has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), info

    def epoch(c: tuple[Any, Any], k: jax.Array) -> tuple[tuple[Any, Any], Any]:
        perm = jax.random.permutation(k, n)
        split = lambda x: jnp.moveaxis(
            jnp.take(x, perm, axis=1).reshape((x.shape[0], m, n // m, *x.shape[2:])), 1, 0)
        return jax.lax.scan(sgd_step, c, jax.tree.map(split, batch))

    (params, opt_state), losses = jax.lax.scan(
        epoch, (state.params, state.opt_state), jax.random.split(key, config.update_epochs))
    return params, opt_state, jax.tree.map(jnp.mean, losses)


def policy(config: Any, params: Any, stack: EnvStack, deterministic: bool) -> tuple[
    Any, Any
]:
    """``(initial_carry(n), act(carry, obs, key) -> (carry, action))`` for playing episodes
    one step at a time (evaluation, rendering); episodes must not auto-reset mid-play."""
    net, _ = networks(config, stack)

    def act(carry: Carry, obs: jax.Array, key: jax.Array) -> tuple[Carry, jax.Array]:
        start = jnp.zeros((1, obs.shape[0]), bool)
        carry, logits, _ = net.apply(params, carry, obs[None], start)
        if deterministic:
            return carry, deterministic_action(logits[0])
        return carry, policy_distribution(logits[0]).sample(seed=key)

    return net.initial_carry, act
