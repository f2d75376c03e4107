"""Discovered and learned policy objectives (REFERENCES §4).

All are mirror-learning drifts: the learner maximises ``r·A − drift(r, A)`` with
``drift >= 0``. DPO is a closed form found by analysing a learned drift; LPO is a small
network over ratio/advantage features whose weights are meta-learned by evolution
strategies; TA-LPO also sees training progress n/N, so it can learn schedules. A learned
objective's weights are one flat vector leaf, so ES populations ``vmap`` over it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.config import ConfigError, check_range, leaf, register_node, static
from rlfoundry.objectives.base import Objective, ppo_drift

_EPS = 1e-4


@register_node
class DPO(Objective):
    """Discovered Policy Optimisation's closed-form drift (Lu et al., 2022).

    ``A >= 0``: ``ReLU((r−1)A − α·tanh((r−1)A/α))``; ``A < 0``:
    ``ReLU(log(r)A − β·tanh(log(r)A/β))``. Defaults α = 2, β = 0.6 as in the paper.
    """

    kind = "dpo"
    alpha: float = leaf(2.0)
    beta: float = leaf(0.6)

    def drift(self, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        pos = (ratio - 1.0) * advantage
        neg = jnp.log(ratio) * advantage
        pos_drift = jax.nn.relu(pos - self.alpha * jnp.tanh(pos / self.alpha))
        neg_drift = jax.nn.relu(neg - self.beta * jnp.tanh(neg / self.beta))
        return jnp.where(advantage >= 0, pos_drift, neg_drift)

    def validate(self) -> None:
        check_range(self, "alpha", 0.0, 1e6, low_open=True)
        check_range(self, "beta", 0.0, 1e6, low_open=True)


def lpo_features(ratio: jax.Array, advantage: jax.Array) -> jax.Array:
    """The 8 LPO inputs ``[r−1, (r−1)², log r, (log r)²]`` and each times A, clipped to ±2."""
    log_r = jnp.log(ratio)
    base = jnp.stack([ratio - 1.0, (ratio - 1.0) ** 2, log_r, log_r**2], axis=-1)
    return jnp.clip(jnp.concatenate([base, base * advantage[..., None]], axis=-1), -2.0, 2.0)


def drift_net_size(num_inputs: int, hidden: int) -> int:
    return num_inputs * hidden + hidden


def init_drift_net(num_inputs: int, hidden: int, seed: int = 0) -> np.ndarray:
    """Flat weights: a random first layer and a zero output layer, so the network starts at
    zero drift (and a PPO-initialised objective starts exactly at PPO)."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 1.0 / np.sqrt(num_inputs), (num_inputs, hidden))
    return np.concatenate([w1.reshape(-1), np.zeros(hidden)]).astype(np.float32)


class _LearnedDrift(Objective):
    """Dense(hidden, no bias) → tanh → Dense(1, no bias) over features; ``drift =
    ReLU([drift_ppo +] net(x) − 1e-4)`` so it stays >= 0."""

    kind = "_learned"
    hidden: int = static(128)
    ppo_init: bool = static(True)
    clip_eps: float = leaf(0.2)
    theta: jax.Array | None = leaf(None)

    num_inputs = 8

    def features(self, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        return lpo_features(ratio, advantage)

    def weights(self) -> jax.Array:
        if self.theta is None:
            return jnp.asarray(init_drift_net(self.num_inputs, self.hidden))
        return jnp.asarray(self.theta)

    def net(self, x: jax.Array) -> jax.Array:
        theta = self.weights()
        split = self.num_inputs * self.hidden
        w1 = theta[:split].reshape(self.num_inputs, self.hidden)
        w2 = theta[split:]
        return jnp.tanh(x @ w1) @ w2

    def drift(self, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        out = self.net(self.features(ratio, advantage, progress))
        if self.ppo_init:
            out = out + ppo_drift(ratio, advantage, self.clip_eps)
        return jax.nn.relu(out - _EPS)

    def validate(self) -> None:
        if self.theta is not None:
            size = np.shape(self.theta)[-1] if np.ndim(self.theta) else 0
            expected = drift_net_size(self.num_inputs, self.hidden)
            if size != expected:
                raise ConfigError(
                    f"{self.kind}.theta has {size} weights but hidden={self.hidden} needs "
                    f"{expected}; load weights saved with the same hidden size."
                )
        check_range(self, "clip_eps", 0.0, 10.0, low_open=True)


@register_node
class LPO(_LearnedDrift):
    """Learned Policy Optimisation (Lu et al., 2022): a drift network on 8 features."""

    kind = "lpo"


@register_node
class TALPO(_LearnedDrift):
    """Temporally-aware LPO (Jackson et al., 2024): the LPO features and the same scaled by
    training progress n/N, so the learned drift can change over training."""

    kind = "ta_lpo"
    num_inputs = 16

    def features(self, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        x = lpo_features(ratio, advantage)
        return jnp.concatenate([x, progress * x], axis=-1)
