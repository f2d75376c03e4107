"""The text-environment contract: gymnax's reset/step over token sequences.

A :class:`TextEnv` is an ordinary :class:`rlfoundry.envs.Environment` whose observation is
``obs_len`` token ids (padded with ``<pad>``) and whose action is ``act_len`` token ids: the
agent's turn as generated, ending with ``<eot>`` or at the length limit and padded after.
Because the sizes are fixed, a whole multi-turn dialogue has a fixed token layout (see
:mod:`rlfoundry.language.trajectory`) and runs as one compiled ``lax.scan``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlfoundry.envs.core import Environment, spaces
from rlfoundry.language.vocab import EOT, PAD, Vocab


class TextEnv(Environment):
    """Base class: subclasses set ``vocab``, ``obs_len``, ``act_len``, ``max_turns``
    and implement ``reset_env``/``step_env`` (``info["success"]`` says whether the task
    was solved on that step)."""

    vocab: Vocab
    obs_len: int
    act_len: int
    max_turns: int

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0, self.vocab_size - 1, (self.obs_len,), jnp.int32)

    def action_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0, self.vocab_size - 1, (self.act_len,), jnp.int32)

    def is_truncated(self, state: Any, params: Any) -> jax.Array:
        return state.time >= self.max_turns

    def words(self, words: list[str]) -> jax.Array:
        """A padded observation from words (host-side constant)."""
        ids = self.vocab.ids(words)
        return jnp.asarray(ids + [PAD] * (self.obs_len - len(ids)), jnp.int32)


def turn_words(action: jax.Array) -> tuple[jax.Array, jax.Array]:
    """How many tokens of the agent's turn come before ``<eot>``, and whether the turn
    ended with ``<eot>`` (rather than at the length limit): what a parser reads."""
    is_end = (action == EOT) | (action == PAD)
    n = jnp.where(is_end.any(), jnp.argmax(is_end), action.shape[0])
    return n, (action == EOT).any()
