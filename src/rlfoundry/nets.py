"""Networks: MLP/CNN torsos, actor and critic heads, with orthogonal initialisation.

Actor and critic are separate networks (as in the reference PPO implementations), so a
rollout runs only the actor and the critic is evaluated once, batched, after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.initializers import orthogonal

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


def dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(
        features, kernel_init=orthogonal(scale), bias_init=nn.initializers.zeros
    )


class Conv3x3(nn.Module):
    """A 3x3, stride-1, zero-padded ('SAME') convolution computed as one matrix product over
    the nine shifted copies of the input. Same parameters and outputs as ``nn.Conv(features,
    (3, 3))``, but XLA's CPU backend runs it with its gradient ~2x faster than ``lax.conv`` on small
    images (the maze view, MinAtar), where the convolution dominates PPO's update."""

    features: int
    kernel_init: nn.initializers.Initializer = orthogonal(np.sqrt(2))

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (3, 3, channels, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        h, w = x.shape[-3], x.shape[-2]
        pad = [(0, 0)] * (x.ndim - 3) + [(1, 1), (1, 1), (0, 0)]
        xp = jnp.pad(x, pad)
        patches = jnp.concatenate(
            [xp[..., dy:dy + h, dx:dx + w, :] for dy in range(3) for dx in range(3)], axis=-1
        )  # [..., H, W, 9 * C] in (dy, dx, c) order = the HWIO kernel's flattening
        flat = patches.reshape(-1, 9 * channels) @ kernel.reshape(9 * channels, self.features)
        return flat.reshape(*patches.shape[:-1], self.features) + bias


class Torso(nn.Module):
    """MLP over flat observations, or a small CNN first for image observations (MinAtar).

    ``image_shape`` is for flat observations that pack an image followed by extra features
    (the maze's 5x5 view and its direction): the image goes through the convolution, the
    extras through a small embedding, and both are concatenated before the MLP.
    """

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    cnn: bool = False
    image_shape: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        if self.cnn:
            extra = None
            if self.image_shape:
                n = int(np.prod(self.image_shape))
                extra = x[..., n:]
                x = x[..., :n].reshape((*x.shape[:-1], *self.image_shape))
            x = Conv3x3(16, name="Conv_0")(x)
            x = nn.relu(x).reshape((*x.shape[:-3], -1))
            if extra is not None and extra.shape[-1]:
                x = jnp.concatenate([x, dense(16, np.sqrt(2))(extra)], axis=-1)
        for h in self.hidden_sizes:
            x = act(dense(h, np.sqrt(2))(x))
        return x


class DiscreteActor(nn.Module):
    """Categorical policy: returns logits."""

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    cnn: bool = False
    image_shape: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = Torso(self.hidden_sizes, self.activation, self.cnn, self.image_shape)(obs)
        return dense(self.num_actions, 0.01)(x)


class GaussianActor(nn.Module):
    """Diagonal Gaussian policy: returns (mean, log_std) with a state-independent log-std.

    With ``sde``, generalised state-dependent exploration (gSDE; Raffin et al., 2022): the
    exploration noise is ``z(s) @ W`` with ``z`` the torso's features and ``W ~ N(0, σ²)``
    a [features, actions] matrix held for several steps, so the noise changes smoothly
    with the state instead of jittering every step (what MountainCarContinuous and
    Pendulum need). Given s the action is Gaussian with std ``sqrt(z² @ σ²)``; the actor
    returns (mean, that log-std, the noise basis ``z_j σ_jk``) and
    :func:`sample_with_noise` turns a pre-drawn matrix of standard normals into the action.
    As in SB3, the features enter the std without their gradient; where they are all
    zero (a constant zero observation) there is no exploration at all.
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    cnn: bool = False
    init_log_std: float = 0.0
    image_shape: tuple[int, ...] = ()
    sde: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, ...]:
        x = Torso(self.hidden_sizes, self.activation, self.cnn, self.image_shape)(obs)
        mean = dense(self.action_dim, 0.01)(x)
        if self.sde:
            log_std = self.param(
                "log_std", nn.initializers.constant(self.init_log_std),
                (x.shape[-1], self.action_dim),
            )
            basis = jax.lax.stop_gradient(x)[..., :, None] * jnp.exp(log_std)
            std = jnp.sqrt(jnp.sum(basis**2, axis=-2) + 1e-6)
            return mean, jnp.log(std), basis
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
        )
        return mean, jnp.broadcast_to(log_std, mean.shape)


class Critic(nn.Module):
    """State-value function V(s)."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    cnn: bool = False
    image_shape: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = Torso(self.hidden_sizes, self.activation, self.cnn, self.image_shape)(obs)
        return dense(1, 1.0)(x)[..., 0]


PolicyOutput = jax.Array | tuple[jax.Array, ...]


def policy_distribution(out: PolicyOutput) -> distrax.Distribution:
    """The action distribution for an actor's output (logits, or mean and log-std first)."""
    if isinstance(out, tuple):
        return distrax.MultivariateNormalDiag(out[0], jnp.exp(out[1]))
    return distrax.Categorical(logits=out)


def policy_noise(key: jax.Array, out: PolicyOutput, steps: int, hold: int = 1) -> jax.Array:
    """Noise for ``steps`` calls of :func:`sample_with_noise` on outputs shaped like ``out``:
    Gumbel noise for categorical policies, standard normal for Gaussian ones (a matrix per
    state for gSDE). ``hold`` > 1 keeps each draw for that many steps, -1 for all of them
    (gSDE's sampling frequency)."""
    if not isinstance(out, tuple):
        return jax.random.gumbel(key, (steps, *out.shape))
    shape = out[2].shape if len(out) == 3 else out[0].shape
    hold = steps if hold < 1 else hold
    draws = jax.random.normal(key, (-(-steps // hold), *shape))
    return jnp.repeat(draws, hold, axis=0)[:steps] if hold > 1 else draws


def sample_with_noise(out: PolicyOutput, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sample an action and its log-probability from pre-drawn noise.

    Categorical: the Gumbel-max trick; Gaussian: ``mean + std * eps`` (gSDE: ``eps`` is the
    noise matrix projected on the state's basis, in units of its std). The same
    distribution as ``policy_distribution(out).sample``, without a PRNG call per step.
    """
    if isinstance(out, tuple):
        mean, log_std = out[0], out[1]
        eps = jnp.sum(out[2] * noise, axis=-2) / jnp.exp(log_std) if len(out) == 3 else noise
        action = mean + jnp.exp(log_std) * eps
        log_prob = -0.5 * jnp.sum(eps**2 + 2 * log_std + jnp.log(2 * jnp.pi), axis=-1)
        return action, log_prob
    action = jnp.argmax(out + noise, axis=-1)
    log_prob = jnp.take_along_axis(jax.nn.log_softmax(out), action[..., None], axis=-1)[..., 0]
    return action, log_prob


def deterministic_action(out: PolicyOutput) -> jax.Array:
    """The mode of the policy: argmax for categorical, the mean for Gaussian."""
    if isinstance(out, tuple):
        return out[0]
    return jnp.argmax(out, axis=-1)
