"""The objective interface and PPO's clipped surrogate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.config import leaf, register_node


def ppo_drift(ratio: jax.Array, advantage: jax.Array, clip_eps: jax.Array | float) -> jax.Array:
    """PPO's clip as a drift: ``ReLU((r − clip(r, 1−ε, 1+ε))·A)``."""
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return jax.nn.relu((ratio - clipped) * advantage)


class Objective(struct.PyTreeNode):
    """Base class: a per-sample surrogate to maximise, with its own (vmappable) params."""

    kind = "objective"

    def drift(self, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        """Penalty for moving away from the old policy; >= 0 and 0 at ratio 1."""
        raise NotImplementedError

    def surrogate(
        self,
        ratio: jax.Array,
        log_ratio: jax.Array,
        advantage: jax.Array,
        progress: jax.Array,
    ) -> jax.Array:
        """Per-sample value to maximise; ``progress`` is training progress n/N in [0, 1]."""
        return ratio * advantage - self.drift(ratio, advantage, progress)

    def validate(self) -> None:
        """Raise ConfigError for invalid settings."""


@register_node
class PPOClip(Objective):
    """PPO's clipped surrogate: ``min(r A, clip(r, 1-ε, 1+ε) A)``.

    Written as a drift ``ReLU((r - clip(r)) A)``, which equals the clip objective exactly.
    """

    kind = "ppo_clip"
    clip_eps: float = leaf(0.2)

    def drift(self, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        return ppo_drift(ratio, advantage, self.clip_eps)

    def validate(self) -> None:
        from rlfoundry.config import check_range

        check_range(self, "clip_eps", 0.0, 10.0, low_open=True)
