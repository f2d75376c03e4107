"""LPG-style gridworlds: reward, termination and respawn semantics, levels, batching."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlfoundry.curricula.levels import level_space
from rlfoundry.envs import VectorEnv, make
from rlfoundry.envs.gridworld import (
    MAX_TYPES,
    NAMED_LEVELS,
    Gridworld,
    is_valid,
    make_grid_level,
    mutate_level,
    random_level,
    stack_levels,
)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
fjit = partial(jax.jit, compiler_options=FAST)
ENV = Gridworld()


def level(p_terminate=(0.0, 0.0), p_respawn=(0.0, 0.0), walls=None, max_steps=20):
    """5x5 (padded to 6): agent at (0, 0), a +1 object at (1, 0), a -0.5 object at (0, 1)."""
    walls = np.zeros((5, 5), bool) if walls is None else walls
    return make_grid_level(walls, (0, 0), [(1, 0), (0, 1)], [0, 1], [1.0, -0.5],
                           p_terminate, p_respawn, max_steps, size=6)


@fjit
def step(key, state, action, params):
    return ENV.step(key, state, action, params)


@fjit
def reset(key, params):
    return ENV.reset(key, params)


def test_collecting_gives_the_type_reward_and_removes_the_object():
    params = level()
    key = jax.random.PRNGKey(0)
    obs, s = reset(key, params)
    grid = np.asarray(obs).reshape(6, 6, 2 + MAX_TYPES)
    assert grid[0, 0, 1] == 1 and grid[0, 1, 2] == 1 and grid[1, 0, 3] == 1
    assert grid[:, 5, 0].all() and grid[5, :, 0].all()  # padding reads as wall
    obs, s, r, term, trunc, _ = step(key, s, RIGHT, params)
    assert float(r) == 1.0 and not bool(term) and not bool(trunc)
    assert not bool(s.obj_alive[0]) and bool(s.obj_alive[1])
    assert np.asarray(obs).reshape(6, 6, -1)[0, 1, 2] == 0  # gone from the board
    obs, s, r, *_ = step(key, s, LEFT, params)
    obs, s, r, *_ = step(key, s, DOWN, params)
    assert float(r) == -0.5


def test_walls_and_border_block_moves():
    walls = np.zeros((5, 5), bool)
    walls[0, 1] = True  # the cell right of the start (the object moves below)
    params = level(walls=walls)
    params = params.replace(obj_pos=params.obj_pos.at[0].set(jnp.array([4, 4])))
    key = jax.random.PRNGKey(0)
    _, s = reset(key, params)
    for action in (RIGHT, UP, LEFT):
        _, s2, r, *_ = step(key, s, action, params)
        np.testing.assert_array_equal(s2.agent_pos, [0, 0])
        assert float(r) == 0.0


def test_termination_probability_ends_the_episode_and_resets():
    params = level(p_terminate=(1.0, 0.0))
    key = jax.random.PRNGKey(1)
    _, s = reset(key, params)
    obs, s2, r, term, trunc, info = step(key, s, RIGHT, params)
    assert bool(term) and float(r) == 1.0
    assert bool(s2.obj_alive[0])  # auto-reset restored the level
    np.testing.assert_array_equal(s2.agent_pos, [0, 0])
    # P(terminate) = 0.5: about half of many first collections end the episode
    params = level(p_terminate=(0.5, 0.0))
    keys = jax.random.split(key, 400)
    terms = jax.vmap(lambda k: step(k, s, RIGHT, params)[3])(keys)
    assert 0.4 < float(terms.mean()) < 0.6


def test_respawn_puts_the_object_back_on_a_free_cell():
    params = level(p_respawn=(1.0, 0.0))
    key = jax.random.PRNGKey(2)
    _, s = reset(key, params)
    _, s, r, *_ = step(key, s, RIGHT, params)
    assert float(r) == 1.0 and bool(s.obj_alive[0])
    x, y = np.asarray(s.obj_pos[0])
    assert (x, y) != (1, 0) and (x, y) != (0, 1) and x < 5 and y < 5
    never = level(p_respawn=(0.0, 0.0))
    _, s = reset(key, never)
    for k in range(5):
        _, s, *_ = step(jax.random.PRNGKey(k), s, [RIGHT, LEFT, RIGHT, LEFT, UP][k], never)
    assert not bool(s.obj_alive[0])


def test_truncation_at_the_levels_episode_length():
    params = level(max_steps=3)
    key = jax.random.PRNGKey(0)
    _, s = reset(key, params)
    truncs = []
    for _ in range(3):
        _, s, _, term, trunc, _ = step(key, s, UP, params)
        truncs.append(bool(trunc))
    assert truncs == [False, False, True] and int(s.time) == 0


def test_named_levels_follow_the_lpg_table():
    for name, spec in NAMED_LEVELS.items():
        env, params = make(f"Gridworld-{name}-v0")
        assert bool(is_valid(params))
        assert params.walls.shape == (spec["size"], spec["size"])
        assert int(params.max_steps_in_episode) == spec["max_steps"]
        assert int(params.obj_present.sum()) == len(spec["types"])
        np.testing.assert_allclose(params.reward[: len(spec["reward"])], spec["reward"])
    _, longer = make("Gridworld-longer-v0")
    assert int(longer.walls[:, 4].sum()) == 9 - 2  # centre wall with two gaps


def test_random_levels_are_valid_and_follow_the_distribution():
    levels = fjit(jax.vmap(random_level))(jax.random.split(jax.random.PRNGKey(0), 500))
    assert bool(jax.vmap(is_valid)(levels).all())
    n = np.asarray(levels.obj_present.sum(1))
    assert n.min() == 1 and n.max() == 5
    assert (np.asarray(levels.reward[:, 0]) >= 0).all()
    lengths = np.asarray(levels.max_steps_in_episode)
    assert lengths.min() >= 20 and lengths.max() <= 750
    pt = np.asarray(levels.p_terminate)[:, 0]
    assert pt.min() >= 0.01 and pt.max() <= 1.0
    free = ~np.asarray(levels.walls)
    # the real grid size, unless random walls fill its last row and column
    extent = np.array([np.argwhere(f).max() + 1 for f in free])
    assert extent.max() == 10 and (extent >= 4).mean() > 0.95
    mutated = fjit(jax.vmap(mutate_level, in_axes=(0, 0, None)))(
        jax.random.split(jax.random.PRNGKey(1), 500), levels, 5)
    assert bool(jax.vmap(is_valid)(mutated).all())
    assert not np.array_equal(np.asarray(mutated.walls), np.asarray(levels.walls))


def test_jit_and_vmap_over_levels_in_a_vector_env():
    space = level_space("Gridworld-random-v0")
    env, params = make("Gridworld-random-v0")
    levels = stack_levels([space.generate(jax.random.PRNGKey(i), params) for i in range(4)])
    venv = VectorEnv(env, 4, batched_params=True)

    @fjit
    def run(key, levels):
        obs, s = venv.reset(key, levels)

        def body(c, k):
            s, total = c
            a = jax.random.randint(k, (4,), 0, 4)
            _, s, r, term, trunc, _ = venv.step(k, s, a, levels)
            return (s, total + r), term | trunc

        (s, total), dones = jax.lax.scan(body, (s, jnp.zeros(4)), jax.random.split(key, 200))
        return obs, total, dones

    obs, total, dones = run(jax.random.PRNGKey(0), levels)
    assert obs.shape == (4, 10 * 10 * (2 + MAX_TYPES))
    # each env starts on its own level
    starts = np.asarray(obs).reshape(4, 10, 10, -1)[..., 1].reshape(4, -1).argmax(1)
    expected = [int(levels.agent_pos[i, 1] * 10 + levels.agent_pos[i, 0]) for i in range(4)]
    assert starts.tolist() == expected
    assert bool(dones.any())


@pytest.mark.parametrize("name", ["Gridworld-random-v0"])
def test_ppo_config_accepts_gridworlds(name):
    from rlfoundry.algos.ppo import PPOConfig

    PPOConfig(env=name, total_steps=1024, num_envs=4, num_steps=64).validate()
