"""PPO: probe environments, truncation, determinism and vmap over seeds and hyperparameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rlfoundry as rf
from rlfoundry.algos import ppo
from rlfoundry.algos.advantages import gae
from rlfoundry.algos.base import make_env_stack
from rlfoundry.nets import GaussianActor, policy_distribution, policy_noise, sample_with_noise

PROBE_CFG = dict(
    num_envs=8, num_steps=16, total_steps=24_576, lr=3e-3, anneal_lr=False, ent_coef=0.0,
    update_epochs=4, num_minibatches=2, hidden_sizes=(32, 32),
)


def trained(env: str, **overrides):
    cfg = rf.PPOConfig(env=env, **{**PROBE_CFG, **overrides})
    state, metrics = rf.Trainer(cfg, seeds=[0], chunk_updates=1000).run()
    one = jax.tree.map(lambda x: x[0], state)
    actor, critic = ppo.networks(cfg, make_env_stack(cfg))
    return cfg, one, actor, critic


def value(critic, state, obs):
    return np.asarray(critic.apply(state.params["critic"], jnp.array(obs, jnp.float32)))


def probs(actor, state, obs):
    logits = actor.apply(state.params["actor"], jnp.array(obs, jnp.float32))
    return np.asarray(jax.nn.softmax(logits))


def test_probe_constant_reward_value():
    _, s, _, critic = trained("Probe-Constant-v0")
    assert value(critic, s, [[0.0]])[0] == pytest.approx(1.0, abs=0.05)


def test_probe_observation_dependent_value():
    _, s, _, critic = trained("Probe-Observation-v0")
    v = value(critic, s, [[1.0], [-1.0]])
    assert v[0] == pytest.approx(1.0, abs=0.1) and v[1] == pytest.approx(-1.0, abs=0.1)


def test_probe_two_step_discounting():
    _, s, _, critic = trained("Probe-TwoStep-v0", gamma=0.9, gae_lambda=1.0)
    v = value(critic, s, [[0.0], [1.0]])
    assert v[0] == pytest.approx(0.9, abs=0.08) and v[1] == pytest.approx(1.0, abs=0.08)


def test_probe_action_dependent_reward():
    _, s, actor, critic = trained("Probe-Action-v0")
    assert probs(actor, s, [[0.0]])[0, 1] > 0.95
    assert value(critic, s, [[0.0]])[0] > 0.8


def test_probe_observation_and_action():
    _, s, actor, critic = trained("Probe-ObservationAction-v0")
    p = probs(actor, s, [[1.0], [-1.0]])
    assert p[0, 1] > 0.95 and p[1, 0] > 0.95
    assert np.all(value(critic, s, [[1.0], [-1.0]]) > 0.8)


def test_probe_continuous_action_mean():
    _, s, actor, _ = trained("Probe-ContinuousAction-v0", lr=3e-3, init_log_std=-0.5)
    mean, log_std = actor.apply(s.params["actor"], jnp.zeros((1, 1)))
    assert float(mean[0, 0]) == pytest.approx(0.5, abs=0.1)


def test_gsde_samples_the_gaussian_it_reports():
    """An action drawn with gSDE noise has the state's reported mean, std and log-prob, and
    the noise matrix is held for ``hold`` steps (the action changes only with the state)."""
    actor = GaussianActor(2, (8, 8), sde=True, init_log_std=-1.0)
    obs = jax.random.normal(jax.random.PRNGKey(0), (3, 4))
    out = actor.apply(actor.init(jax.random.PRNGKey(1), obs), obs)
    first = jax.tree.map(lambda x: x[:1], out)
    noise = policy_noise(jax.random.PRNGKey(2), first, 20_000)
    actions, log_probs = jax.vmap(lambda eps: sample_with_noise(first, eps))(noise)
    np.testing.assert_allclose(actions.mean(0), first[0], atol=0.02)
    np.testing.assert_allclose(actions.std(0), jnp.exp(first[1]), rtol=0.02)
    exact = jax.vmap(policy_distribution(first).log_prob)(actions)
    np.testing.assert_allclose(log_probs, exact, atol=1e-4)

    held = policy_noise(jax.random.PRNGKey(3), out, 10, hold=4)
    assert held.shape == (10, 3, 8, 2)
    same = [bool(jnp.all(held[t] == held[t + 1])) for t in range(9)]
    assert same == [True, True, True, False, True, True, True, False, True]
    assert bool(jnp.all(policy_noise(jax.random.PRNGKey(3), out, 10, hold=-1) == held[0]))


def test_gsde_needs_continuous_actions():
    with pytest.raises(rf.ConfigError, match="sde .*continuous actions"):
        rf.PPOConfig(env="CartPole-v1", sde=True).validate()
    with pytest.raises(rf.ConfigError, match="sde_sample_freq"):
        rf.PPOConfig(env="Pendulum-v1", sde=True, sde_sample_freq=0).validate()


def test_gae_bootstraps_on_truncation_not_termination():
    rewards = jnp.array([[1.0], [1.0]])
    values = jnp.array([[5.0], [5.0]])
    next_values = jnp.array([[5.0], [7.0]])  # V(final_obs) of the last step = 7
    no = jnp.zeros((2, 1), bool)
    end = jnp.array([[False], [True]])
    _, trunc_targets = gae(rewards, values, next_values, no, end, 0.9, 0.95)
    _, term_targets = gae(rewards, values, next_values, end, no, 0.9, 0.95)
    assert float(trunc_targets[1, 0]) == pytest.approx(1.0 + 0.9 * 7.0)
    assert float(term_targets[1, 0]) == pytest.approx(1.0)
    assert float(trunc_targets[1, 0]) != float(term_targets[1, 0])
    # The trace never crosses an episode boundary: step 0's advantage ignores step 1's
    # when step 0 ended an episode.
    adv, _ = gae(rewards, values, next_values, jnp.array([[True], [False]]), no, 0.9, 0.95)
    assert float(adv[0, 0]) == pytest.approx(1.0 - 5.0)


def test_rollout_truncation_bootstraps_from_final_observation():
    """On CartPole with a 5-step limit every episode truncates; the stored final_obs is
    the pre-reset observation and the PPO target there uses V(final_obs)."""
    cfg = rf.PPOConfig(num_envs=2, num_steps=12, total_steps=24)
    stack = make_env_stack(cfg)
    env = stack.env
    params = stack.params.replace(max_steps_in_episode=5)
    state = ppo.init(cfg, jax.random.PRNGKey(0))
    state = state.replace(env_params=params)
    _, critic = ppo.networks(cfg, stack)
    from rlfoundry.algos.rollout import collect

    noise = jnp.zeros((12, 2, 2))
    act = lambda eps, obs: (jnp.zeros(obs.shape[0], jnp.int32), jnp.zeros(obs.shape[0]))
    _, traj = collect(env, params, state.env, jax.random.PRNGKey(1), 12, act, noise)
    trunc = np.asarray(traj.truncated)
    assert trunc[4].all() and not np.asarray(traj.terminated).any()
    # after truncation the next stored obs is a fresh reset, not the final observation
    assert not np.allclose(traj.obs[5], traj.final_obs[4])
    assert np.allclose(traj.obs[4 + 0], traj.obs[4])
    values = critic.apply(state.params["critic"], traj.obs)
    next_values = critic.apply(state.params["critic"], traj.final_obs)
    _, targets = gae(traj.reward, values, next_values, traj.terminated, traj.truncated, 0.99, 0.95)
    expected = traj.reward[4] + 0.99 * next_values[4]
    np.testing.assert_allclose(targets[4], expected, rtol=1e-5)
    assert not np.allclose(targets[4], traj.reward[4])


SMALL = rf.PPOConfig(num_envs=4, num_steps=32, total_steps=4 * 32 * 6, num_minibatches=2)


@pytest.fixture(scope="module")
def small_runs():
    return rf.Trainer(SMALL, seeds=[0, 0, 1], chunk_updates=3).run()


def test_same_seed_same_numbers(small_runs):
    state, metrics = small_runs
    leaves = jax.tree.leaves(state.params)
    assert all(np.array_equal(x[0], x[1]) for x in leaves)
    assert not all(np.array_equal(x[0], x[2]) for x in leaves)
    np.testing.assert_array_equal(metrics["policy_loss"][0], metrics["policy_loss"][1])


def test_pure_train_matches_chunked_trainer(small_runs):
    state, metrics = small_runs
    pure_state, pure_metrics = jax.jit(rf.train)(SMALL, jax.random.PRNGKey(0))
    for a, b in zip(jax.tree.leaves(pure_state.params), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_allclose(a, b[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pure_metrics["value_loss"], metrics["value_loss"][0], rtol=1e-4)


def test_vmap_over_learning_rates_matches_separate_runs():
    lrs = np.array([1e-4, 3e-3], np.float32)
    grid = SMALL.replace(lr=lrs)
    state, _ = rf.Trainer(grid, seeds=[0, 0], batched=("lr",), chunk_updates=6).run()
    for i, lr in enumerate(lrs):
        single, _ = rf.Trainer(SMALL.replace(lr=float(lr)), seeds=[0], chunk_updates=6).run()
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(single.params), strict=True):
            np.testing.assert_allclose(a[i], b[0], rtol=1e-4, atol=1e-5)
    first = jax.tree.leaves(state.params)[0]
    assert not np.allclose(first[0], first[1])


def test_vmap_over_objective_leaf():
    """Nested numeric leaves (the objective's clip) vmap like top-level ones."""
    cfg = SMALL.replace(lr=1e-2, objective=SMALL.objective.replace(clip_eps=np.array([0.01, 0.5])))
    _, metrics = rf.Trainer(cfg, seeds=[0, 0], batched=("objective.clip_eps",)).run()
    assert metrics["drift_active"][0].mean() > metrics["drift_active"][1].mean()


def test_discounted_returns_bootstrap_only_where_the_episode_goes_on():
    from rlfoundry.algos.advantages import discounted_returns

    r = jnp.ones((4, 1))
    nv = jnp.full((4, 1), 10.0)
    term = jnp.array([[False], [True], [False], [False]])
    trunc = jnp.zeros((4, 1), bool)
    g = np.asarray(discounted_returns(r, term, trunc, nv, 0.5))[:, 0]
    # step 1 terminates; steps 2-3 are a new episode cut by the rollout end (bootstrap 10)
    np.testing.assert_allclose(g, [1.5, 1.0, 1 + 0.5 * (1 + 0.5 * 10), 1 + 0.5 * 10])
    g = np.asarray(discounted_returns(r, jnp.zeros((4, 1), bool), term, nv, 0.5))[:, 0]
    np.testing.assert_allclose(g[:2], [1 + 0.5 * (1 + 0.5 * 10), 1 + 0.5 * 10])


def test_clip_per_network_bounds_each_networks_gradient_on_its_own():
    """A large critic gradient shrinks the actor's step under one joint norm, not per
    network; the optimiser state keeps its shape either way (checkpoints stay loadable)."""
    grads = {"actor": {"w": jnp.full(4, 0.1)}, "critic": {"w": jnp.full(4, 50.0)}}
    norm = lambda tree: float(optax.tree.norm(tree))
    joint = ppo.optimizer(rf.PPOConfig(max_grad_norm=0.5)).init(grads)
    each = ppo.optimizer(rf.PPOConfig(max_grad_norm=0.5, clip_per_network=True)).init(grads)
    assert jax.tree.structure(joint) == jax.tree.structure(each)
    clip_joint = optax.clip_by_global_norm(0.5).update(grads, None)[0]
    clip_each = ppo.clip_each_network(0.5).update(grads, None)[0]
    assert norm(clip_joint) == pytest.approx(0.5, rel=1e-5)
    assert norm(clip_joint["actor"]) < 0.01  # the critic took the whole budget
    assert norm(clip_each["actor"]) == pytest.approx(0.2, rel=1e-5)  # under 0.5: untouched
    assert norm(clip_each["critic"]) == pytest.approx(0.5, rel=1e-5)
