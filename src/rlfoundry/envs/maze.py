"""A partially observed grid maze whose params are a level (walls, agent, goal).

The unsupervised-environment-design benchmark of PAIRED/PLR/ACCEL: an agent in a 13x13
grid (any H x W works; the size is the static shape of ``Level.walls``) sees the 5x5 cells
ahead of it and its direction, turns left/right or steps forward, and earns
``1 - 0.9 * t / T`` on reaching the goal at step ``t`` (``T = max_steps_in_episode``).
Because a level is the env's params, ``VectorEnv(Maze(), N, batched_params=True)`` runs N
levels side by side and auto-reset restarts each env on its own level.

Conventions:
  * Positions are ``(x, y)`` = (column, row); ``walls[y, x]`` is true for a wall; y grows
    downwards (row 0 is the top line of a maze text).
  * Directions: 0 right (+x), 1 down (+y), 2 left (-x), 3 up (-y). Turning right adds one.
  * Outside the grid counts as wall (so padding a level with walls changes nothing).

Observation (one float32 array of length ``OBS_SIZE = 54``, so MLPs take it as is and a
CNN recovers the image with :func:`split_observation`):
  * ``obs[:50]`` is the view ``[5, 5, 2]`` flattened row-major. View row 0 is farthest
    ahead, row 4 is the agent's own row; column 2 is the agent's column, column 0 is to
    its left. Channel 0 = wall (or outside the grid), channel 1 = goal. The agent sits at
    view cell (4, 2) looking "up" the view, whatever its direction in the world.
  * ``obs[50:54]`` is the one-hot direction.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.envs.core import Environment, spaces

VIEW_SIZE = 5
VIEW_CHANNELS = 2
OBS_SIZE = VIEW_SIZE * VIEW_SIZE * VIEW_CHANNELS + 4
NUM_ACTIONS = 3
TURN_LEFT, TURN_RIGHT, FORWARD = 0, 1, 2

# Unit moves (dx, dy) per direction: right, down, left, up.
DIRECTIONS = jnp.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=jnp.int32)


@struct.dataclass
class Level:
    """One maze: ``walls`` bool [H, W]; ``agent_pos``/``goal_pos`` int32 [2] as (x, y);
    ``agent_dir`` int32 in 0..3. ``height``/``width`` come from the static shape of
    ``walls``, so levels of one size stack and vmap; pad others with :func:`pad_level`."""

    walls: jax.Array
    agent_pos: jax.Array
    agent_dir: jax.Array
    goal_pos: jax.Array

    @property
    def height(self) -> int:
        return int(self.walls.shape[-2])

    @property
    def width(self) -> int:
        return int(self.walls.shape[-1])


def make_level(walls: Any, agent_pos: Any, agent_dir: Any, goal_pos: Any) -> Level:
    """A level with the canonical dtypes (bool walls, int32 everything else)."""
    return Level(
        walls=jnp.asarray(walls, jnp.bool_),
        agent_pos=jnp.asarray(agent_pos, jnp.int32),
        agent_dir=jnp.asarray(agent_dir, jnp.int32),
        goal_pos=jnp.asarray(goal_pos, jnp.int32),
    )


def empty_level(height: int = 13, width: int = 13) -> Level:
    """No walls, agent top-left facing right, goal bottom-right: the registry's default."""
    return make_level(
        jnp.zeros((height, width), jnp.bool_), [0, 0], 0, [width - 1, height - 1]
    )


def pad_level(level: Level, height: int, width: int) -> Level:
    """Grow a level to ``height x width`` by adding walls below and to the right.

    Outside the grid already reads as wall, so the padded level plays identically; this is
    how levels of different sizes share one batch.
    """
    h, w = level.walls.shape[-2:]
    if h > height or w > width:
        raise ValueError(f"cannot pad a {h}x{w} level down to {height}x{width}")
    pad = [(0, 0)] * (level.walls.ndim - 2) + [(0, height - h), (0, width - w)]
    return level.replace(walls=jnp.pad(level.walls, pad, constant_values=True))


def is_valid(level: Level) -> jax.Array:
    """True when agent and goal are inside the grid, on free cells, distinct, and the
    direction is 0..3 — the invariant every generator and mutator keeps."""
    h, w = level.walls.shape[-2:]

    def inside(p: jax.Array) -> jax.Array:
        return (p[0] >= 0) & (p[0] < w) & (p[1] >= 0) & (p[1] < h)

    def free(p: jax.Array) -> jax.Array:
        return ~level.walls[jnp.clip(p[1], 0, h - 1), jnp.clip(p[0], 0, w - 1)]

    a, g = level.agent_pos, level.goal_pos
    return (
        inside(a) & inside(g) & free(a) & free(g) & jnp.any(a != g)
        & (level.agent_dir >= 0) & (level.agent_dir < 4)
    )


