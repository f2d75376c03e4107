"""Pictures of maze curricula: the buffer's top levels as a PNG grid, an episode as a GIF.

``rlfoundry render RUN`` on a maze run writes both: ``levels.png`` shows what the curriculum
currently values most (the PLR/ACCEL buffer's highest-scoring levels; for DR and PAIRED,
which keep no buffer, the last levels trained on), and ``episode.gif`` shows the agent
(feed-forward or recurrent) playing one held-out maze or a maze text file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.envs.maze import DIRECTIONS, Level

WALL, FREE, GOAL, AGENT, GRID = (60, 60, 60), (245, 245, 245), (60, 170, 80), (210, 60, 50), (
    200, 200, 200)


def draw_level(level: Level, agent_pos: Any = None, agent_dir: Any = None,
               cell: int = 16) -> np.ndarray:
    """RGB uint8 picture of a level: walls dark, goal green, agent a red triangle pointing
    its way (the level's start unless ``agent_pos``/``agent_dir`` are given)."""
    from PIL import Image, ImageDraw

    walls = np.asarray(level.walls)
    h, w = walls.shape
    img = Image.new("RGB", (w * cell + 1, h * cell + 1), GRID)
    d = ImageDraw.Draw(img)
    for y in range(h):
        for x in range(w):
            d.rectangle([x * cell + 1, y * cell + 1, (x + 1) * cell - 1, (y + 1) * cell - 1],
                        fill=WALL if walls[y, x] else FREE)
    gx, gy = np.asarray(level.goal_pos).tolist()
    d.rectangle([gx * cell + 2, gy * cell + 2, (gx + 1) * cell - 2, (gy + 1) * cell - 2],
                fill=GOAL)
    ax, ay = np.asarray(level.agent_pos if agent_pos is None else agent_pos).tolist()
    direction = int(np.asarray(level.agent_dir if agent_dir is None else agent_dir))
    fx, fy = np.asarray(DIRECTIONS[direction]).tolist()
    cx, cy, r = (ax + 0.5) * cell, (ay + 0.5) * cell, cell * 0.4
    tip = (cx + fx * r, cy + fy * r)
    left = (cx - fx * r + fy * r * 0.8, cy - fy * r - fx * r * 0.8)
    right = (cx - fx * r - fy * r * 0.8, cy - fy * r + fx * r * 0.8)
    d.polygon([tip, left, right], fill=AGENT)
    return np.asarray(img)


def level_grid(images: list[np.ndarray], columns: int = 4, gap: int = 6) -> np.ndarray:
    """Equal-sized pictures tiled row by row on a white background."""
    h, w, _ = images[0].shape
    rows = -(-len(images) // columns)
    cols = min(columns, len(images))
    out = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        out[gap + r * (h + gap): gap + r * (h + gap) + h,
            gap + c * (w + gap): gap + c * (w + gap) + w] = im
    return out


def curriculum_levels(state: Any, n: int) -> tuple[Level, np.ndarray | None]:
    """The ``n`` levels to show for one seed's state, and their scores if it has a buffer."""
    buffer = getattr(state, "buffer", None)
    if buffer is not None and int(np.asarray(buffer.size)) > 1:
        k = min(n, int(np.asarray(buffer.size)))
        idx, params = buffer.top(k)
        return params.level, np.asarray(buffer.scores[idx])
    level = state.ppo.env_params.level
    return jax.tree.map(lambda x: x[:n], level), None


def play_maze(config: Any, state: Any, level: Level, key: jax.Array, max_frames: int,
              deterministic: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """Agent positions and directions for one episode on ``level`` (start included), and
    its return (0 when the goal was not reached within ``max_frames`` steps)."""
    from rlfoundry.curricula.observe import agent_policy
    from rlfoundry.envs import EpisodeStatistics, VectorEnv
    from rlfoundry.envs.maze import Maze, MazeParams

    env = VectorEnv(EpisodeStatistics(Maze()), 1, batched_params=True)
    params = MazeParams(level=jax.tree.map(lambda x: jnp.asarray(x)[None], level),
                        max_steps_in_episode=jnp.full((1,), 250, jnp.int32))
    initial_carry, act = agent_policy(config, state.ppo, deterministic)

    def run(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        reset_key, key = jax.random.split(key)
        obs, env_state = env.reset(reset_key, params)

        def step(c: tuple, k: jax.Array) -> tuple:
            env_state, obs, memory, done, ret = c
            act_key, step_key = jax.random.split(k)
            memory, action = act(memory, obs, act_key)
            obs, new_state, _, reached, _, info = env.step(step_key, env_state, action, params)
            inner = new_state
            while hasattr(inner, "env_state"):
                inner = inner.env_state
            # the env restarts on reaching the goal: draw the agent on the goal instead
            pos = jnp.where(reached[0], level.goal_pos, inner.agent_pos[0])
            ret = jnp.where(done, ret, info["episode_return"][0])
            done = done | info["episode_done"][0]
            return (new_state, obs, memory, done, ret), (pos, inner.agent_dir[0], done)

        init = (env_state, obs, initial_carry(1), jnp.bool_(False), jnp.float32(0.0))
        (_, _, _, _, ret), (pos, dirs, done) = jax.lax.scan(step, init,
                                                             jax.random.split(key, max_frames))
        return pos, dirs, done, ret

    pos, dirs, done, ret = jax.device_get(jax.jit(run)(key))
    end = int(np.argmax(done)) + 1 if done.any() else max_frames
    start_pos = np.asarray(level.agent_pos)[None]
    start_dir = np.asarray(level.agent_dir)[None]
    return (np.concatenate([start_pos, pos[:end]]), np.concatenate([start_dir, dirs[:end]]),
            float(ret))


def render_maze_run(folder: Any, out_dir: str | Path, maze: str = "SixteenRooms",
                    top: int = 16, seed_index: int = 0, seed: int = 0,
                    deterministic: bool = True, max_frames: int = 250, fps: int = 8,
                    checkpoint: int | None = None) -> dict[str, Any]:
    """Write ``levels.png`` and ``episode-<maze>.gif`` for a maze run into ``out_dir``."""
    import imageio.v2 as imageio

    from rlfoundry.envs.maze_heldout import heldout_levels, load_mazes
    from rlfoundry.errors import ConfigError
    from rlfoundry.experiment.evaluate import load_trained, select_seeds

    trained = load_trained(folder, checkpoint)
    config = trained.spec.config
    if getattr(config, "curriculum", None) is None:
        raise ConfigError(f"{folder.path} is not a maze curriculum run; render it without "
                          "maze options.")
    builtin = heldout_levels()
    mazes = {maze: builtin[maze]} if maze in builtin else load_mazes(maze)
    name, level = next(iter(mazes.items()))
    state, _ = select_seeds(trained, seed_index)
    one = jax.tree.map(lambda x: x[0], state)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    levels, scores = curriculum_levels(one, top)
    count = int(np.asarray(levels.agent_dir).shape[0])
    pictures = [draw_level(jax.tree.map(lambda x, i=i: np.asarray(x)[i], levels))
                for i in range(count)]
    grid_path = out_dir / "levels.png"
    imageio.imwrite(grid_path, level_grid(pictures))

    pos, dirs, ret = play_maze(config, one, level, jax.random.PRNGKey(seed), max_frames,
                               deterministic)
    frames = [draw_level(level, p, d) for p, d in zip(pos, dirs, strict=True)]
    gif_path = out_dir / f"episode-{name}.gif"
    imageio.mimsave(gif_path, frames, duration=1000.0 / fps, loop=0)
    return {"levels_png": str(grid_path), "levels": count,
            "scores": None if scores is None else scores.round(4).tolist(),
            "gif": str(gif_path), "maze": name, "frames": len(frames), "return": ret,
            "solved": ret > 0}
