"""Discovery: the ES step, a compiled generation of learned-objective training, resume."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlfoundry.discovery import DiscoveryConfig
from rlfoundry.discovery.objective_search import make_strategy
from rlfoundry.discovery.run import config_from_json, config_to_json, discover, load_objective
from rlfoundry.errors import ConfigError, RunFolderError
from rlfoundry.objectives import LPO

TINY = DiscoveryConfig(
    population=4, generations=2, hidden=8, normalize_by_ppo=False,
    inner=(("num_envs", 4), ("num_steps", 32), ("total_steps", 1024), ("num_minibatches", 2)),
)


def test_one_es_generation_improves_fitness_on_a_toy_objective():
    """OpenES with centred ranks and antithetic pairs moves its mean uphill on -|x - 1|²."""
    cfg = DiscoveryConfig(population=32, sigma=0.1, lr=0.1)
    target = jnp.ones(10)
    fitness = lambda x: -jnp.sum((x - target) ** 2, axis=-1)
    es = make_strategy(cfg, jnp.zeros(10))
    params = es.default_params
    state = es.init(jax.random.PRNGKey(0), jnp.zeros(10), params)
    before = fitness(es.get_mean(state))
    pop, state = es.ask(jax.random.PRNGKey(1), state, params)
    state, _ = es.tell(jax.random.PRNGKey(2), pop, -fitness(pop), state, params)
    assert float(fitness(es.get_mean(state))) > float(before)


def test_config_validation_and_json_round_trip():
    with pytest.raises(ConfigError, match="even"):
        DiscoveryConfig(population=5).validate()
    with pytest.raises(ConfigError, match="Open_ES"):
        DiscoveryConfig(strategy="OpenES").validate()
    with pytest.raises(ConfigError, match="lpo"):
        DiscoveryConfig(objective="lpoo").validate()
    assert config_from_json(json.loads(json.dumps(config_to_json(TINY)))) == TINY
    # A tuple-valued inner setting (gridworld PPO's hidden sizes) survives JSON as a tuple:
    # the config keys the compiled-program cache, so a resumed run must hash it.
    grid = dataclasses.replace(TINY, inner=(*TINY.inner, ("hidden_sizes", (32, 32))))
    back = config_from_json(json.loads(json.dumps(config_to_json(grid))))
    assert back == grid and hash(back) == hash(grid)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("disc") / "full"
    summary = discover(run, TINY, seed=3, show_progress=False)
    return run, summary


def test_discovery_run_writes_objective_curves_and_heatmap(uninterrupted):
    run, summary = uninterrupted
    assert summary["finished"] and summary["generations_done"] == 2
    rows = [json.loads(x) for x in (run / "meta.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2]
    assert (run / "plots" / "drift_heatmap.png").stat().st_size > 0
    assert (run / "plots" / "meta_curve.png").stat().st_size > 0
    obj = load_objective(run)
    assert isinstance(obj, LPO) and np.shape(obj.theta) == (8 * 8 + 8,)
    assert float(obj.drift(jnp.array([1.3]), jnp.array([1.0]), jnp.float32(0)).min()) >= 0


def test_meta_state_checkpoint_resume_gives_identical_results(uninterrupted, tmp_path):
    full_run, _ = uninterrupted
    run = tmp_path / "split"
    half = DiscoveryConfig(**{**TINY.__dict__, "generations": 1})
    discover(run, half, seed=3, show_progress=False)
    # continue the same run to two generations: rewrite its config as a longer run
    (run / "discovery.json").write_text(json.dumps(config_to_json(TINY)))
    discover(run, resume=True, show_progress=False)
    a = np.asarray(load_objective(run).theta)
    b = np.asarray(load_objective(full_run).theta)
    np.testing.assert_array_equal(a, b)
    rows_a = [json.loads(x) for x in (run / "meta.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (full_run / "meta.jsonl").read_text().splitlines()]
    assert [r["fitness_mean"] for r in rows_a] == [r["fitness_mean"] for r in rows_b]


def test_resume_of_a_missing_run_is_one_line_error(tmp_path):
    with pytest.raises(RunFolderError, match="not a discovery run"):
        discover(tmp_path / "nope", resume=True)


def test_cli_discover_then_train_with_the_learned_objective(tmp_path, capsys):
    from rlfoundry.cli import main

    run = tmp_path / "d"
    code = main(["discover", "--objective", "ta_lpo", "--generations", "1", "--population", "4",
                 "--hidden", "4", "--inner-steps", "2048", "--no-normalize", "--no-progress",
                 "--run-dir", str(run)])
    assert code == 0
    out = capsys.readouterr().out
    assert "finished after 1 generations" in out and "objective.json" in out
    assert (run / "plots" / "drift_heatmap.png").exists()
    code = main(["train", "--objective", str(run), "--dry-run"])
    assert code == 0
    assert '"kind": "ta_lpo"' in capsys.readouterr().out
    assert main(["train", "--objective", str(tmp_path / "missing"), "--dry-run"]) == 2
    assert "neither a built-in objective" in capsys.readouterr().err
