"""Maze levels as text, their difficulty (BFS in JAX), generators and the ACCEL mutator.

Text format, one character per cell, one line per grid row (top row first)::

    #  wall            .  free cell        G  goal (exactly one)
    >  agent facing right   v  down   <  left   ^  up   (exactly one agent)

Any rectangular size is accepted (13x13 is the benchmark's); the outer border is implicit
(never drawn). Blank lines before and after the grid and trailing spaces are ignored.
Errors are one-line :class:`ConfigError`s naming the line and column.

Everything except the text functions is pure JAX: jittable, and vmappable over levels
(and over keys for the generators).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.envs.maze import Level, make_level
from rlfoundry.errors import ConfigError

AGENT_CHARS = ">v<^"  # index = direction
_ALLOWED = "#.G" + AGENT_CHARS


# ----------------------------------------------------------------------------- text


def parse_level(text: str, source: str = "maze") -> Level:
    """Parse a maze drawing (format in the module docstring) into a :class:`Level`.

    ``source`` (e.g. a file name) prefixes error messages.
    """
    lines = text.split("\n")
    numbered = [(i + 1, line.rstrip()) for i, line in enumerate(lines)]
    while numbered and not numbered[0][1].strip():
        numbered.pop(0)
    while numbered and not numbered[-1][1].strip():
        numbered.pop()
    if not numbered:
        raise ConfigError(f"{source}: no maze found (empty text); draw it with {_ALLOWED}.")
    width = len(numbered[0][1])
    walls = np.zeros((len(numbered), width), bool)
    agents: list[tuple[int, int, int, int]] = []  # (x, y, dir, line)
    goals: list[tuple[int, int, int]] = []
    for y, (lineno, row) in enumerate(numbered):
        if len(row) != width:
            raise ConfigError(
                f"{source}: line {lineno} has {len(row)} cells but line {numbered[0][0]} has "
                f"{width}; every row of a maze must have the same width."
            )
        for x, ch in enumerate(row):
            if ch not in _ALLOWED:
                raise ConfigError(
                    f"{source}: line {lineno}, column {x + 1}: unknown character {ch!r}; "
                    f"use # (wall), . (free), G (goal) or one of {AGENT_CHARS} (agent)."
                )
            if ch == "#":
                walls[y, x] = True
            elif ch == "G":
                goals.append((x, y, lineno))
            elif ch in AGENT_CHARS:
                agents.append((x, y, AGENT_CHARS.index(ch), lineno))
    for what, found, hint in (
        ("agent", agents, f"one of {AGENT_CHARS}"),
        ("goal", goals, "G"),
    ):
        if not found:
            raise ConfigError(f"{source}: no {what}; mark exactly one cell with {hint}.")
        if len(found) > 1:
            where = ", ".join(f"line {f[-1]} column {f[0] + 1}" for f in found[:3])
            raise ConfigError(
                f"{source}: {len(found)} {what}s (at {where}); a maze has exactly one."
            )
    ax, ay, adir, _ = agents[0]
    gx, gy, _ = goals[0]
    return make_level(walls, [ax, ay], adir, [gx, gy])


def level_to_text(level: Level) -> str:
    """Draw one (unbatched) level; ``parse_level(level_to_text(l))`` equals ``l``."""
    walls = np.asarray(level.walls)
    if walls.ndim != 2:
        raise ValueError("level_to_text draws one level; index a batch first")
    grid = np.where(walls, "#", ".").astype("<U1")
    gx, gy = (int(v) for v in np.asarray(level.goal_pos))
    ax, ay = (int(v) for v in np.asarray(level.agent_pos))
    grid[gy, gx] = "G"
    grid[ay, ax] = AGENT_CHARS[int(level.agent_dir) % 4]
    return "\n".join("".join(row) for row in grid)


def read_level(path: str | Path) -> Level:
    """Parse one maze text file; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read maze file {path}: {err.strerror or err}.") from None
    return parse_level(text, source=str(path))


# ------------------------------------------------------------------------ BFS (JAX)


def _spread(reached: jax.Array) -> jax.Array:
    """Cells one move away from any cell in ``reached`` (4-neighbourhood, no wrap)."""
    out = jnp.zeros_like(reached)
    out = out.at[1:, :].set(out[1:, :] | reached[:-1, :])
    out = out.at[:-1, :].set(out[:-1, :] | reached[1:, :])
    out = out.at[:, 1:].set(out[:, 1:] | reached[:, :-1])
    out = out.at[:, :-1].set(out[:, :-1] | reached[:, 1:])
    return out


