"""Networks of the off-policy learners: Q-networks, deterministic and squashed-Gaussian actors.

Layers are initialised uniformly in ±1/sqrt(fan_in), weights *and biases* (PyTorch's
``nn.Linear`` default, which the reference DQN/SAC/TD3 hyperparameters were tuned with),
not with the orthogonal sqrt(2) gains of :mod:`rlfoundry.nets`: with those, DQN's
Q-values on CartPole-v1 inflated about five times faster under frequent target updates
(a ReLU net with zero biases scales with its input, and CartPole's state grows along a
falling pole's trajectory). Image observations go through :class:`rlfoundry.nets.Torso`'s
convolution first.

Continuous actions live in the environment's box ``[low, high]``: actors squash with
``tanh`` and rescale by :class:`ActionScale`, and critics take actions in environment
units, so what the replay buffer stores is exactly what the environment received.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.nets import ACTIVATIONS, Torso

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass(frozen=True)
class ActionScale:
    """Maps ``[-1, 1]`` to the action box: ``action = center + half_range * unit``."""

    center: tuple[float, ...]
    half_range: tuple[float, ...]

    @classmethod
    def from_bounds(cls, low: object, high: object, action_dim: int) -> ActionScale:
        low = np.broadcast_to(np.asarray(low, np.float32), (action_dim,))
        high = np.broadcast_to(np.asarray(high, np.float32), (action_dim,))
        return cls(tuple(map(float, (high + low) / 2)), tuple(map(float, (high - low) / 2)))

    def __call__(self, unit: jax.Array) -> jax.Array:
        return jnp.asarray(self.center) + jnp.asarray(self.half_range) * unit

    def perturb(self, action: jax.Array, unit_noise: jax.Array) -> jax.Array:
        """``action + half_range * unit_noise``, clipped into the box."""
        half = jnp.asarray(self.half_range)
        low, high = jnp.asarray(self.center) - half, jnp.asarray(self.center) + half
        return jnp.clip(action + half * unit_noise, low, high)


def fan_in_dense(features: int, fan_in: int) -> nn.Dense:
    """A dense layer with weights and biases uniform in ±1/sqrt(fan_in)."""
    bound = 1.0 / np.sqrt(fan_in)
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )
    return nn.Dense(features, kernel_init=uniform, bias_init=uniform)


class MLP(nn.Module):
    """Hidden layers initialised by :func:`fan_in_dense`, optionally layer-normalised
    before the activation (which keeps TD learning from inflating Q-values)."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for h in self.hidden_sizes:
            x = fan_in_dense(h, x.shape[-1])(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = ACTIVATIONS[self.activation](x)
        return x


class DiscreteQ(nn.Module):
    """Q(s, ·) for a discrete action space: one output per action. With ``dueling``
    (Wang et al., 2016) Q = V(s) + A(s, ·) - mean A(s, ·) from two heads."""

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    cnn: bool = False
    layer_norm: bool = False
    dueling: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        if self.cnn:
            obs = Torso((), self.activation, cnn=True)(obs)
        x = MLP(self.hidden_sizes, self.activation, self.layer_norm)(obs)
        advantage = fan_in_dense(self.num_actions, x.shape[-1])(x)
        if not self.dueling:
            return advantage
        value = fan_in_dense(1, x.shape[-1])(x)
        return value + advantage - advantage.mean(axis=-1, keepdims=True)


class ContinuousQ(nn.Module):
    """Q(s, a) for continuous actions: an MLP over the concatenated observation and action."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = MLP(self.hidden_sizes, self.activation)(jnp.concatenate([obs, action], axis=-1))
        return fan_in_dense(1, x.shape[-1])(x)[..., 0]


def ensemble(module: type[nn.Module], size: int) -> type[nn.Module]:
    """``size`` independently initialised copies of ``module`` applied to the same inputs in
    one vectorised call; outputs gain a leading axis of ``size``."""
    return nn.vmap(module, variable_axes={"params": 0}, split_rngs={"params": True},
                   in_axes=None, out_axes=0, axis_size=size)


class CriticEnsemble(nn.Module):
    """``num_critics`` independent Q(s, a) networks (twin critics for TD3/SAC, one for
    DDPG) evaluated in one vectorised call: returns [num_critics, ...]."""

    num_critics: int = 2
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        critics = ensemble(ContinuousQ, self.num_critics)
        return critics(self.hidden_sizes, self.activation)(obs, action)


class DeterministicActor(nn.Module):
    """mu(s) = scale(tanh(f(s))): a deterministic policy inside the action box."""

    action_dim: int
    scale: ActionScale
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = MLP(self.hidden_sizes, self.activation)(obs)
        return self.scale(jnp.tanh(fan_in_dense(self.action_dim, x.shape[-1])(x)))


class SquashedGaussianActor(nn.Module):
    """The SAC policy before squashing: mean and log-std (clipped) of a Gaussian on u,
    with the action ``scale(tanh(u))``; see :func:`squashed_sample`."""

    action_dim: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = MLP(self.hidden_sizes, self.activation)(obs)
        mean = fan_in_dense(self.action_dim, x.shape[-1])(x)
        log_std = fan_in_dense(self.action_dim, x.shape[-1])(x)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def squashed_sample(
    mean: jax.Array, log_std: jax.Array, noise: jax.Array, scale: ActionScale
) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample ``a = scale(tanh(mean + std * noise))`` and its log-density.

    The log-density is that of the squashed action in ``[-1, 1]`` (as in the SAC paper,
    whose action spaces are that box): the Gaussian's minus the change of variables,
    ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` in a numerically stable form.
    """
    u = mean + jnp.exp(log_std) * noise
    gaussian = -0.5 * (noise**2 + 2.0 * log_std + jnp.log(2.0 * jnp.pi))
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return scale(jnp.tanh(u)), jnp.sum(gaussian - log_det, axis=-1)
