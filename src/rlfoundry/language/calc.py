"""TextCalc-v0: tool use; call the calculator, read its result, answer.

The question is ``what is 7 * 8 ?`` (operands 0-9, ``+`` or ``*``). The agent may call the
tool, ``calc 7 * 8 <eot>``, and the environment replies ``result 5 6``; a call that does
not parse gets ``error``. ``answer 5 6 <eot>`` ends the episode with reward 1 if right and
0 if wrong. The first correct tool call earns 0.1 (per-turn credit for using the tool).
Three turns.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.language.text_env import TextEnv, turn_words
from rlfoundry.language.vocab import Vocab

TOOL_REWARD = 0.1


@struct.dataclass
class CalcState:
    a: jax.Array
    b: jax.Array
    multiply: jax.Array
    called: jax.Array
    time: jax.Array


@struct.dataclass
class CalcParams:
    max_steps_in_episode: int = 3


class TextCalc(TextEnv):
    vocab = Vocab(("what", "is", "?", "+", "*", "calc", "answer", "result", "error",
                   *(str(d) for d in range(10))))
    obs_len = 6
    act_len = 5
    max_turns = 3

    @property
    def default_params(self) -> CalcParams:
        return CalcParams(max_steps_in_episode=self.max_turns)

    @property
    def name(self) -> str:
        return "TextCalc-v0"

    def digit(self, d: jax.Array) -> jax.Array:
        return (self.vocab.id("0") + d).astype(jnp.int32)

    def value(self, s: CalcState) -> jax.Array:
        return jnp.where(s.multiply, s.a * s.b, s.a + s.b)

    def reset_env(self, key: jax.Array, params: CalcParams) -> tuple[jax.Array, CalcState]:
        ka, kb, ko = jax.random.split(key, 3)
        s = CalcState(jax.random.randint(ka, (), 0, 10), jax.random.randint(kb, (), 0, 10),
                      jax.random.bernoulli(ko), jnp.bool_(False), jnp.int32(0))
        v = self.vocab
        op = jnp.where(s.multiply, v.id("*"), v.id("+"))
        obs = jnp.stack([jnp.int32(v.id("what")), jnp.int32(v.id("is")), self.digit(s.a), op,
                         self.digit(s.b), jnp.int32(v.id("?"))]).astype(jnp.int32)
        return obs, s

    def number(self, action: jax.Array, n: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The one- or two-digit number in ``action[1:n]``, and whether it is one."""
        d = action - self.vocab.id("0")
        is_digit = (d >= 0) & (d <= 9)
        idx = jnp.arange(action.shape[0])
        inside = (idx >= 1) & (idx < n)
        ok = (n >= 2) & (n <= 3) & jnp.all(jnp.where(inside, is_digit, True))
        value = jnp.where(n == 3, d[1] * 10 + d[2], d[1])
        return value, ok

    def step_env(
        self, key: jax.Array, state: CalcState, action: jax.Array, params: CalcParams
    ) -> tuple[jax.Array, CalcState, jax.Array, jax.Array, dict[str, Any]]:
        v = self.vocab
        n, ended = turn_words(action)
        is_answer = ended & (action[0] == v.id("answer"))
        given, ok = self.number(action, n)
        answered = is_answer & ok
        right = answered & (given == self.value(state))
        op = jnp.where(action[2] == v.id("*"), 1, jnp.where(action[2] == v.id("+"), 0, -1))
        x, y = action[1] - v.id("0"), action[3] - v.id("0")
        call = (ended & (n == 4) & (action[0] == v.id("calc")) & (op >= 0)
                & (x >= 0) & (x <= 9) & (y >= 0) & (y <= 9))
        result = jnp.where(op == 1, x * y, x + y)
        right_call = call & (x == state.a) & (y == state.b) & (op == state.multiply)
        tens, ones = result // 10, result % 10
        pad = jnp.int32(0)
        head = jnp.int32(v.id("result"))
        reply_call = jnp.where(
            result >= 10,
            jnp.stack([head, self.digit(tens), self.digit(ones), pad, pad, pad]),
            jnp.stack([head, self.digit(ones), pad, pad, pad, pad]),
        )
        reply_error = self.words(["error"])
        obs = jnp.where(call, reply_call, reply_error).astype(jnp.int32)
        reward = right.astype(jnp.float32) + TOOL_REWARD * (right_call & ~state.called)
        s = CalcState(state.a, state.b, state.multiply, state.called | right_call, state.time + 1)
        return obs, s, reward, answered | is_answer, {"success": right}

    def describe(self, state: CalcState) -> str:
        op = "*" if bool(state.multiply) else "+"
        return f"question: {int(state.a)} {op} {int(state.b)} = {int(self.value(state))}"
