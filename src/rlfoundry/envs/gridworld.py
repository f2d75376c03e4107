"""LPG-style gridworlds (Oh et al., 2020): collect objects whose type sets the reward.

A level is the env's params (:class:`GridLevel`): the walls, where the agent starts, up to
``MAX_OBJECTS`` objects with a type each, and per type a reward, a probability that
collecting it ends the episode and a per-step probability that a collected object
reappears on a random free cell; plus the episode length. All arrays have fixed shapes (a
``size x size`` grid, walls outside the real grid), so levels of different sizes stack and
``vmap``, and curricula can choose them per reset.

Dynamics per step: the agent moves up/right/down/left (blocked by walls and the border);
an object on its new cell is collected (reward of its type; the episode terminates with
its type's P(terminate)); then each collected object respawns with its type's P(respawn)
on a random cell free of walls, the agent and other objects. Episodes are truncated at
``max_steps_in_episode``.

Observation: a flat float32 ``[size, size, 2 + MAX_TYPES]`` grid (row-major): channel 0
walls (and the padding), 1 the agent, ``2 + t`` objects of type ``t`` on the board.

The named training levels (REFERENCES §5: dense, sparse, long, longer, long_dense) fix the
object positions and start cell with a seeded draw; :func:`random_level` is the random
distribution of the LPG paper (grid 4–10, up to 15 walls, 1–5 objects, rewards U(−1, 1)
with the first positive, P(terminate) log-uniform [0.01, 1], P(respawn) log-uniform
[0.001, 0.1], episode length log-uniform [20, 750]).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlfoundry.envs.core import Environment, spaces

MAX_OBJECTS = 8
MAX_TYPES = 5
NUM_ACTIONS = 4
# (dx, dy) per action: up, right, down, left; y grows downwards.
MOVES = jnp.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=jnp.int32)


@struct.dataclass
class GridLevel:
    """One gridworld. ``walls`` bool [S, S] (true outside the real grid); positions are
    int32 ``(x, y)``; ``obj_present`` marks the object slots the level uses; the per-type
    arrays have ``MAX_TYPES`` entries."""

    walls: jax.Array
    agent_pos: jax.Array
    obj_pos: jax.Array  # [MAX_OBJECTS, 2]
    obj_type: jax.Array  # [MAX_OBJECTS]
    obj_present: jax.Array  # [MAX_OBJECTS]
    reward: jax.Array  # [MAX_TYPES]
    p_terminate: jax.Array  # [MAX_TYPES]
    p_respawn: jax.Array  # [MAX_TYPES]
    max_steps_in_episode: jax.Array  # int32 scalar (a leaf, so batches mix lengths)


@struct.dataclass
class GridState:
    agent_pos: jax.Array
    obj_pos: jax.Array
    obj_alive: jax.Array  # on the board now (present and not collected)
    time: jax.Array


def make_grid_level(
    walls: Any, agent_pos: Any, obj_pos: Any, obj_type: Any, reward: Any,
    p_terminate: Any, p_respawn: Any, max_steps: int, size: int | None = None,
) -> GridLevel:
    """A level from plain lists: objects and types are padded to the fixed maxima, the grid
    to ``size`` (default: its own size) with walls."""
    walls = np.asarray(walls, bool)
    size = size or max(walls.shape)
    grid = np.ones((size, size), bool)
    grid[: walls.shape[0], : walls.shape[1]] = walls
    n, t = len(obj_type), len(reward)
    if n > MAX_OBJECTS or t > MAX_TYPES:
        raise ValueError(f"at most {MAX_OBJECTS} objects and {MAX_TYPES} types, got {n}, {t}")
    pos = np.zeros((MAX_OBJECTS, 2), np.int32)
    pos[:n] = np.asarray(obj_pos, np.int32).reshape(n, 2)
    types = np.zeros((MAX_OBJECTS,), np.int32)
    types[:n] = obj_type

    def per_type(values: Any) -> jax.Array:
        out = np.zeros((MAX_TYPES,), np.float32)
        out[:t] = values
        return jnp.asarray(out)

    return GridLevel(
        walls=jnp.asarray(grid),
        agent_pos=jnp.asarray(agent_pos, jnp.int32),
        obj_pos=jnp.asarray(pos),
        obj_type=jnp.asarray(types),
        obj_present=jnp.arange(MAX_OBJECTS) < n,
        reward=per_type(reward),
        p_terminate=per_type(p_terminate),
        p_respawn=per_type(p_respawn),
        max_steps_in_episode=jnp.int32(max_steps),
    )


def random_free_cell(key: jax.Array, allowed: jax.Array) -> jax.Array:
    """A uniformly random ``(x, y)`` among the true cells of ``allowed`` [S, S]."""
    s = allowed.shape[-1]
    noise = jax.random.uniform(key, (allowed.size,))
    idx = jnp.argmax(jnp.where(allowed.reshape(-1), noise, -1.0))
    return jnp.stack([idx % s, idx // s]).astype(jnp.int32)


def occupancy(walls: jax.Array, positions: jax.Array, mask: jax.Array) -> jax.Array:
    """Bool [S, S]: the cells of ``positions[mask]``."""
    grid = jnp.zeros(walls.shape, jnp.int32)
    grid = grid.at[positions[:, 1], positions[:, 0]].add(mask.astype(jnp.int32))
    return grid > 0


def is_valid(level: GridLevel) -> jax.Array:
    """Agent and present objects on distinct free cells inside the grid, probabilities in
    [0, 1], object types below ``MAX_TYPES``: the invariant generators and mutators keep."""
    s = level.walls.shape[-1]
    everyone = jnp.concatenate([level.agent_pos[None], level.obj_pos])
    used = jnp.concatenate([jnp.array([True]), level.obj_present])
    inside = jnp.all((everyone >= 0) & (everyone < s), axis=-1)
    x, y = jnp.clip(everyone[:, 0], 0, s - 1), jnp.clip(everyone[:, 1], 0, s - 1)
    free = ~level.walls[y, x]
    same = jnp.all(everyone[:, None] == everyone[None], axis=-1) & used[:, None] & used[None]
    distinct = same.sum() == used.sum()
    probs_ok = jnp.all((level.p_terminate >= 0) & (level.p_terminate <= 1)
                       & (level.p_respawn >= 0) & (level.p_respawn <= 1))
    types_ok = jnp.all((level.obj_type >= 0) & (level.obj_type < MAX_TYPES))
    return jnp.all(jnp.where(used, inside & free, True)) & distinct & probs_ok & types_ok


class Gridworld(Environment):
    """Collect objects on a grid; actions 0 up, 1 right, 2 down, 3 left."""

    def __init__(self, level: GridLevel | None = None, name: str = "Gridworld"):
        self._level = level if level is not None else named_level("dense")
        self._name = name

    @property
    def default_params(self) -> GridLevel:
        return self._level

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int:
        return int(self._level.walls.shape[-1])

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.size * self.size * (2 + MAX_TYPES),), jnp.float32)

    def observation(self, state: GridState, level: GridLevel) -> jax.Array:
        s = level.walls.shape[-1]
        grid = jnp.zeros((s, s, 2 + MAX_TYPES), jnp.float32)
        grid = grid.at[:, :, 0].set(level.walls.astype(jnp.float32))
        grid = grid.at[state.agent_pos[1], state.agent_pos[0], 1].set(1.0)
        grid = grid.at[state.obj_pos[:, 1], state.obj_pos[:, 0], 2 + level.obj_type].max(
            state.obj_alive.astype(jnp.float32)
        )
        return grid.reshape(-1)

    def reset_env(self, key: jax.Array, params: GridLevel) -> tuple[jax.Array, GridState]:
        """Deterministic: the level fixes the start cell and the objects."""
        state = GridState(
            agent_pos=params.agent_pos,
            obj_pos=params.obj_pos,
            obj_alive=params.obj_present,
            time=jnp.int32(0),
        )
        return self.observation(state, params), state

    def step_env(
        self, key: jax.Array, state: GridState, action: Any, params: GridLevel
    ) -> tuple[jax.Array, GridState, jax.Array, jax.Array, dict[str, Any]]:
        level = params
        s = level.walls.shape[-1]
        term_key, respawn_key = jax.random.split(key)
        target = state.agent_pos + MOVES[jnp.asarray(action, jnp.int32)]
        inside = jnp.all((target >= 0) & (target < s))
        cx, cy = jnp.clip(target[0], 0, s - 1), jnp.clip(target[1], 0, s - 1)
        blocked = ~inside | level.walls[cy, cx]
        agent = jnp.where(blocked, state.agent_pos, target)

        hit = state.obj_alive & jnp.all(state.obj_pos == agent, axis=-1)
        reward = jnp.sum(jnp.where(hit, level.reward[level.obj_type], 0.0))
        p_stay = jnp.prod(jnp.where(hit, 1.0 - level.p_terminate[level.obj_type], 1.0))
        terminated = jax.random.uniform(term_key) >= p_stay
        alive = state.obj_alive & ~hit

        def respawn(carry: tuple[jax.Array, jax.Array], k: jax.Array) -> tuple[Any, None]:
            pos, alive = carry
            key_i = jax.random.fold_in(respawn_key, k)
            coin, cell_key = jax.random.split(key_i)
            taken = occupancy(level.walls, pos, alive) | level.walls
            taken = taken.at[agent[1], agent[0]].set(True)
            wants = (level.obj_present[k] & ~alive[k]
                     & (jax.random.uniform(coin) < level.p_respawn[level.obj_type[k]]))
            can = wants & ~jnp.all(taken)
            cell = random_free_cell(cell_key, ~taken)
            pos = pos.at[k].set(jnp.where(can, cell, pos[k]))
            return (pos, alive.at[k].set(alive[k] | can)), None

        (obj_pos, alive), _ = jax.lax.scan(respawn, (state.obj_pos, alive), jnp.arange(MAX_OBJECTS))
        new = GridState(agent_pos=agent, obj_pos=obj_pos, obj_alive=alive, time=state.time + 1)
        obs = self.observation(new, level)
        return obs, new, reward.astype(jnp.float32), terminated, {}


# ------------------------------------------------------------------------ named levels

# grid, max steps, object types, reward / P(terminate) / P(respawn) per type (REFERENCES §5)
NAMED_LEVELS: dict[str, dict[str, Any]] = {
    "dense": dict(size=11, max_steps=500, types=[0, 0, 1, 2], reward=[1, -1, -1],
                  p_terminate=[0, 0.5, 0], p_respawn=[0.05, 0.1, 0.5]),
    "sparse": dict(size=13, max_steps=50, types=[0, 1], reward=[1, -1],
                   p_terminate=[1, 1], p_respawn=[0, 0]),
    "long": dict(size=11, max_steps=1000, types=[0, 0, 1, 1], reward=[1, -1],
                 p_terminate=[0, 0.5], p_respawn=[0.01, 1]),
    "longer": dict(size=9, max_steps=2000, types=[0, 0, 1, 1, 1, 1, 1], reward=[1, -1],
                   p_terminate=[0.1, 0.8], p_respawn=[0.01, 1], walls="centre"),
    "long_dense": dict(size=11, max_steps=2000, types=[0, 0, 0, 0], reward=[1],
                       p_terminate=[0], p_respawn=[0.005], walls="cross"),
}


def _named_walls(kind: str | None, size: int) -> np.ndarray:
    walls = np.zeros((size, size), bool)
    mid = size // 2
    if kind == "centre":  # a wall down the middle column with two gaps
        walls[:, mid] = True
        walls[size // 4, mid] = walls[size - 1 - size // 4, mid] = False
    elif kind == "cross":  # four rooms: a wall cross with one gap in each arm
        walls[mid, :] = True
        walls[:, mid] = True
        for gap in ((mid, mid // 2), (mid, size - 1 - mid // 2),
                    (mid // 2, mid), (size - 1 - mid // 2, mid)):
            walls[gap[1], gap[0]] = False
    return walls


def named_level(name: str, seed: int = 0) -> GridLevel:
    """One of LPG's training gridworlds; start cell and object cells drawn with ``seed``
    among the free cells (the paper does not fix them)."""
    spec = NAMED_LEVELS[name]
    size = spec["size"]
    walls = _named_walls(spec.get("walls"), size)
    free = np.argwhere(~walls)  # (y, x)
    rng = np.random.default_rng(seed + sum(map(ord, name)))
    cells = free[rng.choice(len(free), 1 + len(spec["types"]), replace=False)][:, ::-1]
    return make_grid_level(walls, cells[0], cells[1:], spec["types"], spec["reward"],
                           spec["p_terminate"], spec["p_respawn"], spec["max_steps"])


# ----------------------------------------------------------------- random distribution

RANDOM_SIZE = 10  # the random levels' padded grid (their real grid is 4..10)


def _log_uniform(key: jax.Array, low: float, high: float, shape: tuple[int, ...] = ()) -> jax.Array:
    return jnp.exp(jax.random.uniform(key, shape, minval=np.log(low), maxval=np.log(high)))


def random_level(key: jax.Array, size: int = RANDOM_SIZE) -> GridLevel:
    """LPG's random gridworld distribution in a ``size x size`` padded grid.

    Real grid g ~ U{4..min(10, size)}, min(15, g²/2) walls on random cells, 1–5 objects of
    distinct types, the agent and the objects on distinct free cells. Objects may be walled
    off, as in LPG; an agent then learns to collect what it can reach.
    """
    kg, kc, kn, kr, kt, kp, kl = jax.random.split(key, 7)
    g = jax.random.randint(kg, (), 4, min(10, size) + 1)
    ys, xs = jnp.divmod(jnp.arange(size * size), size)
    inside = (xs < g) & (ys < g)
    # inside cells first, in random order
    order = jnp.argsort(jnp.where(inside, jax.random.uniform(kc, (size * size,)), 2.0))
    num_walls = jnp.minimum(15, g * g // 2)
    rank = jnp.zeros((size * size,), jnp.int32).at[order].set(jnp.arange(size * size))
    walls = (~inside | (rank < num_walls)).reshape(size, size)
    cell = lambda i: jnp.stack([order[i] % size, order[i] // size]).astype(jnp.int32)
    agent = cell(num_walls)
    slots = jnp.arange(MAX_OBJECTS)
    obj_pos = jax.vmap(cell)(num_walls + 1 + slots)
    n = jax.random.randint(kn, (), 1, 6)
    present = slots < n
    obj_pos = jnp.where(present[:, None], obj_pos, agent)  # unused slots: harmless filler
    types = jnp.where(present, slots, 0).astype(jnp.int32)
    type_used = jnp.arange(MAX_TYPES) < n
    reward = jax.random.uniform(kr, (MAX_TYPES,), minval=-1.0, maxval=1.0)
    reward = jnp.where(type_used, reward.at[0].set(jnp.abs(reward[0])), 0.0)
    p_term = jnp.where(type_used, _log_uniform(kt, 0.01, 1.0, (MAX_TYPES,)), 0.0)
    p_resp = jnp.where(type_used, _log_uniform(kp, 0.001, 0.1, (MAX_TYPES,)), 0.0)
    length = jnp.round(_log_uniform(kl, 20.0, 750.0)).astype(jnp.int32)
    return GridLevel(walls, agent, obj_pos, types, present, reward, p_term, p_resp, length)


FLIP_WALL, MOVE_AGENT, MOVE_OBJECT = 0, 1, 2


def _edit(key: jax.Array, level: GridLevel) -> GridLevel:
    """One edit chosen uniformly: flip a wall on an unoccupied cell of the real grid (cells
    with a wall on every side of the padding stay), move the agent, or move a present
    object to a free cell."""
    kind_key, cell_key, obj_key = jax.random.split(key, 3)
    kind = jax.random.randint(kind_key, (), 0, 3)
    occupied = occupancy(level.walls, level.obj_pos, level.obj_present)
    occupied = occupied.at[level.agent_pos[1], level.agent_pos[0]].set(True)
    # the real grid: rows/columns with at least one free cell
    real = (~level.walls).any(0)[None, :] & (~level.walls).any(1)[:, None]
    free = ~level.walls & ~occupied
    allowed = jnp.where(kind == FLIP_WALL, real & ~occupied, free)
    cell = random_free_cell(cell_key, allowed)
    has_cell = jnp.any(allowed)
    flipped = level.walls.at[cell[1], cell[0]].set(~level.walls[cell[1], cell[0]])
    which = jax.random.choice(obj_key, MAX_OBJECTS, p=level.obj_present / level.obj_present.sum())
    moved = level.obj_pos.at[which].set(cell)
    return level.replace(
        walls=jnp.where(has_cell & (kind == FLIP_WALL), flipped, level.walls),
        agent_pos=jnp.where(has_cell & (kind == MOVE_AGENT), cell, level.agent_pos),
        obj_pos=jnp.where(has_cell & (kind == MOVE_OBJECT), moved, level.obj_pos),
    )


def mutate_level(key: jax.Array, level: GridLevel, num_edits: int | jax.Array = 5) -> GridLevel:
    """``num_edits`` random edits (see :func:`_edit`); valid levels stay valid."""

    def body(i: jax.Array, lvl: GridLevel) -> GridLevel:
        return _edit(jax.random.fold_in(key, i), lvl)

    return jax.lax.fori_loop(0, jnp.asarray(num_edits, jnp.int32), body, level)


def stack_levels(levels: list[GridLevel]) -> GridLevel:
    """Levels of one padded size as one batch (leading axis)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *levels)


def random_gridworld() -> Gridworld:
    """The registry's ``Gridworld-random-v0``: default level = the random draw of seed 0."""
    return Gridworld(random_level(jax.random.PRNGKey(0)), "Gridworld-random-v0")


def named_gridworld(name: str) -> Any:
    return lambda: Gridworld(named_level(name), f"Gridworld-{name}-v0")
