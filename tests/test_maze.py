"""Maze: text format, BFS, generators, mutator, dynamics, view, batching, held-out set."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlfoundry.envs import VectorEnv, make
from rlfoundry.envs.maze import (
    FORWARD,
    OBS_SIZE,
    TURN_LEFT,
    TURN_RIGHT,
    Maze,
    MazeParams,
    is_valid,
    split_observation,
)
from rlfoundry.envs.maze_heldout import (
    HELDOUT_MAZES,
    heldout_levels,
    load_mazes,
    stack_levels,
    stack_params,
)
from rlfoundry.envs.maze_levels import (
    is_solvable,
    level_to_text,
    mutate_level,
    num_walls,
    parse_level,
    perfect_maze_level,
    random_walls_level,
    shortest_path_length,
)
from rlfoundry.errors import ConfigError

T = 250
# Behaviour, not speed, is under test: the cheapest XLA settings compile several times faster.
FAST = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}
fjit = partial(jax.jit, compiler_options=FAST)


def lv(text: str):
    return parse_level(text)


def params_of(text: str, max_steps: int = T) -> MazeParams:
    return MazeParams(level=lv(text), max_steps_in_episode=max_steps)


def same_level(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def unbatch(levels, i):
    """Level i of a batch (pass numpy batches from ``jax.device_get`` for speed)."""
    return jax.tree.map(lambda x: x[i], levels)


@pytest.fixture(scope="module")
def env() -> Maze:
    return Maze()


@pytest.fixture(scope="module")
def step(env):
    return fjit(env.step)


@pytest.fixture(scope="module")
def reset(env):
    return fjit(env.reset)


# ------------------------------------------------------------------------------- text

HAND_DRAWN = [
    ">G",
    "#.v\n.G.\n...",
    ".....\n.#.#.\n..<..\n.#.#.\nG....",
    HELDOUT_MAZES["Labyrinth"].strip(),
]


@pytest.mark.parametrize("text", HAND_DRAWN)
def test_text_round_trip_hand_drawn(text):
    level = lv(text)
    assert level_to_text(level) == text
    assert same_level(parse_level(level_to_text(level)), level)


def test_parse_fields_and_conventions():
    level = lv("#.v\n.G.\n...")
    np.testing.assert_array_equal(level.walls, [[1, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert level.walls.dtype == jnp.bool_ and level.agent_pos.dtype == jnp.int32
    assert level.agent_pos.tolist() == [2, 0]  # (x, y)
    assert int(level.agent_dir) == 1  # down
    assert level.goal_pos.tolist() == [1, 1]
    assert (level.height, level.width) == (3, 3)
    # Blank lines around the drawing and trailing spaces are ignored.
    assert same_level(parse_level("\n\n#.v  \n.G.\n...\n\n"), level)


def test_text_round_trip_generated():
    @fjit
    def generate(keys):
        walls = jax.vmap(random_walls_level, in_axes=(0, None))(keys, 40)
        return walls, jax.vmap(perfect_maze_level)(keys), jax.vmap(mutate_level)(keys, walls)

    batches = jax.device_get(generate(jax.random.split(jax.random.key(0), 16)))
    for batch in batches:
        for i in range(16):
            level = unbatch(batch, i)
            assert same_level(parse_level(level_to_text(level)), level)


@pytest.mark.parametrize(
    "text, fragment",
    [
        (">.x\n..G", "line 1, column 3: unknown character 'x'"),
        ("...\n.x.\n>.G", "line 2, column 2"),
        ("...\n...\n..G", "no agent"),
        (">..\n...\n...", "no goal"),
        (">.G\n..G", "2 goals"),
        (">.<\n..G", "2 agents"),
        (">.G\n..\n...", "line 2 has 2 cells but line 1 has 3"),
        ("\n  \n", "empty"),
    ],
)
def test_bad_text_gives_one_line_errors(text, fragment):
    with pytest.raises(ConfigError) as err:
        parse_level(text, source="m.txt")
    message = str(err.value)
    assert fragment in message and message.startswith("m.txt: ") and "\n" not in message


def test_error_line_numbers_count_leading_blank_lines():
    with pytest.raises(ConfigError, match="line 3, column 1"):
        parse_level("\n>.G\n?..")


# -------------------------------------------------------------------------------- BFS

BFS_CASES = {
    "straight corridor": (">...G", 4),
    "13-wide corridor": (">" + "." * 11 + "G", 12),
    "blocked goal": (">.#G", -1),
    "walled-in goal": ("...#G\n>..##\n.....", -1),
    # Manhattan distance 3, but the wall forces down 2, right 3, up 2.
    "detour": (">.#G\n..#.\n....", 7),
    # Corridor maze: down column 0 (6), along row 12 (10), up column 10 (5).
    "SmallCorridor": (HELDOUT_MAZES["SmallCorridor"], 21),
}


@pytest.mark.parametrize("name", list(BFS_CASES))
def test_bfs_on_hand_drawn_levels(name):
    text, expected = BFS_CASES[name]
    level = lv(text)
    length, solvable = fjit(lambda lvl: (shortest_path_length(lvl), is_solvable(lvl)))(level)
    assert int(length) == expected and bool(solvable) == (expected >= 0)


def test_bfs_jits_and_vmaps_over_levels():
    texts = [">...G", ">.#G", "..G.>", "G...>"]
    batch = stack_levels([lv(t) for t in texts])
    both = jax.vmap(lambda lvl: (shortest_path_length(lvl), is_solvable(lvl)))
    lengths, solvable = fjit(both)(batch)
    assert lengths.tolist() == [4, -1, 2, 4]
    assert solvable.tolist() == [True, False, True, True]


# ------------------------------------------------------------------------- generators


def test_random_walls_levels_are_valid_with_exact_wall_counts():
    keys = jax.random.split(jax.random.key(1), 64)
    counts = jnp.arange(64) % 61  # a traced wall count per level: 0..60
    levels, valid, walls = fjit(
        lambda k, c: (lambda ls: (ls, jax.vmap(is_valid)(ls), num_walls(ls)))(
            jax.vmap(random_walls_level)(k, c)
        )
    )(keys, counts)
    assert levels.walls.shape == (64, 13, 13)
    assert valid.all()
    np.testing.assert_array_equal(walls, counts)
    levels = jax.device_get(levels)
    assert len({level_to_text(unbatch(levels, i)) for i in range(64)}) == 64
    # Too many walls are clipped so agent and goal still fit.
    crowded = fjit(lambda k: num_walls(random_walls_level(k, 500, 3, 3)))(jax.random.key(0))
    assert int(crowded) == 7


def test_perfect_mazes_are_valid_solvable_spanning_trees():
    keys = jax.random.split(jax.random.key(2), 64)
    levels, valid, solvable = fjit(
        lambda k: (lambda ls: (ls, jax.vmap(is_valid)(ls), jax.vmap(is_solvable)(ls)))(
            jax.vmap(perfect_maze_level)(k)
        )
    )(keys)
    assert valid.all() and solvable.all()
    levels = jax.device_get(levels)
    free = ~np.asarray(levels.walls)
    # A tree: connected (solvable from any cell, checked above for agent/goal) and
    # exactly (free cells - 1) adjacent free pairs, i.e. no loops.
    edges = (free[:, 1:, :] & free[:, :-1, :]).sum((1, 2)) + (
        free[:, :, 1:] & free[:, :, :-1]
    ).sum((1, 2))
    np.testing.assert_array_equal(edges, free.sum((1, 2)) - 1)
    np.testing.assert_array_equal(free.sum((1, 2)), 7 * 7 + 48)  # 49 cells + 48 passages
    assert len({level_to_text(unbatch(levels, i)) for i in range(64)}) == 64


def test_mutations_keep_levels_valid():
    n = 512
    keys = jax.random.split(jax.random.key(3), n)
    parents = fjit(jax.vmap(random_walls_level, in_axes=(0, None)))(keys, 60)

    @fjit
    def mutate(keys, levels, edits):
        children = jax.vmap(mutate_level, in_axes=(0, 0, None))(keys, levels, edits)
        return children, jax.vmap(is_valid)(children)

    for edits in (1, 5, 40):  # traced: one compilation
        children, valid = mutate(jax.random.split(jax.random.key(edits), n), parents, edits)
        assert valid.all(), edits
        wall_changes = (children.walls != parents.walls).sum((1, 2))
        assert int(wall_changes.max()) <= edits
        if edits == 1:
            moved_goal = (children.goal_pos != parents.goal_pos).any(1)
            moved_agent = (children.agent_pos != parents.agent_pos).any(1)
            changed = (wall_changes > 0).astype(int) + moved_goal + moved_agent
            assert int(changed.max()) == 1  # one edit changes one thing
            # Each kind of edit happens about a third of the time.
            for kind in (wall_changes > 0, moved_goal, moved_agent):
                assert 0.2 < float(kind.mean()) < 0.45
    # Repeated mutation of a nearly full grid still keeps agent and goal apart and free.
    crowded = jax.tree.map(lambda x: x[:1], parents).replace(
        walls=jnp.ones((1, 13, 13), bool).at[0, 0, :2].set(False),
        agent_pos=jnp.array([[0, 0]], jnp.int32),
        goal_pos=jnp.array([[1, 0]], jnp.int32),
    )
    children, valid = mutate(jax.random.split(jax.random.key(4), 1), crowded, 100)
    assert bool(valid[0])


# --------------------------------------------------------------------------- dynamics


DYN = """
.....
.#...
.>..G
"""


def test_turning_moving_walls_and_border(reset, step):
    params = params_of(DYN)
    _, s = reset(jax.random.key(0), params)
    assert s.agent_pos.tolist() == [1, 2] and int(s.agent_dir) == 0
    key = jax.random.key(1)

    def act(state, a):
        obs, state, r, term, trunc, _ = step(key, state, a, params)
        assert float(r) == 0.0 and not bool(term) and not bool(trunc)
        return state

    s1 = act(s, TURN_LEFT)
    assert int(s1.agent_dir) == 3 and s1.agent_pos.tolist() == [1, 2]
    s2 = act(s1, FORWARD)  # the wall at (1, 1) blocks
    assert s2.agent_pos.tolist() == [1, 2] and int(s2.time) == 2
    s3 = act(act(s2, TURN_RIGHT), TURN_RIGHT)  # up -> right -> down
    assert int(s3.agent_dir) == 1
    s4 = act(s3, FORWARD)  # the bottom border blocks
    assert s4.agent_pos.tolist() == [1, 2]
    s5 = act(act(s4, TURN_RIGHT), FORWARD)  # face left, step to x = 0
    assert int(s5.agent_dir) == 2 and s5.agent_pos.tolist() == [0, 2]
    s6 = act(s5, FORWARD)  # the left border blocks
    assert s6.agent_pos.tolist() == [0, 2]
    assert int(act(act(s6, TURN_LEFT), TURN_LEFT).agent_dir) == 0  # left twice: 2 -> 0


def test_goal_reward_termination_and_auto_reset(reset, step):
    params = params_of(DYN)
    obs0, s = reset(jax.random.key(0), params)
    key = jax.random.key(1)
    for t in range(1, 4):
        obs, s, r, term, trunc, info = step(key, s, FORWARD, params)
        if t < 3:
            assert not bool(term) and float(r) == 0.0
    assert bool(term) and not bool(trunc)
    assert float(r) == pytest.approx(1 - 0.9 * 3 / T)
    # Auto-reset: back at the level's start; final_observation shows the agent on the goal.
    np.testing.assert_array_equal(obs, obs0)
    assert s.agent_pos.tolist() == [1, 2] and int(s.time) == 0
    final_view, _ = split_observation(info["final_observation"])
    assert float(final_view[4, 2, 1]) == 1.0  # goal channel at the agent's own cell


def test_reward_decays_with_time_and_truncation_at_horizon(env, reset, step):
    key = jax.random.key(0)
    # Turn in place 8 times (two full circles), then step onto the goal: t = 9.
    params = params_of(">G")
    _, s = reset(key, params)
    for _ in range(8):
        s = step(key, s, TURN_LEFT, params)[1]
    _, _, r, term, _, _ = step(key, s, FORWARD, params)
    assert bool(term) and float(r) == pytest.approx(1 - 0.9 * 9 / T)
    # An unsolvable level truncates exactly at T with final_observation, reward 0.
    params = params_of(">#G")
    obs0, s = reset(key, params)
    run = fjit(
        lambda s: jax.lax.scan(
            lambda s, _: (env.step(key, s, TURN_LEFT, params)[1], None), s, None, length=T - 1
        )[0]
    )
    s = run(s)
    assert int(s.time) == T - 1
    obs, s2, r, term, trunc, info = step(key, s, TURN_LEFT, params)
    assert bool(trunc) and not bool(term) and float(r) == 0.0
    np.testing.assert_array_equal(obs, obs0)  # reset
    assert int(s2.time) == 0
    # Before the reset the agent had turned T = 250 times: 250 % 4 = 2 lefts -> facing left.
    _, direction = split_observation(info["final_observation"])
    assert direction.tolist() == [0, 0, 1, 0]


# ------------------------------------------------------------------------------- view

VIEW_LEVEL = """
.......
..#....
.......
...G...
.#.....
...^...
.......
"""

EXPECTED_VIEWS = {
    # facing up (3): the view is the map itself, rows y = 1..5, columns x = 1..5.
    3: [".#...", ".....", "..G..", "#....", "....."],
    # facing right (0): ahead is +x, the agent's left is up; beyond x = 6 is outside.
    0: ["#####", "....#", "....#", "....#", "G...#"],
    # facing left (2): ahead is -x, the agent's left is down.
    2: ["#####", "#....", "#..#.", "#....", "#...G"],
    # facing down (1): ahead is +y, the agent's left is +x; y >= 7 is outside.
    1: ["#####", "#####", "#####", ".....", "....."],
}


@pytest.mark.parametrize("direction", [3, 0, 2, 1])
def test_egocentric_view_matches_drawing(reset, direction):
    level = lv(VIEW_LEVEL)
    level = level.replace(agent_dir=jnp.int32(direction))
    obs, _ = reset(jax.random.key(0), MazeParams(level=level))
    assert obs.shape == (OBS_SIZE,) and obs.dtype == jnp.float32
    view, onehot = split_observation(obs)
    drawn = np.full((5, 5), ".")
    drawn[np.asarray(view[..., 0]) == 1] = "#"
    drawn[np.asarray(view[..., 1]) == 1] = "G"
    assert ["".join(r) for r in drawn] == EXPECTED_VIEWS[direction]
    assert onehot.tolist() == np.eye(4)[direction].tolist()


# --------------------------------------------------------------------------- batching


def test_vector_env_steps_different_levels_and_resets_each_to_its_own(reset):
    levels = [lv(">G.\n...\n..."), lv("...\n.v.\n.G."), lv("#..\n<G.\n..."), lv("G..\n...\n..^")]
    levels.append(fjit(partial(perfect_maze_level, height=3, width=3))(jax.random.key(5)))
    n = len(levels)
    params = stack_params(levels)
    venv = VectorEnv(Maze(), n, batched_params=True)
    obs0, state = fjit(venv.reset)(jax.random.key(0), params)
    step = fjit(venv.step)
    assert obs0.shape == (n, OBS_SIZE)
    for i, level in enumerate(levels):
        single = reset(jax.random.key(0), MazeParams(level=level))[0]
        np.testing.assert_array_equal(obs0[i], single)
    actions = jnp.full((n,), FORWARD)
    obs, state, r, term, trunc, info = step(jax.random.key(1), state, actions, params)
    assert term.tolist()[:3] == [True, True, False] and not trunc.any()
    np.testing.assert_allclose(np.asarray(r), [1 - 0.9 / T] * 2 + [0.0] * (n - 2), rtol=1e-6)
    # Each finished env restarted on its own level; the third bumped into the border.
    np.testing.assert_array_equal(obs[:2], obs0[:2])
    assert state.agent_pos.tolist()[2] == [0, 1]
    np.testing.assert_array_equal(info["final_observation"][2], obs[2])


def test_registry_builds_the_maze():
    env, params = make("Maze")
    assert env.num_actions == 3 and env.observation_space(params).shape == (OBS_SIZE,)
    assert int(fjit(shortest_path_length)(params.level)) == 24  # empty 13x13, corner to corner
    assert params.max_steps_in_episode == T


# --------------------------------------------------------------------------- held-out

HELDOUT_NAMES = [
    "SixteenRooms", "SixteenRooms2", "Labyrinth", "LabyrinthFlipped", "Labyrinth2",
    "StandardMaze", "StandardMaze2", "StandardMaze3", "SmallCorridor", "LargeCorridor",
    "FourRooms", "SimpleCrossing", "PerfectMaze",
]


# Move counts from our BFS, checked by hand where easy: SmallCorridor 6 + 10 + 5,
# LargeCorridor 9 + 16 + 8, SimpleCrossing's monotone path 8 + 8.
HELDOUT_LENGTHS = [20, 22, 96, 96, 96, 40, 56, 39, 21, 33, 24, 16, 16]


def test_every_heldout_maze_parses_is_solvable_and_round_trips(reset):
    levels = heldout_levels()
    assert list(levels) == HELDOUT_NAMES
    for name, level in levels.items():
        assert level_to_text(level) == HELDOUT_MAZES[name].strip(), name
    assert levels["SixteenRooms"].walls.shape == (13, 13)
    assert levels["LargeCorridor"].walls.shape == (19, 19)
    # Stacked (smaller mazes padded with walls to 19x19), all are valid and solvable with
    # the same path lengths as unpadded.
    batch = stack_levels(levels)
    assert batch.walls.shape == (13, 19, 19)
    lengths, valid = fjit(jax.vmap(lambda lvl: (shortest_path_length(lvl), is_valid(lvl))))(batch)
    assert valid.all() and lengths.tolist() == HELDOUT_LENGTHS
    small = fjit(shortest_path_length)(levels["SimpleCrossing"])
    assert int(small) == HELDOUT_LENGTHS[HELDOUT_NAMES.index("SimpleCrossing")]
    # The padded level plays identically: same first observation as the unpadded one.
    venv = VectorEnv(Maze(), len(levels), batched_params=True)
    obs, _ = fjit(venv.reset)(jax.random.key(0), stack_params(levels))
    single = reset(jax.random.key(0), MazeParams(level=levels["SimpleCrossing"]))[0]
    np.testing.assert_array_equal(obs[HELDOUT_NAMES.index("SimpleCrossing")], single)


def test_load_mazes_from_file_folder_and_heldout(tmp_path: Path):
    (tmp_path / "a.txt").write_text(">.G\n...\n")
    (tmp_path / "b.txt").write_text("\n#v#\n.G.\n")
    (tmp_path / "notes.md").write_text("not a maze")
    one = load_mazes(tmp_path / "a.txt")
    assert list(one) == ["a"] and level_to_text(one["a"]) == ">.G\n..."
    both = load_mazes(tmp_path)
    assert list(both) == ["a", "b"]
    assert list(load_mazes("heldout")) == HELDOUT_NAMES


def test_load_mazes_errors_are_one_line(tmp_path: Path):
    cases = [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "empty", "holds no *.txt maze files"),
        (tmp_path / "bad", "bad/x.txt: line 2, column 1: unknown character 'o'"),
    ]
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.txt").write_text(">.G\no..\n")
    for path, fragment in cases:
        with pytest.raises(ConfigError) as err:
            load_mazes(path)
        assert fragment in str(err.value) and "\n" not in str(err.value)
