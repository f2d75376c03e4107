"""GROOVE's level curriculum and the discovery backends, without inner training runs.

The parts of GROOVE that train agents (a generation, resume, the Ray backend's fitness
against the vmap backend's) are in ``groove_cases.py``, run in a child process like the
other discovery cases (jaxlib 0.10.2 CPU deadlock; see test_discovery.py)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from child_process import run_cases

from rlfoundry.discovery import DiscoveryConfig
from rlfoundry.errors import ConfigError

CASES = Path(__file__).with_name("groove_cases.py")
INNER = (("total_steps", 1024), ("num_envs", 4), ("num_steps", 32), ("num_minibatches", 2))


def groove(curriculum: str = "groove", **kw):
    from rlfoundry.discovery.groove import GrooveSearch

    cfg = DiscoveryConfig(envs=("Gridworld-random-v0",), curriculum=curriculum, population=4,
                          hidden=4, levels=3, buffer_size=8, normalize_by_ppo=False,
                          inner=INNER, **kw)
    return GrooveSearch(cfg)


def test_config_checks_are_one_line_errors():
    base = {"envs": ("Gridworld-random-v0",), "inner": INNER}
    for bad, match in (({"curriculum": "grove"}, "curriculum must be one of"),
                       ({"antagonist": "dqn"}, "antagonist must be one of"),
                       ({"backend": "dask"}, "backend must be one of"),
                       ({"shards": 0}, "shards must be a positive"),
                       ({"replay_prob": 1.5}, "replay_prob"),
                       ({"final_fraction": 0.0}, "final_fraction"),
                       ({"curriculum": "groove", "envs": ("Acrobot-v1",)}, "no level space"),
                       ({"curriculum": "groove", "envs": ("Gridworld-random-v0", "Maze")},
                        "one environment")):
        with pytest.raises(ConfigError, match=match) as err:
            DiscoveryConfig(**{**base, **bad}).validate()
        assert "\n" not in str(err.value)


def test_uniform_sampling_never_replays_and_keeps_no_buffer():
    search = groove("uniform")
    meta = search.init(jax.random.PRNGKey(0))
    assert meta.buffer.capacity == 1
    for i in range(3):
        levels, _, replay = search._select(meta.buffer, jax.random.PRNGKey(i))
        assert not bool(replay)
        assert levels.walls.shape == (3, 10, 10)
    out = {"returns": jnp.ones((4, 3)), "scores": jnp.zeros((4, 3))}
    buffer, stats = search._curate(meta.buffer, levels, jnp.zeros(3, jnp.int32), replay, out,
                                   jnp.zeros(3))
    assert int(buffer.size) == 0 and stats["regret_mean"] == pytest.approx(-1.0)


def test_groove_scores_levels_by_regret_and_replays_the_highest():
    search = groove("groove", replay_prob=1.0)
    meta = search.init(jax.random.PRNGKey(0))
    buffer = meta.buffer
    levels, idx, replay = search._select(buffer, jax.random.PRNGKey(1))
    assert not bool(replay)  # an empty buffer cannot replay
    returns = jnp.array([[0.0, 0.5, 1.0]] * 4) + jnp.arange(4.0)[:, None] * 0.1
    antagonist = jnp.array([2.0, 0.5, 1.0])
    out = {"returns": returns, "scores": jnp.zeros((4, 3))}
    buffer, stats = search._curate(buffer, levels, idx, replay, out, antagonist)
    regret = antagonist - returns.mean(0)  # [1.85, -0.15, -0.15]
    np.testing.assert_allclose(np.sort(buffer.scores[buffer.filled]), np.sort(regret), atol=1e-6)
    assert stats["regret_mean"] == pytest.approx(float(regret.mean()), abs=1e-6)
    # fitness is minus each member's mean regret: the best member has the highest returns
    fitness = search._fitness(returns, antagonist)
    np.testing.assert_allclose(fitness, (returns - antagonist).mean(1), atol=1e-6)
    # with replay_prob 1 the next levels come from the buffer, mostly the high-regret one
    top = int(jnp.argmax(jnp.where(buffer.filled, buffer.scores, -jnp.inf)))
    picks = []
    for i in range(20):
        _, idx, replay = search._select(buffer, jax.random.PRNGKey(10 + i))
        assert bool(replay)
        picks += np.asarray(idx).tolist()
    assert np.mean(np.array(picks) == top) > 0.5


def test_pvl_and_maxmc_curricula_score_with_the_agents_scores():
    search = groove("pvl")
    meta = search.init(jax.random.PRNGKey(0))
    levels, idx, replay = search._select(meta.buffer, jax.random.PRNGKey(1))
    out = {"returns": jnp.zeros((4, 3)), "scores": jnp.array([[1.0, 2.0, 3.0]] * 4)}
    buffer, stats = search._curate(meta.buffer, levels, idx, replay, out, jnp.zeros(3))
    np.testing.assert_allclose(np.sort(buffer.scores[buffer.filled]), [1.0, 2.0, 3.0])
    assert stats["level_score_mean"] == pytest.approx(2.0)


def test_cli_rejects_a_curriculum_on_an_env_without_levels(capsys):
    from rlfoundry.cli import main

    code = main(["discover", "--curriculum", "groove", "--env", "Acrobot-v1",
                 "--generations", "1", "--population", "4", "--no-progress",
                 "--run-dir", "unused"])
    assert code == 2
    err = capsys.readouterr().err
    assert "level space" in err and len(err.strip().splitlines()) == 1


def test_groove_and_ray_cases_in_a_child_process():
    run_cases(CASES)
