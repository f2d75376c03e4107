"""TextGuess-v0: guess a secret number from 1 to 16 in five turns.

Each turn the agent says one number and ``<eot>``; the environment answers ``<`` (the
secret is smaller), ``>`` (larger), ``=`` (found: reward 1, episode ends) or ``?`` (the
turn was not a number followed by ``<eot>``). Bisection always wins in five turns, so a
policy that reaches ~100% has learned to condition on the whole dialogue.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.language.text_env import TextEnv
from rlfoundry.language.vocab import EOT, Vocab

MAX_NUMBER = 16
FEEDBACK = ("start", "<", ">", "=", "?")


@struct.dataclass
class GuessState:
    secret: jax.Array
    time: jax.Array


@struct.dataclass
class GuessParams:
    max_steps_in_episode: int = 5


class TextGuess(TextEnv):
    vocab = Vocab((*FEEDBACK, *(str(n) for n in range(1, MAX_NUMBER + 1))))
    obs_len = 1
    act_len = 2
    max_turns = 5

    @property
    def default_params(self) -> GuessParams:
        return GuessParams(max_steps_in_episode=self.max_turns)

    @property
    def name(self) -> str:
        return "TextGuess-v0"

    def number_of(self, token: jax.Array) -> jax.Array:
        """The number a token names, or 0 if it is not a number."""
        first = self.vocab.id("1")
        n = token - first + 1
        return jnp.where((n >= 1) & (n <= MAX_NUMBER), n, 0)

    def reset_env(self, key: jax.Array, params: GuessParams) -> tuple[jax.Array, GuessState]:
        secret = jax.random.randint(key, (), 1, MAX_NUMBER + 1)
        return self.words(["start"]), GuessState(secret, jnp.int32(0))

    def step_env(
        self, key: jax.Array, state: GuessState, action: jax.Array, params: GuessParams
    ) -> tuple[jax.Array, GuessState, jax.Array, jax.Array, dict[str, Any]]:
        guess = self.number_of(action[0])
        valid = (guess > 0) & (action[1] == EOT)
        found = valid & (guess == state.secret)
        v = self.vocab
        feedback = jnp.select(
            [~valid, found, state.secret < guess],
            [v.id("?"), v.id("="), v.id("<")],
            v.id(">"),
        )
        obs = jnp.asarray([feedback], jnp.int32)
        state = GuessState(state.secret, state.time + 1)
        reward = found.astype(jnp.float32)
        return obs, state, reward, found, {"success": found}

    def describe(self, state: GuessState) -> str:
        return f"secret number: {int(state.secret)}"
