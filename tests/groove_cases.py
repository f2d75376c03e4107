"""GROOVE and Ray cases that train agents: a GROOVE run with checkpoint/resume, and the
Ray backend's fitness against the vmap backend's. Run by hand (see test_groove.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pytest

from rlfoundry.discovery import DiscoveryConfig
from rlfoundry.discovery.objective_search import program_key
from rlfoundry.discovery.run import (
    config_from_json,
    config_to_json,
    discover,
    load_objective,
    make_search,
)
from rlfoundry.objectives import LPO

INNER = (("total_steps", 1024), ("num_envs", 4), ("num_steps", 32), ("num_minibatches", 2))
# exactly what test_cli_discover_groove's command line builds (bar the generations), so the
# CLI run reuses this file's compiled programs instead of compiling its own
GROOVE = DiscoveryConfig(envs=("Gridworld-random-v0",), curriculum="groove", population=4,
                         generations=2, hidden=4, levels=2, buffer_size=8, replay_prob=1.0,
                         normalize_by_ppo=False, final_fraction=0.5,
                         inner=(("total_steps", 1024),))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("groove") / "full"
    return run, discover(run, GROOVE, seed=1, show_progress=False)


def test_groove_run_logs_regret_and_the_buffer(uninterrupted):
    run, summary = uninterrupted
    assert summary["finished"] and summary["generations_done"] == 2
    rows = [json.loads(x) for x in (run / "meta.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["regret_mean"]) and np.isfinite(r["antagonist_return"])
               for r in rows)
    assert rows[-1]["buffer_fill"] > 0
    assert isinstance(load_objective(run), LPO)
    assert summary["host_fraction"] < 0.5


def test_groove_resume_gives_identical_results(uninterrupted, tmp_path):
    full_run, _ = uninterrupted
    run = tmp_path / "split"
    discover(run, dataclasses.replace(GROOVE, generations=1), seed=1, show_progress=False)
    (run / "discovery.json").write_text(json.dumps(config_to_json(GROOVE)))
    discover(run, resume=True, show_progress=False)
    np.testing.assert_array_equal(np.asarray(load_objective(run).theta),
                                  np.asarray(load_objective(full_run).theta))


def test_cli_discover_groove(tmp_path, capsys):
    from rlfoundry.cli import main

    run = tmp_path / "d"
    code = main(["discover", "--objective", "lpo", "--curriculum", "groove", "--generations",
                 "1", "--population", "4", "--hidden", "4", "--levels", "2",
                 "--buffer-size", "8", "--replay-prob", "1.0", "--no-normalize",
                 "--final-fraction", "0.5", "--inner-steps", "1024", "--no-progress",
                 "--run-dir", str(run)])
    assert code == 0
    assert "groove levels" in capsys.readouterr().out
    saved = config_from_json(json.loads((run / "discovery.json").read_text()))
    assert saved.curriculum == "groove"
    assert program_key(saved) == program_key(GROOVE)  # the compiled programs were shared


def test_ray_backend_gives_the_vmap_backends_fitness(tmp_path):
    """...and its workers compile into the driver's persistent cache (the CLI's)."""
    pytest.importorskip("ray")
    from rlfoundry.experiment import compile_cache

    cache = compile_cache.enable(str(tmp_path / "xla"))
    # a large inner learning rate, so the members' drifts change their policies in 8 updates
    cfg = DiscoveryConfig(population=4, hidden=4, final_fraction=1.0, normalize_by_ppo=False,
                          inner=(*INNER, ("lr", 0.02)))
    vmap_search = make_search(cfg)
    ray_search = make_search(dataclasses.replace(cfg, backend="ray", shards=2))
    assert ray_search.backend.cache_dir == cache
    try:
        meta = ray_search.init(jax.random.PRNGKey(0))
        _, ray_stats = ray_search.step(meta)
        # only the workers compile the evaluation here (the driver: ask, fitness, tell)
        assert any(p.name.startswith("jit_evaluate") for p in Path(cache).iterdir())
        # members far apart (large drift weights), so a mixed-up order would show
        thetas = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (4, cfg.num_params()))
        key = jax.random.PRNGKey(2)
        ray_returns = ray_search.backend.evaluate(ray_search, thetas, key)
    finally:
        ray_search.backend.close()
    _, vmap_stats = vmap_search.step(meta)
    assert ray_stats == vmap_stats
    vmap_returns = np.asarray(vmap_search.backend.evaluate(vmap_search, thetas, key))
    np.testing.assert_array_equal(np.asarray(ray_returns), vmap_returns)
    assert len(np.unique(vmap_returns)) > 1


def test_heldout_returns_match_single_runs():
    """The held-out evaluation vmaps over seeds and levels in one program (before the LAPACK
    fix this shape hung jaxlib every time); each entry equals that (seed, level)'s own run."""
    from rlfoundry.algos.ppo import PPOConfig
    from rlfoundry.curricula.levels import level_space
    from rlfoundry.discovery.groove import final_return, heldout_returns, train_on_level
    from rlfoundry.envs import make

    cfg = PPOConfig(env="Gridworld-random-v0", **dict(INNER))
    levels = jax.vmap(level_space(cfg.env).generate, in_axes=(0, None))(
        jax.random.split(jax.random.PRNGKey(3), 3), make(cfg.env)[1])
    keys = jax.random.split(jax.random.PRNGKey(4), 2)
    table = np.asarray(heldout_returns(cfg, levels, keys, 0.5))
    assert table.shape == (2, 3)
    one = jax.jit(lambda level, k: final_return(train_on_level(cfg, level, k)[1], 0.5))
    for s in range(2):
        for i in range(3):
            level = jax.tree.map(lambda x, i=i: x[i], levels)
            np.testing.assert_allclose(table[s, i], one(level, keys[s]), rtol=1e-5, atol=1e-6)
