"""Multi-turn dialogues as token trajectories, generated in one compiled ``lax.scan``.

Layout: turn t occupies positions ``[t*S, (t+1)*S)`` with ``S = obs_len + act_len``: first
the environment's observation tokens, then the agent's. The agent samples each token
from ``softmax(logits / temperature)`` with a KV cache until it emits ``<eot>`` or fills
``act_len`` tokens; the rest of its slot, and every turn after the episode ended, is
``<pad>``. The trajectory keeps exactly these ids. ``agent_mask`` is 1 on the tokens the
agent generated (its ``<eot>`` included) and 0 on environment tokens and padding; a
turn's reward sits on its last agent token. Token ``p`` is predicted by position
``p - 1``, so ``log_prob[p]`` and ``value[p]`` (the critic's estimate before choosing
token ``p``) come from there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.language.text_env import TextEnv
from rlfoundry.language.transformer import TransformerLM
from rlfoundry.language.vocab import EOT, PAD


class Layout(NamedTuple):
    """Where each turn's tokens go in the fixed-length sequence."""

    obs_len: int
    act_len: int
    turns: int

    @property
    def turn_len(self) -> int:
        return self.obs_len + self.act_len

    @property
    def length(self) -> int:
        return self.turns * self.turn_len

    def turn_of(self) -> jax.Array:
        """Turn index of every position [L]."""
        return jnp.arange(self.length) // self.turn_len

    def is_action_slot(self) -> jax.Array:
        """1 on the positions reserved for the agent [L] (used or not)."""
        return jnp.arange(self.length) % self.turn_len >= self.obs_len

    @staticmethod
    def of(env: TextEnv, turns: int | None = None) -> Layout:
        return Layout(env.obs_len, env.act_len, turns or env.max_turns)


@struct.dataclass
class Trajectory:
    """N dialogues: per-token arrays [N, L], per-turn arrays [N, T]."""

    tokens: jax.Array
    agent_mask: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    turn_obs: jax.Array  # [N, T, obs_len] what the environment showed at each turn
    turn_action: jax.Array  # [N, T, act_len] the agent's turn as sent to the environment
    turn_reward: jax.Array
    turn_valid: jax.Array  # the turn was played (the episode had not ended before it)
    success: jax.Array  # [N]

    @property
    def episode_return(self) -> jax.Array:
        return self.turn_reward.sum(axis=1)

    @property
    def num_turns(self) -> jax.Array:
        return self.turn_valid.sum(axis=1)