def distance_map(walls: jax.Array, source: jax.Array) -> jax.Array:
    """BFS move counts from ``source`` (x, y) to every cell; -1 for walls and cells that
    cannot be reached. Frontier expansion in a ``while_loop`` that stops when the frontier
    is empty (at most H*W rounds)."""
    h, w = walls.shape
    free = ~walls
    dist = jnp.full((h, w), -1, jnp.int32).at[source[1], source[0]].set(0)
    frontier = jnp.zeros((h, w), jnp.bool_).at[source[1], source[0]].set(True)

    def cond(carry: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        _, front, k = carry
        return jnp.any(front) & (k < h * w)

    def body(
        carry: tuple[jax.Array, jax.Array, jax.Array],
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        d, front, k = carry
        new = _spread(front) & free & (d < 0)
        return jnp.where(new, k + 1, d), new, k + 1

    dist, _, _ = jax.lax.while_loop(cond, body, (dist, frontier, jnp.int32(0)))
    return dist


def shortest_path_length(level: Level) -> jax.Array:
    """Fewest forward moves from agent to goal (turns not counted); -1 if unsolvable."""
    return distance_map(level.walls, level.agent_pos)[level.goal_pos[1], level.goal_pos[0]]


def is_solvable(level: Level) -> jax.Array:
    """Whether the goal can be reached from the agent's cell."""
    return shortest_path_length(level) >= 0


def num_walls(level: Level) -> jax.Array:
    """Wall count, the other usual level-complexity statistic."""
    return jnp.sum(level.walls, axis=(-2, -1)).astype(jnp.int32)


# ------------------------------------------------------------------------ generators


def _random_cell(key: jax.Array, allowed: jax.Array) -> jax.Array:
    """A uniformly random (x, y) among the true cells of ``allowed`` [H, W] (which must
    have one)."""
    h, w = allowed.shape
    noise = jax.random.uniform(key, (h * w,))
    idx = jnp.argmax(jnp.where(allowed.reshape(-1), noise, -1.0))
    return jnp.stack([idx % w, idx // w]).astype(jnp.int32)


def _place_agent_and_goal(key: jax.Array, walls: jax.Array) -> Level:
    """Goal and agent on distinct random free cells, random direction (needs 2 free)."""
    kg, ka, kd = jax.random.split(key, 3)
    goal = _random_cell(kg, ~walls)
    agent = _random_cell(ka, (~walls).at[goal[1], goal[0]].set(False))
    direction = jax.random.randint(kd, (), 0, 4, jnp.int32)
    return make_level(walls, agent, direction, goal)


def random_walls_level(
    key: jax.Array, num_walls: int | jax.Array = 25, height: int = 13, width: int = 13
) -> Level:
    """Domain randomisation's level: exactly ``num_walls`` walls on distinct random cells
    (clipped to leave two free), agent and goal on distinct free cells, random direction.

    ``num_walls`` may be traced, so one vmap can mix wall counts. Levels may be unsolvable,
    as in the literature.
    """
    n = height * width
    kp, kd = jax.random.split(key)
    order = jax.random.permutation(kp, n)
    count = jnp.clip(jnp.asarray(num_walls, jnp.int32), 0, n - 2)
    rank = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    walls = (rank < count).reshape(height, width)
    goal_idx, agent_idx = order[count], order[count + 1]
    goal = jnp.stack([goal_idx % width, goal_idx // width])
    agent = jnp.stack([agent_idx % width, agent_idx // width])
    direction = jax.random.randint(kd, (), 0, 4, jnp.int32)
    return make_level(walls, agent, direction, goal)


def perfect_maze_level(key: jax.Array, height: int = 13, width: int = 13) -> Level:
    """A perfect maze (exactly one path between any two free cells): a spanning tree over
    the cells at even (x, y), built by Prim's algorithm with random edge weights in a
    ``fori_loop`` (each round opens the lightest wall between the tree and a new cell).
    Agent and goal on distinct random free cells. ``height``/``width`` must be odd."""
    if height % 2 == 0 or width % 2 == 0:
        raise ValueError(f"perfect mazes need odd sizes, got {height}x{width}")
    ch, cw = height // 2 + 1, width // 2 + 1  # tree nodes per column / row
    kh, kv, ks, kp = jax.random.split(key, 4)
    w_h = jax.random.uniform(kh, (ch, cw - 1))  # edge (r, c)-(r, c+1)
    w_v = jax.random.uniform(kv, (ch - 1, cw))  # edge (r, c)-(r+1, c)
    start = jax.random.randint(ks, (), 0, ch * cw)
    in_tree = jnp.zeros((ch * cw,), jnp.bool_).at[start].set(True).reshape(ch, cw)
    open_h = jnp.zeros((ch, cw - 1), jnp.bool_)
    open_v = jnp.zeros((ch - 1, cw), jnp.bool_)

    def grow(_: int, carry: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[
        jax.Array, jax.Array, jax.Array
    ]:
        tree, oh, ov = carry
        cand_h = tree[:, :-1] ^ tree[:, 1:]
        cand_v = tree[:-1, :] ^ tree[1:, :]
        scores = jnp.concatenate(
            [jnp.where(cand_h, w_h, jnp.inf).reshape(-1), jnp.where(cand_v, w_v, jnp.inf).ravel()]
        )
        best = jnp.argmin(scores)
        nh = ch * (cw - 1)
        is_h = best < nh
        bh = jnp.where(is_h, best, 0)
        bv = jnp.where(is_h, 0, best - nh)
        hr, hc = bh // (cw - 1), bh % (cw - 1)
        vr, vc = bv // cw, bv % cw
        oh = oh.at[hr, hc].set(oh[hr, hc] | is_h)
        ov = ov.at[vr, vc].set(ov[vr, vc] | ~is_h)
        tree = jnp.where(
            is_h,
            tree.at[hr, hc].set(True).at[hr, hc + 1].set(True),
            tree.at[vr, vc].set(True).at[vr + 1, vc].set(True),
        )
        return tree, oh, ov

    _, open_h, open_v = jax.lax.fori_loop(0, ch * cw - 1, grow, (in_tree, open_h, open_v))
    walls = jnp.ones((height, width), jnp.bool_)
    walls = walls.at[0::2, 0::2].set(False)
    walls = walls.at[0::2, 1::2].set(~open_h)
    walls = walls.at[1::2, 0::2].set(~open_v)
    return _place_agent_and_goal(kp, walls)


# --------------------------------------------------------------------------- mutator

FLIP_WALL, MOVE_GOAL, MOVE_AGENT = 0, 1, 2


def _edit(key: jax.Array, level: Level) -> Level:
    """One ACCEL edit chosen uniformly: flip a wall (never under agent or goal), move the
    goal to a free cell, or move the agent to a free cell (keeping its direction)."""
    h, w = level.walls.shape
    kind_key, cell_key = jax.random.split(key)
    kind = jax.random.randint(kind_key, (), 0, 3)
    ax, ay = level.agent_pos[0], level.agent_pos[1]
    gx, gy = level.goal_pos[0], level.goal_pos[1]
    occupied = jnp.zeros((h, w), jnp.bool_).at[ay, ax].set(True).at[gy, gx].set(True)
    free = ~level.walls
    allowed = jnp.where(
        kind == FLIP_WALL,
        ~occupied,
        jnp.where(kind == MOVE_GOAL, free.at[ay, ax].set(False), free.at[gy, gx].set(False)),
    )
    cell = _random_cell(cell_key, allowed)
    flipped = level.walls.at[cell[1], cell[0]].set(~level.walls[cell[1], cell[0]])
    return level.replace(
        walls=jnp.where(kind == FLIP_WALL, flipped, level.walls),
        goal_pos=jnp.where(kind == MOVE_GOAL, cell, level.goal_pos),
        agent_pos=jnp.where(kind == MOVE_AGENT, cell, level.agent_pos),
    )


def mutate_level(key: jax.Array, level: Level, num_edits: int | jax.Array = 5) -> Level:
    """ACCEL's mutator: ``num_edits`` random edits in sequence (see :func:`_edit`); a valid
    level stays valid (agent and goal on free, distinct cells). Solvability is not kept:
    ACCEL's scores sort that out. ``num_edits`` may be traced."""

    def body(i: jax.Array, lvl: Level) -> Level:
        return _edit(jax.random.fold_in(key, i), lvl)

    return jax.lax.fori_loop(0, jnp.asarray(num_edits, jnp.int32), body, level)
