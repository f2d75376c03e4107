"""PAIRED: the level editor, regret and the adversary's reward, and a smoke run."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlfoundry as rf
from rlfoundry.algos.rollout import Transition
from rlfoundry.curricula import paired
from rlfoundry.envs.maze import is_valid
from rlfoundry.envs.maze_editor import LevelEditor
from rlfoundry.errors import ConfigError


def rollout(done: list[list[bool]], returns: list[list[float]]) -> Transition:
    """A [T, N] rollout where only episode ends and returns matter."""
    d = jnp.asarray(done)
    z = jnp.zeros(d.shape)
    return Transition(obs=z, action=z, log_prob=z, reward=z, terminated=d, truncated=d,
                      final_obs=z, episode_return=jnp.asarray(returns, jnp.float32),
                      episode_length=z, episode_done=d)


def test_regret_is_antagonist_best_minus_protagonist_mean_and_pays_the_adversary():
    # level 0: antagonist solves well (best 0.9), protagonist poorly (mean of 0.2 and 0.4)
    # level 1: protagonist better; level 2: nobody finishes an episode
    ant = rollout([[True, True, False], [True, False, False]],
                  [[0.5, 0.3, 0.0], [0.9, 0.0, 0.0]])
    pro = rollout([[True, True, False], [True, False, False]],
                  [[0.2, 0.8, 0.0], [0.4, 0.0, 0.0]])
    r = np.asarray(paired.regret(pro, ant))
    np.testing.assert_allclose(r, [0.9 - 0.3, 0.3 - 0.8, 0.0], atol=1e-6)
    assert r[0] > 0 and r[1] < 0 and r[2] == 0
    rewards = np.asarray(paired.adversary_rewards(jnp.asarray(r), 7))
    assert rewards.shape == (7, 3)
    np.testing.assert_allclose(rewards.sum(0), r)  # the adversary earns exactly the regret
    assert not rewards[:-1].any()  # ... on its last edit only


def test_editor_places_goal_agent_then_walls_and_resolves_clashes():
    editor = LevelEditor(num_walls=3, height=4, width=5)
    s = editor.reset(jax.random.PRNGKey(0))
    cell = lambda x, y: y * 5 + x
    for action in (cell(2, 1), cell(2, 1), cell(0, 0), cell(2, 1), cell(4, 3)):
        s = editor.step(s, jnp.int32(action))
    level = editor.level(s)
    assert level.goal_pos.tolist() == [2, 1]
    assert level.agent_pos.tolist() == [3, 1]  # put on the goal: moved to the next cell
    walls = np.asarray(level.walls)
    assert walls.sum() == 2 and walls[0, 0] and walls[3, 4] and not walls[1, 2]
    assert bool(is_valid(level)) and int(s.step) == editor.num_steps
    assert editor.observation(s).shape == (editor.obs_size,)


@pytest.fixture(scope="module")
def paired_run():
    cfg = rf.UEDConfig(env="Maze", curriculum="paired", num_envs=8, num_steps=32,
                       total_steps=8 * 32 * 4, num_minibatches=2, adversary_walls=14,
                       hidden_sizes=(32,), heldout_every=2, heldout_episodes=1)
    trainer = rf.Trainer(cfg, seeds=1, chunk_updates=4)
    start = trainer.init()
    state, metrics = trainer.run(start)
    return start, state, metrics


def test_paired_smoke_run_trains_all_three_and_logs(paired_run):
    start, state, m = paired_run
    assert isinstance(state, paired.PAIREDState)
    for who in ("ppo", "antagonist", "adversary"):
        before = jax.tree.leaves(getattr(start, who).params)
        after = jax.tree.leaves(getattr(state, who).params)
        assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True)), who
    levels = jax.tree.map(lambda x: x[0], state.ppo.env_params.level)
    assert np.asarray(jax.vmap(is_valid)(levels)).all()
    assert np.all(np.asarray(levels.walls).sum((-2, -1)) <= 14)
    for key in ("regret", "adversary_value_loss", "antagonist_episode_return", "level_walls",
                "level_solvable", "heldout_solve_rate"):
        assert np.all(np.isfinite(m[key])), key
    np.testing.assert_array_equal(m["heldout_measured"][0], [1, 0, 1, 0])
    assert np.all((m["heldout_solve_rate"] >= 0) & (m["heldout_solve_rate"] <= 1))


def test_paired_settings_are_checked():
    with pytest.raises(ConfigError, match="builds mazes"):
        rf.UEDConfig(curriculum="paired").validate()
    with pytest.raises(ConfigError, match="adversary's batch"):
        rf.UEDConfig(env="Maze", curriculum="paired", num_envs=3, num_steps=32,
                     total_steps=4096, num_minibatches=2, adversary_walls=3).validate()


@pytest.mark.parametrize("name", ["dr", "plr", "accel", "paired"])
def test_maze_presets_resolve_to_valid_curricula(name):
    from rlfoundry.experiment.configure import resolve

    config = resolve(preset=f"ued-maze-{name}").config
    config.validate()
    assert config.env == "Maze" and config.network == "cnn"
    assert config.curriculum == {"plr": "robust_plr"}.get(name, name)
