"""PAIRED's level editor: an adversary builds a maze one cell per step.

The adversary's episode has a fixed length ``2 + num_walls`` (Dennis et al. 2020): step 0
places the goal, step 1 the agent, every later step a wall. Each action is a cell index
``y * W + x``. Choices that would break the level are resolved, not forbidden, so the
policy's log-probabilities stay those of a plain categorical over cells:

  * an agent placed on the goal moves to the next cell in reading order;
  * a wall placed on the agent or the goal is not built.

The agent's direction is drawn at random. The adversary sees the whole grid (walls, goal,
agent as three channels), the step as a one-hot, and a per-episode random vector (so one
policy can build different levels). Everything is pure JAX and vmaps over editors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.envs.maze import Level, make_level

NOISE_DIM = 8  # the adversary's per-episode random input


@struct.dataclass
class EditorState:
    walls: jax.Array  # [H, W] bool
    goal_pos: jax.Array  # [2] (x, y)
    agent_pos: jax.Array  # [2] (x, y)
    agent_dir: jax.Array  # int32
    noise: jax.Array  # [NOISE_DIM]
    step: jax.Array  # int32, edits done


class LevelEditor:
    """Builds ``height x width`` mazes with ``num_walls`` wall steps."""

    def __init__(self, num_walls: int = 50, height: int = 13, width: int = 13):
        self.num_walls = int(num_walls)
        self.height, self.width = int(height), int(width)

    @property
    def num_steps(self) -> int:
        return 2 + self.num_walls

    @property
    def num_actions(self) -> int:
        return self.height * self.width

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)

    @property
    def obs_size(self) -> int:
        return self.height * self.width * 3 + self.num_steps + NOISE_DIM

    def reset(self, key: jax.Array) -> EditorState:
        """An empty grid; goal and agent not placed yet (their cells are -1)."""
        dir_key, noise_key = jax.random.split(key)
        return EditorState(
            walls=jnp.zeros((self.height, self.width), jnp.bool_),
            goal_pos=jnp.full((2,), -1, jnp.int32),
            agent_pos=jnp.full((2,), -1, jnp.int32),
            agent_dir=jax.random.randint(dir_key, (), 0, 4, jnp.int32),
            noise=jax.random.uniform(noise_key, (NOISE_DIM,)),
            step=jnp.int32(0),
        )

    def _cell(self, index: jax.Array) -> jax.Array:
        index = jnp.asarray(index, jnp.int32) % self.num_actions
        return jnp.stack([index % self.width, index // self.width]).astype(jnp.int32)

    def observation(self, state: EditorState) -> jax.Array:
        """Flat: the [H, W, 3] (wall, goal, agent) image, then step one-hot and noise."""

        def marker(pos: jax.Array) -> jax.Array:
            ys, xs = jnp.arange(self.height)[:, None], jnp.arange(self.width)[None, :]
            return (ys == pos[1]) & (xs == pos[0])

        image = jnp.stack([state.walls, marker(state.goal_pos), marker(state.agent_pos)], -1)
        step = jax.nn.one_hot(state.step, self.num_steps, dtype=jnp.float32)
        return jnp.concatenate([image.astype(jnp.float32).reshape(-1), step, state.noise])

    def step(self, state: EditorState, action: jax.Array) -> EditorState:
        """Apply one edit (goal, then agent, then a wall), resolving clashes as documented."""
        cell = self._cell(action)
        goal = jnp.where(state.step == 0, cell, state.goal_pos)
        on_goal = jnp.all(cell == goal)
        agent_cell = jnp.where(on_goal, self._cell(action + 1), cell)
        agent = jnp.where(state.step == 1, agent_cell, state.agent_pos)
        blocked = jnp.all(cell == goal) | jnp.all(cell == agent)
        build = (state.step >= 2) & ~blocked
        walls = state.walls.at[cell[1], cell[0]].set(state.walls[cell[1], cell[0]] | build)
        return state.replace(walls=walls, goal_pos=goal, agent_pos=agent, step=state.step + 1)

    def level(self, state: EditorState) -> Level:
        """The finished level (after :attr:`num_steps` edits)."""
        return make_level(state.walls, state.agent_pos, state.agent_dir, state.goal_pos)
