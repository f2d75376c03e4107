"""Maze pictures: the curriculum's top levels as a PNG grid and an episode as a GIF."""

from __future__ import annotations

import types

import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np

import rlfoundry as rf
from rlfoundry.curricula import LevelBuffer
from rlfoundry.envs.maze import MazeParams
from rlfoundry.envs.maze_heldout import heldout_levels
from rlfoundry.envs.maze_levels import random_walls_level
from rlfoundry.experiment.maze_render import (
    curriculum_levels,
    draw_level,
    level_grid,
    play_maze,
)


def test_top_buffer_levels_are_drawn_best_first(tmp_path):
    scores = jnp.array([0.1, 0.5, 0.3, 0.9, 0.2])

    @jax.jit
    def fill(key):
        levels = jax.vmap(lambda k: MazeParams(level=random_walls_level(k, 25)))(
            jax.random.split(key, 5))
        example = jax.tree.map(lambda x: x[0], levels)
        return levels, LevelBuffer.create(example, 8).insert(levels, scores)

    levels, buffer = fill(jax.random.PRNGKey(0))
    shown, shown_scores = curriculum_levels(types.SimpleNamespace(buffer=buffer), 3)
    np.testing.assert_allclose(shown_scores, [0.9, 0.5, 0.3])
    np.testing.assert_array_equal(shown.walls[0], levels.level.walls[3])
    pictures = [draw_level(jax.tree.map(lambda x, i=i: x[i], shown)) for i in range(3)]
    assert pictures[0].shape == (13 * 16 + 1, 13 * 16 + 1, 3)
    grid = level_grid(pictures, columns=2)
    path = tmp_path / "levels.png"
    imageio.imwrite(path, grid)
    assert imageio.imread(path).shape == grid.shape and grid.shape[0] > grid.shape[1] / 2


def test_an_episode_on_a_heldout_maze_becomes_a_gif(tmp_path):
    cfg = rf.UEDConfig(env="Maze", curriculum="dr", network="cnn", hidden_sizes=(16,),
                       num_envs=2, num_steps=8, total_steps=16, num_minibatches=2)
    state = jax.jit(lambda k: rf.curricula.ued.init(cfg, k))(jax.random.PRNGKey(0))
    level = heldout_levels()["SimpleCrossing"]
    pos, dirs, ret = play_maze(cfg, state, level, jax.random.PRNGKey(1), 12, False)
    assert pos.shape == (len(dirs), 2) and 2 <= len(pos) <= 13
    np.testing.assert_array_equal(pos[0], level.agent_pos)
    walls = np.asarray(level.walls)
    assert not walls[pos[:, 1], pos[:, 0]].any()  # never inside a wall
    frames = [draw_level(level, p, d) for p, d in zip(pos, dirs, strict=True)]
    path = tmp_path / "episode.gif"
    imageio.mimsave(path, frames, duration=100, loop=0)
    assert path.stat().st_size > 0 and ret >= 0