def sample_token(
    key: jax.Array, logits: jax.Array, temperature: Any, greedy: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Sample from softmax(logits / temperature) (or take the most likely token if
    ``greedy``); returns (token, its log-probability under the sampling policy)."""
    logp = jax.nn.log_softmax(logits / temperature, axis=-1)
    tok = jnp.argmax(logp, axis=-1) if greedy else jax.random.categorical(key, logp, axis=-1)
    return tok, jnp.take_along_axis(logp, tok[..., None], axis=-1)[..., 0]


def rollout(
    model: TransformerLM, params: Any, env: TextEnv, env_params: Any, reset_keys: jax.Array,
    key: jax.Array, temperature: Any = 1.0, turns: int | None = None, greedy: bool = False,
) -> Trajectory:
    """Play one episode per reset key (N keys) with the policy; one ``lax.scan`` over turns
    whose body scans over the turn's token positions."""
    lay = Layout.of(env, turns)
    n = reset_keys.shape[0]
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, env_params)
    cache = model.empty_cache(n)
    decode = lambda tok, pos, c: model.apply(params, tok, pos, c, method=model.decode)

    def play_turn(carry: tuple, xs: tuple) -> tuple:
        env_state, obs, cache, logits, value, done = carry
        t, turn_key = xs
        token_key, step_key = jax.random.split(turn_key)

        def play_token(c: tuple, ys: tuple) -> tuple:
            cache, logits, value, ended = c
            j, k = ys
            sampled, logp = sample_token(k, logits, temperature, greedy)
            agent = (j >= lay.obs_len) & ~ended & ~done
            env_tok = jnp.where(done, PAD, obs[:, jnp.minimum(j, lay.obs_len - 1)])
            tok = jnp.where(j < lay.obs_len, env_tok, jnp.where(agent, sampled, PAD))
            ended = ended | (agent & (tok == EOT))
            out = (tok, agent, jnp.where(agent, logp, 0.0), value)
            logits, value, cache = decode(tok, t * lay.turn_len + j, cache)
            return (cache, logits, value, ended), out

        steps = (jnp.arange(lay.turn_len), jax.random.split(token_key, lay.turn_len))
        ended0 = jnp.zeros((n,), bool)
        (cache, logits, value, _), (tok, agent, logp, val) = jax.lax.scan(
            play_token, (cache, logits, value, ended0), steps
        )
        tok, agent, logp, val = (a.T for a in (tok, agent, logp, val))  # [N, S]
        action = tok[:, lay.obs_len:]
        step_keys = jax.random.split(step_key, n)
        next_obs, next_state, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None)
        )(step_keys, env_state, action, env_params)
        played = ~done
        reward = jnp.where(played, reward, 0.0)
        last = lay.turn_len - 1 - jnp.argmax(agent[:, ::-1], axis=1)
        tok_reward = jax.nn.one_hot(last, lay.turn_len) * reward[:, None]
        success = played & info["success"]
        done = done | terminated | truncated
        out = (tok, agent, logp, val, tok_reward, obs, action, reward, played, success)
        return (next_state, next_obs, cache, logits, value, done), out

    v = len(env.vocab)
    carry = (env_state, obs, cache, jnp.zeros((n, v)), jnp.zeros((n,)), jnp.zeros((n,), bool))
    xs = (jnp.arange(lay.turns), jax.random.split(key, lay.turns))
    _, outs = jax.lax.scan(play_turn, carry, xs)
    tok, agent, logp, val, tok_reward, t_obs, t_act, t_rew, played, success = outs
    flat = lambda a: jnp.moveaxis(a, 0, 1).reshape(n, lay.length)  # [T, N, S] -> [N, L]
    per_turn = lambda a: jnp.moveaxis(a, 0, 1)
    return Trajectory(
        tokens=flat(tok), agent_mask=flat(agent).astype(jnp.float32), log_prob=flat(logp),
        value=flat(val), reward=flat(tok_reward), turn_obs=per_turn(t_obs),
        turn_action=per_turn(t_act), turn_reward=per_turn(t_rew), turn_valid=per_turn(played),
        success=success.any(axis=0),
    )


def rebuild_tokens(turn_obs: jax.Array, turn_action: jax.Array, turn_valid: jax.Array) -> jax.Array:
    """The token sequence [N, L] from what was said each turn: the observation slot then
    the agent's slot, padding for turns after the episode ended."""
    seq = jnp.concatenate([turn_obs, turn_action], axis=-1)
    seq = jnp.where(turn_valid[..., None], seq, PAD)
    return seq.reshape(seq.shape[0], -1)


def token_scores(
    model: TransformerLM, params: Any, tokens: jax.Array, temperature: Any = 1.0
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Score whole sequences: log π(token p | tokens < p) [N, L] (0 at p = 0), the entropy
    of the policy choosing token p, and the value before choosing it."""
    logits, values = model.apply(params, tokens)
    return scores_from_logits(logits, values, tokens, temperature)


def scores_from_logits(
    logits: jax.Array, values: jax.Array, tokens: jax.Array, temperature: Any = 1.0
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """:func:`token_scores` given the model's outputs [N, L, V] and [N, L]."""
    logp_all = jax.nn.log_softmax(logits[:, :-1] / temperature, axis=-1)
    logp = jnp.take_along_axis(logp_all, tokens[:, 1:, None], axis=-1)[..., 0]
    entropy = -(jnp.exp(logp_all) * logp_all).sum(-1)
    pad0 = lambda a: jnp.pad(a, ((0, 0), (1, 0)))
    return pad0(logp), pad0(entropy), pad0(values[:, :-1])
