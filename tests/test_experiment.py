"""Unit tests of the experiment layer's pieces: statistics, logs, seeds, observation stats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from rlfoundry.errors import ConfigError
from rlfoundry.experiment.logs import MetricsLog, read_metrics, read_rows, rows_from_chunk
from rlfoundry.experiment.spec import default_chunk_updates, parse_seeds
from rlfoundry.experiment.stats import iqm, mean_ci, min_max_normalize, stratified_bootstrap


def test_iqm_matches_trimmed_mean() -> None:
    rng = np.random.default_rng(0)
    for n in (4, 8, 12, 40):  # where whole elements are trimmed, as scipy does
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(st.trim_mean(x, 0.25), rel=1e-12)
    assert iqm(np.array([1.0, 2.0, 3.0, 100.0])) == pytest.approx(2.5)  # outlier-robust
    assert iqm(np.array([5.0])) == 5.0


def test_stratified_bootstrap_resamples_within_tasks() -> None:
    a, b = np.array([0.0, 0.0, 0.0, 0.0]), np.array([1.0, 1.0])
    point, lo, hi = stratified_bootstrap([a, b], "mean", reps=500)
    # every resample keeps 4 runs of task a and 2 of task b: the mean never moves
    assert point == lo == hi == pytest.approx(2 / 6)
    x = np.random.default_rng(1).normal(10.0, 1.0, size=20)
    point, lo, hi = stratified_bootstrap([x], "iqm", reps=1000)
    assert lo < point < hi and lo > 9.0 and hi < 11.0
    assert np.isnan(stratified_bootstrap([np.array([np.nan])])[0])


def test_mean_ci_and_normalisation() -> None:
    m, sd, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert m == 2.0 and sd == 1.0 and lo < 2.0 < hi
    assert mean_ci(np.array([4.0]))[2:] == (4.0, 4.0)
    norm = min_max_normalize({"t": np.array([10.0, 20.0, 30.0])})["t"]
    assert norm.tolist() == [0.0, 0.5, 1.0]


def test_metrics_log_cuts_back_to_a_checkpoint(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.jsonl")
    chunk = {"episode_return": np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]]),
             "episodes": np.array([[1.0, 0.0, 2.0], [1.0, 1.0, 1.0]])}
    log.append(rows_from_chunk(chunk, 1, 10))
    with open(log.path, "a") as f:
        f.write('{"update": 4, "steps": 4')  # what kill -9 mid-write leaves
    rows = read_rows(log.path)
    assert [r["update"] for r in rows] == [1, 2, 3] and rows[1]["episode_return"] == [2.0, None]
    metrics = read_metrics(log.path)
    assert metrics["episode_return"].shape == (2, 3) and np.isnan(metrics["episode_return"][1, 1])
    assert log.truncate(2) == 2
    assert [json.loads(x)["update"] for x in log.path.read_text().splitlines()] == [1, 2]


def test_seeds_and_chunks() -> None:
    assert parse_seeds("4") == [0, 1, 2, 3]
    assert parse_seeds("0,7,9") == [0, 7, 9]
    assert parse_seeds([3]) == [3]
    for bad in ("0", "x", "1,1", [-1], [True], 2.5):
        with pytest.raises(ConfigError):
            parse_seeds(bad)
    assert default_chunk_updates(976) == 40 and default_chunk_updates(3) == 1


def test_count_flag_parser() -> None:
    from rlfoundry.cli import _count

    assert _count("500000") == _count("5e5") == _count("500k") == _count("500_000") == 500000
    assert _count("1M") == 1_000_000


def test_evaluation_reuses_trained_observation_statistics() -> None:
    import jax
    import jax.numpy as jnp

    from rlfoundry import PPOConfig
    from rlfoundry.algos.base import make_env_stack
    from rlfoundry.envs.wrappers import NormalizeObservationState, RunningMeanStd
    from rlfoundry.experiment.evaluate import freeze_observation_stats

    cfg = PPOConfig(normalize_observations=True)
    stack = make_env_stack(cfg, num_envs=3, update_stats=False)
    key = jax.random.PRNGKey(0)
    obs, state = stack.env.reset(key, stack.params)
    trained = RunningMeanStd(jnp.full((4,), 0.5), jnp.full((4,), 4.0), jnp.float32(100.0))
    fake_state = {"env": NormalizeObservationState(None, trained)}
    state, obs = freeze_observation_stats(stack, state, obs, fake_state, key)
    raw, _ = make_env_stack(PPOConfig(), num_envs=3).env.reset(key, stack.params)
    np.testing.assert_allclose(obs, (raw - 0.5) / np.sqrt(4.0 + 1e-8), rtol=1e-6)
    assert np.allclose(state.obs_stats.var, 4.0)
    # stepping keeps the frozen statistics
    _, state2, *_ = stack.env.step(key, state, jnp.zeros((3,), jnp.int32), stack.params)
    assert np.allclose(state2.obs_stats.mean, 0.5)


def test_channel_image_colours_each_channel() -> None:
    from rlfoundry.experiment.render import channel_image

    obs = np.zeros((2, 2, 3))
    obs[0, 0, 1] = 1.0
    img = channel_image(obs, cell=2)
    assert img.shape == (4, 4, 3) and img.dtype == np.uint8
    assert img[0, 0].sum() > 0 and img[3, 3].sum() == 0


def test_every_shipped_preset_is_valid() -> None:
    from rlfoundry.envs import env_names
    from rlfoundry.experiment.configure import resolve
    from rlfoundry.experiment.presets import load_preset, preset_names

    names = preset_names()
    assert {"ppo-cartpole", "ppo-pendulum", "ppo-minatar"} <= set(names)
    for name in names:
        r = resolve(preset=name)
        assert r.algo == load_preset(name).algo and r.description
        assert r.config.env in env_names(), (name, r.config.env)
    assert resolve(preset="ppo-minatar").config.hidden_sizes == (256, 256)


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0",
                                  "Breakout-MinAtar"])
def test_frames_draw_for_renderable_envs(name: str) -> None:
    import jax

    from rlfoundry.envs import make
    from rlfoundry.experiment.render import channel_image, frame_drawer

    env, params = make(name)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    draw = frame_drawer(env, name, params)
    frame = channel_image(np.asarray(env.get_obs(state, params))) if draw is None else draw(state)
    assert frame.ndim == 3 and frame.shape[-1] == 3 and frame.dtype == np.uint8
    assert frame.min() < frame.max()  # something was drawn


def test_unrenderable_env_is_a_config_error() -> None:
    from rlfoundry.envs import make
    from rlfoundry.experiment.render import frame_drawer

    env, params = make("DeepSea-bsuite")
    with pytest.raises(ConfigError, match="not supported"):
        frame_drawer(env, "DeepSea-bsuite", params)
