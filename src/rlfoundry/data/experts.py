"""Scripted experts for recording demonstrations without a trained policy.

``maze_bfs``: on a :class:`~rlfoundry.envs.Maze` level, step forward when the cell ahead
is one BFS move closer to the goal, otherwise turn towards such a neighbour (right if it
is to the right, else left). It reads the agent's position from the environment state,
which a learner never sees, so it is optimal in moves on every solvable level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from rlfoundry.envs.maze import DIRECTIONS, FORWARD, TURN_LEFT, TURN_RIGHT, MazeState
from rlfoundry.envs.maze_levels import distance_map
from rlfoundry.errors import ConfigError


def maze_bfs_action(state: MazeState, level: Any) -> jax.Array:
    """The expert's action in one (unbatched) maze state."""
    h, w = level.walls.shape
    dist = distance_map(level.walls, level.goal_pos)

    def dist_at(p: jax.Array) -> jax.Array:
        inside = (p[0] >= 0) & (p[0] < w) & (p[1] >= 0) & (p[1] < h)
        d = dist[jnp.clip(p[1], 0, h - 1), jnp.clip(p[0], 0, w - 1)]
        return jnp.where(inside & (d >= 0), d, jnp.iinfo(jnp.int32).max)

    here = dist_at(state.agent_pos)
    closer = jnp.array([dist_at(state.agent_pos + DIRECTIONS[k]) < here for k in range(4)])
    right = (state.agent_dir + 1) % 4
    return jnp.where(closer[state.agent_dir], FORWARD,
                     jnp.where(closer[right], TURN_RIGHT, TURN_LEFT)).astype(jnp.int32)


def _maze_states(env_state: Any) -> MazeState:
    found = [x for x in jax.tree.leaves(env_state, is_leaf=lambda x: isinstance(x, MazeState))
             if isinstance(x, MazeState)]
    if not found:
        raise ConfigError("the maze_bfs expert needs a Maze environment.")
    return found[0]


def maze_bfs(params: Any) -> Callable[[jax.Array, Any, jax.Array], jax.Array]:
    """A recording policy ``(obs, env_state, key) -> actions`` for a vector of mazes that
    share ``params``' level."""

    def policy(obs: jax.Array, env_state: Any, key: jax.Array) -> jax.Array:
        states = _maze_states(env_state)
        return jax.vmap(maze_bfs_action, in_axes=(0, None))(states, params.level)

    return policy


EXPERTS = {"maze_bfs": maze_bfs}