@struct.dataclass
class MazeParams:
    """The Maze's params: the level to play plus the horizon T."""

    level: Level
    max_steps_in_episode: int = 250


@struct.dataclass
class MazeState:
    """Only what changes in an episode; walls and goal are read from the params."""

    agent_pos: jax.Array
    agent_dir: jax.Array
    time: jax.Array


def split_observation(obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``obs [..., 54] -> (view [..., 5, 5, 2], direction one-hot [..., 4])`` for CNNs."""
    lead = obs.shape[:-1]
    n = VIEW_SIZE * VIEW_SIZE * VIEW_CHANNELS
    image = obs[..., :n].reshape(*lead, VIEW_SIZE, VIEW_SIZE, VIEW_CHANNELS)
    return image, obs[..., n:]


def egocentric_view(level: Level, agent_pos: jax.Array, agent_dir: jax.Array) -> jax.Array:
    """The ``[5, 5, 2]`` (wall, goal) view ahead of the agent; see the module docstring."""
    h, w = level.walls.shape
    forward = DIRECTIONS[agent_dir]
    right = DIRECTIONS[(agent_dir + 1) % 4]
    rows = jnp.arange(VIEW_SIZE)
    ahead = (VIEW_SIZE - 1 - rows)[:, None, None]  # view row i is 4 - i cells ahead
    side = (jnp.arange(VIEW_SIZE) - VIEW_SIZE // 2)[None, :, None]  # columns, left to right
    cells = agent_pos[None, None, :] + ahead * forward + side * right  # [5, 5, 2] as (x, y)
    x, y = cells[..., 0], cells[..., 1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    wall = jnp.where(inside, level.walls[jnp.clip(y, 0, h - 1), jnp.clip(x, 0, w - 1)], True)
    goal = (x == level.goal_pos[0]) & (y == level.goal_pos[1])
    return jnp.stack([wall, goal], axis=-1).astype(jnp.float32)


class Maze(Environment):
    """Navigate to the goal from a partial view; actions 0 left, 1 right, 2 forward."""

    # the flat observation starts with this image (the view); networks with a CNN use it
    image_shape = (VIEW_SIZE, VIEW_SIZE, VIEW_CHANNELS)

    def __init__(self, default_level: Level | None = None, max_steps_in_episode: int = 250):
        self._default_level = default_level if default_level is not None else empty_level()
        self._max_steps = int(max_steps_in_episode)

    @property
    def default_params(self) -> MazeParams:
        return MazeParams(level=self._default_level, max_steps_in_episode=self._max_steps)

    @property
    def name(self) -> str:
        return "Maze"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (OBS_SIZE,), jnp.float32)

    def observation(self, state: MazeState, params: MazeParams) -> jax.Array:
        """The flat observation of a state (layout in the module docstring)."""
        view = egocentric_view(params.level, state.agent_pos, state.agent_dir)
        direction = jax.nn.one_hot(state.agent_dir, 4, dtype=jnp.float32)
        return jnp.concatenate([view.reshape(-1), direction])

    def reset_env(self, key: jax.Array, params: MazeParams) -> tuple[jax.Array, MazeState]:
        """Deterministic: the level fixes the agent's position and direction."""
        level = params.level
        state = MazeState(
            agent_pos=jnp.asarray(level.agent_pos, jnp.int32),
            agent_dir=jnp.asarray(level.agent_dir, jnp.int32),
            time=jnp.int32(0),
        )
        return self.observation(state, params), state

    def step_env(
        self, key: jax.Array, state: MazeState, action: Any, params: MazeParams
    ) -> tuple[jax.Array, MazeState, jax.Array, jax.Array, dict[str, Any]]:
        level = params.level
        h, w = level.walls.shape
        action = jnp.asarray(action, jnp.int32)
        turn = jnp.where(action == TURN_RIGHT, 1, jnp.where(action == TURN_LEFT, -1, 0))
        agent_dir = (state.agent_dir + turn) % 4
        target = state.agent_pos + DIRECTIONS[state.agent_dir]
        inside = (target[0] >= 0) & (target[0] < w) & (target[1] >= 0) & (target[1] < h)
        wall = level.walls[jnp.clip(target[1], 0, h - 1), jnp.clip(target[0], 0, w - 1)]
        moves = (action == FORWARD) & inside & ~wall
        agent_pos = jnp.where(moves, target, state.agent_pos)
        time = state.time + 1
        at_goal = jnp.all(agent_pos == level.goal_pos)
        horizon = jnp.asarray(params.max_steps_in_episode, jnp.float32)
        reward = jnp.where(at_goal, 1.0 - 0.9 * time.astype(jnp.float32) / horizon, 0.0)
        new = MazeState(agent_pos=agent_pos, agent_dir=agent_dir, time=time)
        return self.observation(new, params), new, reward.astype(jnp.float32), at_goal, {}
