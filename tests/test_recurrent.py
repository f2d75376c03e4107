"""The LSTM actor-critic: shapes, memory reset at episode starts, and that the PPO update's
sequence re-run reproduces the rollout's log-probabilities and values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlfoundry as rf
from rlfoundry.algos import recurrent
from rlfoundry.algos.base import make_env_stack
from rlfoundry.errors import ConfigError

CFG = dict(env="Maze", recurrent=True, lstm_size=16, hidden_sizes=(16,), num_envs=4,
           num_steps=24, total_steps=4 * 24 * 4, num_minibatches=2, buffer_size=8,
           min_fill=0.25)


@pytest.fixture(scope="module")
def setup():
    cfg = rf.UEDConfig(curriculum="dr", **CFG)
    cfg.validate()
    stack = make_env_stack(cfg)
    net, _ = recurrent.networks(cfg, stack)
    state = jax.jit(lambda k: rf.curricula.ued.init(cfg, k))(jax.random.PRNGKey(0))
    return cfg, stack, net, state


def test_shapes_and_memory_reset(setup):
    cfg, _, net, state = setup
    params = state.ppo.params
    run = jax.jit(lambda obs, starts: net.apply(params, net.initial_carry(3), obs, starts))
    obs = jax.random.uniform(jax.random.PRNGKey(1), (5, 3, 54))
    starts = jnp.zeros((5, 3), bool)
    carry, logits, values = run(obs, starts)
    assert logits.shape == (5, 3, 3) and values.shape == (5, 3)
    assert carry[0].shape == (3, 16) and carry[1].shape == (3, 16)
    # a start at t=3 in env 1 forgets: its outputs from t=3 equal a fresh run from t=3
    _, logits_reset, _ = run(obs, starts.at[3, 1].set(True))
    _, fresh, _ = run(obs[3:], starts[3:])
    np.testing.assert_allclose(logits_reset[3:, 1], fresh[:, 1], atol=1e-5)
    assert not np.allclose(logits_reset[3:, 1], logits[3:, 1])  # memory mattered before
    np.testing.assert_allclose(logits_reset[:, 0], logits[:, 0], atol=1e-6)  # others kept


def test_sequence_rerun_matches_the_rollout(setup):
    cfg, stack, net, state = setup
    ppo = state.ppo
    obs, env_state = stack.env.reset(jax.random.PRNGKey(2), ppo.env_params)
    ppo = ppo.replace(env=rf.algos.rollout.EnvCarry(env_state, obs))
    _, traj, batch = jax.jit(lambda s: recurrent.rollout_batch(
        cfg, stack, net, None, s, jax.random.PRNGKey(3), jax.random.PRNGKey(4)))(ppo)
    assert batch.obs.shape == (24, 4, 54) and batch.start.shape == (24, 4)
    np.testing.assert_array_equal(batch.start[1:], traj.episode_done[:-1])
    _, logits, values = jax.jit(net.apply)(ppo.params, net.initial_carry(4), batch.obs,
                                           batch.start)
    log_prob = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_prob, batch.action[..., None], -1)[..., 0]
    np.testing.assert_allclose(log_prob, batch.log_prob, atol=1e-5)
    np.testing.assert_allclose(values, batch.value, atol=1e-5)


def test_recurrent_smoke_run_learns():
    cfg = rf.UEDConfig(curriculum="dr", **CFG)
    trainer = rf.Trainer(cfg, seeds=1, chunk_updates=4)
    start = trainer.init()
    state, m = trainer.run(start)
    changed = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(start.ppo.params),
                                                     jax.tree.leaves(state.ppo.params),
                                                     strict=True)]
    assert any(changed)
    for key in ("policy_loss", "value_loss", "entropy"):
        assert np.all(np.isfinite(m[key])), key


def test_recurrent_settings_are_checked():
    with pytest.raises(ConfigError, match="divisor of num_envs"):
        rf.UEDConfig(**{**CFG, "num_minibatches": 3, "num_steps": 48}).validate()


def test_plain_evaluation_plays_the_recurrent_agent_with_its_memory(setup):
    """``rlfoundry eval``/``render`` play any learner through ``Algorithm.make_policy``: for
    the LSTM agent its memory is carried step to step (the same greedy actions as a full
    sequence pass) and forgotten where an episode ends."""
    from rlfoundry.algos.base import forget_where
    from rlfoundry.curricula.ued import UED
    from rlfoundry.experiment.evaluate import play

    cfg, _, net, state = setup
    policy = UED.make_policy(cfg, state, deterministic=True)
    obs = jax.random.uniform(jax.random.PRNGKey(5), (6, 3, 54))
    _, logits, _ = net.apply(state.ppo.params, net.initial_carry(3), obs,
                             jnp.zeros((6, 3), bool))
    memory = policy[0](3)
    for t in range(6):
        memory, action = policy[1](memory, obs[t], jax.random.PRNGKey(t))
        np.testing.assert_array_equal(action, jnp.argmax(logits[t], -1))
    done = jnp.array([True, False, True])
    forgot = forget_where(policy, memory, done)
    fresh = policy[0](3)
    for m, f, old in zip(jax.tree.leaves(forgot), jax.tree.leaves(fresh),
                         jax.tree.leaves(memory), strict=True):
        np.testing.assert_array_equal(m[done], f[done])
        np.testing.assert_array_equal(m[~done], old[~done])

    returns, lengths, finished = jax.jit(play(cfg, UED, 3, 40, True))(state,
                                                                       jax.random.PRNGKey(6))
    assert returns.shape == (3,) and np.all(np.isfinite(returns)) and np.all(lengths <= 40)
