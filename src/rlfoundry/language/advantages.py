"""Advantages for language agents: per episode, per turn and per token.

- Episode level, over a group of G rollouts of the same task (consecutive rows):
  GRPO ``(R_i - mean R) / (std R + eps)``, RLOO and LOOP ``R_i - mean_{j≠i} R_j``
  (:func:`rlfoundry.algos.pg.group_advantages`); every agent token of rollout i gets A_i.
- Turn level: returns-to-go of the per-turn rewards, and *step-level* advantages: among
  all turns of a group that saw the identical observation, each turn's return-to-go minus
  their mean, over their std (GiGPO's anchor-state grouping, Feng et al., 2025). The
  key is either the turn's observation tokens (``"observation"``, GiGPO's anchor state:
  right when the observation is the state, as in TextKeyDoor) or the whole dialogue up to
  and including that observation (``"history"``: exact for any environment, e.g. the
  guessing game, whose feedback alone is not the state).
- Token level: GAE over agent tokens only (token-level PPO): observation tokens and
  padding are skipped, so the agent's next token after an environment reply is the
  "next step" of its last token before it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlfoundry.algos.pg import GRPO_EPS, group_advantages
from rlfoundry.language.trajectory import Layout

__all__ = ["episode_advantages", "group_advantages", "step_advantages", "token_gae",
           "turn_keys", "turn_returns", "turn_to_tokens"]


def episode_advantages(returns: jax.Array, group_size: int, kind: str) -> jax.Array:
    """GRPO (``"grpo"``) or leave-one-out (``"rloo"``, ``"loop"``) advantage per rollout."""
    return group_advantages(returns, group_size, "grpo" if kind == "grpo" else "rloo")


def turn_returns(turn_reward: jax.Array, gamma: Any = 1.0) -> jax.Array:
    """Discounted return-to-go of each turn [N, T] from per-turn rewards [N, T]."""
    def back(g: jax.Array, r: jax.Array) -> tuple[jax.Array, jax.Array]:
        g = r + gamma * g
        return g, g

    _, out = jax.lax.scan(back, jnp.zeros(turn_reward.shape[0]), turn_reward.T, reverse=True)
    return out.T


def turn_keys(tokens: jax.Array, turn_obs: jax.Array, layout: Layout, kind: str) -> jax.Array:
    """What identifies the state a turn starts from [N, T, K]: its observation tokens, or
    the dialogue's tokens up to the end of that observation (later positions zeroed)."""
    if kind == "observation":
        return turn_obs
    seen = jnp.arange(layout.turns)[:, None] * layout.turn_len + layout.obs_len  # [T, 1]
    visible = jnp.arange(layout.length)[None, :] < seen  # [T, L]
    return jnp.where(visible[None], tokens[:, None, :], -1)


def step_advantages(
    turn_obs: jax.Array, returns_to_go: jax.Array, valid: jax.Array, group_size: int,
    eps: float = GRPO_EPS,
) -> jax.Array:
    """Step-level advantage [N, T]: within each group, turns with identical keys
    ``turn_obs`` [N, T, K] (see :func:`turn_keys`) form a step group; A = (G - mean G) /
    (std G + eps) over that step group (0 for a turn that shares its key with no other
    turn, and for unplayed turns)."""
    n, t, o = turn_obs.shape
    obs = turn_obs.reshape(n // group_size, group_size * t, o)
    ret = returns_to_go.reshape(n // group_size, group_size * t)
    ok = valid.reshape(n // group_size, group_size * t)

    def one_group(obs: jax.Array, ret: jax.Array, ok: jax.Array) -> jax.Array:
        same = jnp.all(obs[:, None] == obs[None, :], axis=-1) & ok[:, None] & ok[None, :]
        w = same.astype(ret.dtype)
        count = w.sum(1)
        mean = (w * ret[None]).sum(1) / jnp.maximum(count, 1)
        var = (w * (ret[None] - mean[:, None]) ** 2).sum(1) / jnp.maximum(count, 1)
        adv = (ret - mean) / (jnp.sqrt(var) + eps)
        return jnp.where(ok & (count > 1), adv, 0.0)

    return jax.vmap(one_group)(obs, ret, ok).reshape(n, t)


def turn_to_tokens(per_turn: jax.Array, layout: Layout) -> jax.Array:
    """Broadcast a per-turn quantity [N, T] to every position of its turn [N, L]."""
    return jnp.repeat(per_turn, layout.turn_len, axis=1)


def token_gae(
    reward: jax.Array, value: jax.Array, mask: jax.Array, gamma: Any, lam: Any
) -> tuple[jax.Array, jax.Array]:
    """GAE over the agent tokens of each sequence [N, L], skipping positions with
    ``mask == 0``: they neither add a step nor break the recursion. After the last agent
    token the episode is over (next value 0). Returns (advantages, value targets), 0
    off the mask."""
    def back(carry: tuple, x: tuple) -> tuple:
        next_value, next_adv = carry
        r, v, m = x
        adv = r + gamma * next_value - v + gamma * lam * next_adv
        on = m > 0
        carry = (jnp.where(on, v, next_value), jnp.where(on, adv, next_adv))
        return carry, jnp.where(on, adv, 0.0)

    zeros = jnp.zeros(reward.shape[0])
    _, adv = jax.lax.scan(back, (zeros, zeros), (reward.T, value.T, mask.T), reverse=True)
    adv = adv.T
    return adv, jnp.where(mask > 0, adv + value, 0.0)
