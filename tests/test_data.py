"""Offline data: the maze expert, dataset schema validation, behaviour-cloning warm starts
and the imitation loss inside PPO."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlfoundry.algos.ppo import PPOConfig
from rlfoundry.data import DatasetError, ImitationConfig, load, save
from rlfoundry.data.record import record_expert

ENV = "Maze-SixteenRooms"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "demo.npz"
    path, data = record_expert("maze_bfs", ENV, 2, out)
    return path, data


def test_expert_solves_the_maze_and_the_file_round_trips(demo):
    from rlfoundry.envs import make
    from rlfoundry.envs.maze_levels import shortest_path_length

    path, data = demo
    loaded = load(path, env=ENV, obs_shape=(54,), action_kind="discrete", num_actions=3)
    assert loaded.num_episodes == 2 and loaded.meta["source"] == "expert:maze_bfs"
    assert loaded.terminated[-1] and loaded.rewards[-1] > 0.8
    np.testing.assert_array_equal(loaded.actions, data.actions)
    _, params = make(ENV)
    moves = int((loaded.actions[loaded.episode_ids == 0] == 2).sum())
    assert moves == int(shortest_path_length(params.level))  # BFS-optimal in moves


def _write(path, **changes):
    arrays = dict(obs=np.zeros((4, 3), np.float32), actions=np.array([0, 1, 0, 1]),
                  rewards=np.zeros(4, np.float32), terminated=np.array([0, 1, 0, 1], bool),
                  truncated=np.zeros(4, bool), episode_ids=np.array([0, 0, 1, 1]))
    meta = {"format": "rlfoundry.trajectories", "version": 1, "env": "X",
            "action_kind": "discrete", "num_actions": 2}
    meta.update(changes.pop("meta", {}))
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


@pytest.mark.parametrize("changes, match", [
    ({"meta": {"version": 7}}, "schema version 7"),
    ({"meta": {"format": "other"}}, "meta.format"),
    ({"rewards": None}, "lacks the array 'rewards'"),
    ({"actions": np.array([0, 1, 0])}, "'actions' has 3 steps"),
    ({"actions": np.array([0, 1, 0, 5])}, "0..num_actions-1"),
    ({"episode_ids": np.array([1, 1, 0, 0])}, "non-decreasing"),
    ({"terminated": np.zeros(4, bool)}, "last step must be terminated"),
    ({"obs": np.full((4, 3), np.nan, np.float32)}, "finite"),
    ({"terminated": np.array([0, 1, 0, 1])}, "dtype"),
])
def test_schema_violations_are_one_line_errors(tmp_path, changes, match):
    path = _write(tmp_path / "d.npz", **changes)
    with pytest.raises(DatasetError, match=match) as err:
        load(path)
    assert "\n" not in str(err.value)


def test_dataset_must_fit_the_environment(tmp_path):
    path = _write(tmp_path / "d.npz")
    assert load(path).num_episodes == 2
    with pytest.raises(DatasetError, match="recorded on 'X'"):
        load(path, env="CartPole-v1")
    with pytest.raises(DatasetError, match="learner sees"):
        load(path, obs_shape=(4,))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable"):
        load(tmp_path / "junk.npz")
    with pytest.raises(DatasetError, match="not found"):
        load(tmp_path / "missing.npz")


def test_bc_warm_start_lowers_action_nll_and_ppo_logs_the_imitation_loss(demo, tmp_path):
    from rlfoundry.algos.base import make_env_stack
    from rlfoundry.algos.ppo import networks
    from rlfoundry.data.imitation import action_nll
    from rlfoundry.engine import Trainer
    from rlfoundry.errors import ConfigError

    path, data = demo
    cfg = PPOConfig(env=ENV, num_envs=4, num_steps=32, total_steps=4 * 32 * 2, update_epochs=1,
                    num_minibatches=1, hidden_sizes=(16,),
                    imitation=ImitationConfig(data=str(path), pretrain_steps=300,
                                              pretrain_lr=3e-3, coef=1.0, decay=0.5))
    state, metrics = Trainer(cfg, seeds=1, chunk_updates=2).run()
    actor, _ = networks(cfg, make_env_stack(cfg))
    obs, act = jnp.asarray(data.obs), jnp.asarray(data.actions)
    untrained = actor.init(jax.random.PRNGKey(0), obs[:1])
    before = float(action_nll(actor, untrained, obs, act))
    after = float(action_nll(actor, jax.tree.map(lambda x: x[0], state.params["actor"]),
                             obs, act))
    assert before > 0.9 and after < 0.3 * before, (before, after)  # BC (+ imitation) worked
    nll = metrics["imitation_nll"]
    assert nll.shape == (1, 2) and np.all(np.isfinite(nll)) and np.all(nll < 0.5 * before)
    with pytest.raises(ConfigError, match="recorded on"):
        PPOConfig(env="Maze", imitation=ImitationConfig(data=str(path))).validate()
    saved = save(tmp_path / "copy", load(path))
    assert saved.suffix == ".npz" and load(saved).num_steps == load(path).num_steps
