"""TextKeyDoor-v0: a text gridworld; fetch the key, then open the door.

A corridor of five cells described in words each turn: ``at 2 key 4 door 0`` (``key held``
once picked up). The agent types one command and ``<eot>``: ``left``, ``right``, ``take``
(picks the key up when standing on it) or ``open`` (opens the door when standing on it
with the key: reward 1, episode ends). Picking the key up earns 0.5 and a turn that does
not parse costs 0.1 and changes nothing. Moves are shaped by a potential (Ng et al.,
1999): 0.1 × the decrease of the remaining path length (to the key then the door, or to
the door once held), which telescopes and so leaves the optimal policy unchanged while
giving turn-level credit something to assign. Twelve turns; the longest solution needs ten.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.language.text_env import TextEnv, turn_words
from rlfoundry.language.vocab import Vocab

SIZE = 5
COMMANDS = ("left", "right", "take", "open")
KEY_REWARD, DOOR_REWARD, INVALID_COST, SHAPING = 0.5, 1.0, 0.1, 0.1


@struct.dataclass
class KeyDoorState:
    pos: jax.Array
    key_pos: jax.Array
    door: jax.Array
    has_key: jax.Array
    time: jax.Array


@struct.dataclass
class KeyDoorParams:
    max_steps_in_episode: int = 12


def remaining_path(s: KeyDoorState) -> jax.Array:
    """Moves still needed: to the key and on to the door, or to the door once held."""
    to_door = jnp.abs(s.pos - s.door)
    via_key = jnp.abs(s.pos - s.key_pos) + jnp.abs(s.key_pos - s.door)
    return jnp.where(s.has_key, to_door, via_key).astype(jnp.float32)


class TextKeyDoor(TextEnv):
    vocab = Vocab(("at", "key", "door", "held", *COMMANDS, *(str(i) for i in range(SIZE))))
    obs_len = 6
    act_len = 2
    max_turns = 12

    @property
    def default_params(self) -> KeyDoorParams:
        return KeyDoorParams(max_steps_in_episode=self.max_turns)

    @property
    def name(self) -> str:
        return "TextKeyDoor-v0"

    def _observation(self, s: KeyDoorState) -> jax.Array:
        v, zero = self.vocab, self.vocab.id("0")
        key_word = jnp.where(s.has_key, v.id("held"), zero + s.key_pos)
        return jnp.stack([
            jnp.int32(v.id("at")), zero + s.pos, jnp.int32(v.id("key")), key_word,
            jnp.int32(v.id("door")), zero + s.door,
        ]).astype(jnp.int32)

    def reset_env(self, key: jax.Array, params: KeyDoorParams) -> tuple[jax.Array, KeyDoorState]:
        cells = jax.random.permutation(key, SIZE)[:3]
        s = KeyDoorState(cells[0], cells[1], cells[2], jnp.bool_(False), jnp.int32(0))
        return self._observation(s), s

    def step_env(
        self, key: jax.Array, state: KeyDoorState, action: jax.Array, params: KeyDoorParams
    ) -> tuple[jax.Array, KeyDoorState, jax.Array, jax.Array, dict[str, Any]]:
        n, ended = turn_words(action)
        v = self.vocab
        word = action[0]
        valid = (n == 1) & ended & (word >= v.id("left")) & (word <= v.id("open"))
        move = jnp.where(word == v.id("left"), -1, jnp.where(word == v.id("right"), 1, 0))
        pos = jnp.where(valid, jnp.clip(state.pos + move, 0, SIZE - 1), state.pos)
        takes = valid & (word == v.id("take")) & ~state.has_key & (state.pos == state.key_pos)
        opens = valid & (word == v.id("open")) & state.has_key & (state.pos == state.door)
        s = KeyDoorState(pos, state.key_pos, state.door, state.has_key | takes, state.time + 1)
        progress = remaining_path(state) - remaining_path(s)
        reward = (KEY_REWARD * takes + DOOR_REWARD * opens - INVALID_COST * ~valid
                  + SHAPING * progress)
        return self._observation(s), s, reward.astype(jnp.float32), opens, {"success": opens}

    def describe(self, state: KeyDoorState) -> str:
        return (f"corridor of {SIZE}: agent {int(state.pos)}, key {int(state.key_pos)}, "
                f"door {int(state.door)}")
