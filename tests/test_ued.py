"""Curricula inside the compiled training step: DR, PLR, robust PLR and ACCEL smoke runs."""

from __future__ import annotations

import numpy as np
import pytest

import rlfoundry as rf
from rlfoundry.errors import ConfigError

BASE = dict(num_envs=8, num_steps=32, total_steps=8 * 32 * 16, buffer_size=24, min_fill=0.25,
            num_minibatches=2)


@pytest.fixture(scope="module", params=["dr", "plr", "robust_plr", "accel"])
def run(request):
    cfg = rf.UEDConfig(curriculum=request.param, **BASE)
    state, metrics = rf.Trainer(cfg, seeds=2, chunk_updates=16).run()
    return request.param, state, metrics


def test_curriculum_modes_follow_the_method(run):
    method, state, m = run
    replayed, mutated, learned = m["replayed"], m["mutated"], m["learned"]
    if method == "dr":
        assert replayed.sum() == 0 and mutated.sum() == 0 and learned.all()
        return
    assert replayed.sum() > 0, "PLR never replayed"
    if method == "plr":
        assert learned.all()
    if method in ("robust_plr", "accel"):
        np.testing.assert_array_equal(learned, replayed)  # gradients only on replayed levels
    if method == "accel":
        np.testing.assert_array_equal(mutated[:, 1:], replayed[:, :-1])
    else:
        assert mutated.sum() == 0


def test_buffer_fills_without_duplicates_and_logs(run):
    method, state, m = run
    if method == "dr":
        return
    import jax

    from rlfoundry.curricula import level_hash

    assert np.all(np.diff(m["buffer_fill"], axis=1) >= 0)
    for seed in range(2):
        buf = jax.tree.map(lambda x, s=seed: x[s], state.buffer)
        filled = np.asarray(buf.filled)
        hashes = np.asarray(jax.vmap(level_hash)(buf.levels))[filled]
        assert len({tuple(h) for h in hashes.tolist()}) == filled.sum()
    assert np.all(m["buffer_score_p25"] <= m["buffer_score_p75"] + 1e-6)
    assert np.all(m["buffer_score_p75"] <= m["buffer_score_max"] + 1e-6)
    for key in ("buffer_score_mean", "buffer_staleness_mean", "buffer_staleness_max",
                "buffer_score_p50", "level_pole_length",
                "level_score_mean", "episode_return"):
        assert np.all(np.isfinite(m[key])), key


def test_levels_differ_across_envs(run):
    _, state, _ = run
    lengths = np.asarray(state.ppo.env_params.length)
    assert lengths.shape == (2, 8) and len(np.unique(lengths.round(4))) > 2


def test_bad_curriculum_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="curriculum must be one of"):
        rf.UEDConfig(curriculum="paired_x").validate()
    with pytest.raises(ConfigError, match="no level space"):
        rf.UEDConfig(env="Acrobot-v1").validate()


def test_accel_on_mazes_logs_level_complexity():
    cfg = rf.UEDConfig(env="Maze", curriculum="accel", num_envs=8, num_steps=32,
                       total_steps=8 * 32 * 6, buffer_size=16, min_fill=0.25, num_minibatches=2)
    _, m = rf.Trainer(cfg, seeds=1, chunk_updates=6).run()
    assert m["replayed"].sum() >= 1 and m["mutated"].sum() >= 1
    assert np.all(m["level_walls"] >= 0) and np.all(m["level_shortest_path"] >= -1)
    assert m["level_walls"][0, 0] == pytest.approx(25.0)  # new levels: 25 random walls
    assert np.all((m["level_solvable"] >= 0) & (m["level_solvable"] <= 1))
    assert np.all(m["heldout_solve_rate"] == -1.0)  # held-out check off by default


def test_maze_cnn_sees_the_view_as_an_image():
    import jax
    import jax.numpy as jnp

    from rlfoundry.algos import ppo
    from rlfoundry.algos.base import make_env_stack

    cfg = rf.UEDConfig(env="Maze", network="cnn", hidden_sizes=(32,), num_envs=4, num_steps=8,
                       total_steps=64, num_minibatches=2)
    actor, critic = ppo.networks(cfg, make_env_stack(cfg))
    assert actor.image_shape == (5, 5, 2) and critic.image_shape == (5, 5, 2)
    params = actor.init(jax.random.PRNGKey(0), jnp.zeros((1, 54)))
    kernel = params["params"]["Torso_0"]["Conv_0"]["kernel"]
    assert kernel.shape == (3, 3, 2, 16)  # a convolution over the 2-channel view
    assert actor.apply(params, jnp.zeros((3, 54))).shape == (3, 3)
