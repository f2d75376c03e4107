"""Off-policy learners (DQN, SAC, discrete SAC, TD3, DDPG) and the replay buffer: buffer invariants,
probe environments, the truncation rule, determinism, vmap over hyperparameters, config
errors, and learning tests with thresholds (CartPole-v1 for DQN, Pendulum-v1 for SAC/TD3).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from checks import SAME_SEED_SAME_NUMBERS, assert_same_seed_same_numbers, greedy_returns

import rlfoundry as rf
from rlfoundry.algos import (
    ALGORITHMS,
    DDPGConfig,
    DQNConfig,
    SACConfig,
    SACDiscreteConfig,
    TD3Config,
    dqn,
    sac,
    sac_discrete,
    td3,
)
from rlfoundry.algos.base import make_env_stack
from rlfoundry.algos.offpolicy import td_target
from rlfoundry.algos.offpolicy_nets import ActionScale, squashed_sample
from rlfoundry.algos.replay import ReplayBuffer
from rlfoundry.engine import algorithm_for
from rlfoundry.envs.probes import TwoStepDiscount


def one_seed(state):
    return jax.tree.map(lambda x: x[0], state)


# --- replay buffer -----------------------------------------------------------------------


def items(values):
    values = jnp.asarray(values, jnp.float32)
    return {"x": values, "pair": jnp.stack([values, -values], axis=-1)}


def test_replay_ring_wraps_around_and_counts():
    buf = ReplayBuffer.create({"x": jnp.float32(0), "pair": jnp.zeros(2)}, capacity=5)
    assert buf.capacity == 5 and int(buf.size) == 0
    buf = buf.add(items([1, 2, 3]))
    assert (int(buf.size), int(buf.pointer)) == (3, 3)
    buf = buf.add(items([4, 5, 6]))  # 6 overwrites the oldest item, 1
    assert (int(buf.size), int(buf.pointer)) == (5, 1)
    np.testing.assert_array_equal(buf.data["x"], [6, 2, 3, 4, 5])
    np.testing.assert_array_equal(buf.data["pair"][:, 1], [-6, -2, -3, -4, -5])
    buf = buf.add(items([7, 8, 9, 10, 11]))  # a full-capacity batch replaces everything
    assert (int(buf.size), int(buf.pointer)) == (5, 1)
    np.testing.assert_array_equal(np.sort(buf.data["x"]), [7, 8, 9, 10, 11])
    with pytest.raises(ValueError):
        buf.add(items(np.arange(6)))


def test_replay_rollout_is_stored_time_major():
    buf = ReplayBuffer.create({"x": jnp.float32(0), "pair": jnp.zeros(2)}, capacity=8)
    rollout = items(jnp.arange(6.0).reshape(3, 2) + 1)  # [T=3, N=2]
    buf = buf.add_rollout(rollout)
    np.testing.assert_array_equal(buf.data["x"][:6], [1, 2, 3, 4, 5, 6])
    assert int(buf.size) == 6


def test_replay_samples_only_valid_items_uniformly():
    buf = ReplayBuffer.create({"x": jnp.float32(0), "pair": jnp.zeros(2)}, capacity=100)
    buf = buf.add(items([1, 2, 3]))
    batch = buf.sample(jax.random.PRNGKey(0), 3000)
    values, counts = np.unique(np.asarray(batch["x"]), return_counts=True)
    np.testing.assert_array_equal(values, [1, 2, 3])  # never an unwritten (zero) slot
    assert counts.min() > 900  # roughly uniform: 1000 expected each
    np.testing.assert_array_equal(batch["pair"][:, 1], -batch["x"])  # leaves stay aligned


def test_replay_buffer_vmaps_over_seeds():
    def fill_and_sample(key, offset):
        buf = ReplayBuffer.create({"x": jnp.float32(0), "pair": jnp.zeros(2)}, capacity=4)
        buf = buf.add(items(jnp.arange(3.0) + offset))
        buf = buf.add(items(jnp.arange(3.0, 6.0) + offset))  # wraps: 0 and 1 overwritten
        return buf.size, buf.sample(key, 64)["x"]

    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    size, samples = jax.jit(jax.vmap(fill_and_sample))(keys, jnp.array([0.0, 100.0]))
    np.testing.assert_array_equal(size, [4, 4])
    assert set(np.unique(samples[0])) <= {2.0, 3.0, 4.0, 5.0}
    assert set(np.unique(samples[1])) <= {102.0, 103.0, 104.0, 105.0}


# --- the truncation rule -----------------------------------------------------------------


def test_td_target_bootstraps_on_truncation_not_termination():
    reward = jnp.array([1.0, 1.0, 1.0])
    next_value = jnp.array([5.0, 5.0, 5.0])
    terminated = jnp.array([False, True, False])  # the third step is a truncation
    np.testing.assert_allclose(
        td_target(reward, terminated, next_value, 0.9), [1.0 + 4.5, 1.0, 1.0 + 4.5]
    )


def test_dqn_stores_final_observation_and_bootstraps_through_time_limits():
    """CartPole with a 5-step limit: every episode is truncated. The buffer's next_obs at a
    truncation is the pre-reset final observation (not the reset one), terminated is
    false, and DQN's target there is r + γ max_a Q'(final_obs, a)."""
    cfg = DQNConfig(num_envs=2, num_steps=12, total_steps=24, learning_starts=100,
                    buffer_size=100, hidden_sizes=(16,))
    state = dqn.init(cfg, jax.random.PRNGKey(0))
    params = state.env_params.replace(max_steps_in_episode=5)
    state, _ = dqn.update(cfg, state.replace(env_params=params))
    data = jax.tree.map(lambda x: x[: int(state.buffer.size)], state.buffer.data)
    assert int(state.buffer.size) == 24 and not np.asarray(data.terminated).any()
    obs = np.asarray(data.obs).reshape(12, 2, 4)  # stored time-major: [T, N, obs]
    next_obs = np.asarray(data.next_obs).reshape(12, 2, 4)
    # within an episode, next_obs is the following obs; at the limit (step 4) it is not
    np.testing.assert_allclose(next_obs[:4], obs[1:5])
    assert not np.allclose(next_obs[4], obs[5])
    cart_pole_step = np.abs(next_obs[4] - obs[4]).max()
    assert cart_pole_step < 0.5  # one physics step away from the last obs, not a reset

    q = dqn.q_network(cfg, make_env_stack(cfg))
    target = dqn.q_target(cfg, q, state.learner, data)
    next_q = q.apply(state.learner.target_params, data.next_obs).max(-1)
    np.testing.assert_allclose(target, data.reward + cfg.gamma * next_q, rtol=1e-6)
    terminal = data.replace(terminated=jnp.ones_like(data.terminated))
    np.testing.assert_allclose(dqn.q_target(cfg, q, state.learner, terminal), data.reward)


# --- probe environments ------------------------------------------------------------------

DQN_PROBE = dict(
    total_steps=4096, num_envs=8, num_steps=8, learning_starts=256, buffer_size=4096,
    batch_size=64, gradient_steps=16, target_update_every=16, hidden_sizes=(32, 32), lr=3e-3,
    exploration_fraction=0.5,
)


def trained_dqn(env: str, seeds=(0,), **overrides):
    """Seed 0's Q-function, and the whole run's state and metrics."""
    cfg = DQNConfig(env=env, **{**DQN_PROBE, **overrides})
    run_state, metrics = rf.Trainer(cfg, seeds=list(seeds), chunk_updates=1000).run()
    state = one_seed(run_state)
    q = dqn.q_network(cfg, make_env_stack(cfg))
    values = lambda obs: np.asarray(q.apply(state.learner.params, jnp.array(obs, jnp.float32)))
    return values, run_state, metrics


def test_dqn_probe_constant_reward():
    q, *_ = trained_dqn("Probe-Constant-v0")
    np.testing.assert_allclose(q([[0.0]]), 1.0, atol=0.05)


def test_dqn_probe_observation_dependent_value():
    q, *_ = trained_dqn("Probe-Observation-v0")
    np.testing.assert_allclose(q([[1.0], [-1.0]]), [[1.0, 1.0], [-1.0, -1.0]], atol=0.1)


def test_dqn_probe_two_step_discounting():
    q, *_ = trained_dqn("Probe-TwoStep-v0", gamma=0.9)
    np.testing.assert_allclose(q([[0.0], [1.0]]), [[0.9, 0.9], [1.0, 1.0]], atol=0.05)


def test_dqn_probe_action_dependent_reward():
    q, *_ = trained_dqn("Probe-Action-v0")
    np.testing.assert_allclose(q([[0.0]]), [[-1.0, 1.0]], atol=0.1)


def test_dqn_probe_observation_and_action_and_same_seed_same_numbers():
    q, state, metrics = trained_dqn("Probe-ObservationAction-v0", seeds=SAME_SEED_SAME_NUMBERS)
    assert_same_seed_same_numbers(state.learner.params, metrics, "q_loss")
    assert metrics["q_loss"][0, -1] > 0  # learning started after learning_starts
    values = q([[1.0], [-1.0]])
    np.testing.assert_array_equal(values.argmax(-1), [1, 0])
    np.testing.assert_allclose(values, [[-1.0, 1.0], [1.0, -1.0]], atol=0.1)


class ContinuousTwoStep(TwoStepDiscount):
    """Probe-TwoStep with a continuous action (ignored): tests the critics' discounting."""

    continuous = True


if "Test-ContinuousTwoStep-v0" not in rf.envs.env_names():
    rf.register("Test-ContinuousTwoStep-v0", ContinuousTwoStep, family="probe")

CONTINUOUS_PROBE = dict(
    total_steps=3072, num_envs=8, num_steps=8, learning_starts=256, buffer_size=4096,
    batch_size=64, gradient_steps=16, hidden_sizes=(32, 32), lr=3e-3,
)
CONTINUOUS = {"sac": (SACConfig, sac), "td3": (TD3Config, td3), "ddpg": (DDPGConfig, td3)}


def trained_continuous(name: str, env: str, seeds=(0,), **overrides):
    """The config, seed 0's state and Q-functions, and the whole run's state and metrics."""
    cls, module = CONTINUOUS[name]
    cfg = cls(env=env, **{**CONTINUOUS_PROBE, **overrides})
    run_state, metrics = rf.Trainer(cfg, seeds=list(seeds), chunk_updates=1000).run()
    state = one_seed(run_state)
    _, critic, _ = module.networks(cfg, make_env_stack(cfg))
    q = lambda obs, a: np.asarray(
        critic.apply(state.learner.params["critic"], jnp.array(obs, jnp.float32),
                     jnp.array(a, jnp.float32))
    )
    return cfg, state, q, run_state, metrics


@pytest.mark.parametrize("name", ["sac", "td3", "ddpg"])
def test_continuous_probe_action_mean_and_q_and_same_seed_same_numbers(name):
    """Reward 1 - (a - 0.5)^2 in one step: the actor's (squashed) mean goes to 0.5 and every
    critic learns Q(s, a) = 1 - (a - 0.5)^2."""
    cfg, state, q, run_state, metrics = trained_continuous(name, "Probe-ContinuousAction-v0",
                                                           seeds=SAME_SEED_SAME_NUMBERS)
    assert_same_seed_same_numbers(run_state.learner.params, metrics, "q_loss")
    assert metrics["q_loss"][0, -1] > 0  # learning started after learning_starts
    mean = ALGORITHMS[name].act(cfg, state, jnp.zeros((1, 1)), jax.random.PRNGKey(0), True)
    assert float(mean[0, 0]) == pytest.approx(0.5, abs=0.1)
    actions = np.array([[-0.5], [0.0], [0.5], [1.0]])
    expected = 1.0 - (actions[:, 0] - 0.5) ** 2
    values = q(np.zeros((4, 1)), actions)  # [critics, 4]
    np.testing.assert_allclose(values, np.broadcast_to(expected, values.shape), atol=0.1)


@pytest.mark.parametrize("name", ["td3", "ddpg"])
def test_continuous_probe_two_step_discounting(name):
    _, _, q, *_ = trained_continuous(name, "Test-ContinuousTwoStep-v0", gamma=0.9)
    values = q([[0.0], [1.0]], [[0.3], [-0.3]])
    np.testing.assert_allclose(values, np.broadcast_to([0.9, 1.0], values.shape), atol=0.05)


def test_sac_probe_two_step_soft_value():
    """SAC's soft Q: Q(s1, ·) = 1 (terminal) and Q(s0, a) = γ E[Q(s1, a') - α log π(a'|s1)],
    checked against the learned α and policy by sampling."""
    cfg, state, q, *_ = trained_continuous("sac", "Test-ContinuousTwoStep-v0", gamma=0.9)
    actor, _, scale = sac.networks(cfg, make_env_stack(cfg))
    np.testing.assert_allclose(q([[1.0]], [[0.3]]), 1.0, atol=0.05)
    mean, log_std = actor.apply(state.learner.params["actor"], jnp.ones((1, 1)))
    noise = jax.random.normal(jax.random.PRNGKey(0), (4096, 1))
    a, log_prob = squashed_sample(mean, log_std, noise, scale)
    alpha = np.exp(float(state.learner.params["log_alpha"]))
    soft_v1 = np.mean(q(np.ones((4096, 1)), a).min(0) - alpha * np.asarray(log_prob))
    np.testing.assert_allclose(q([[0.0]], [[0.3]]), cfg.gamma * soft_v1, atol=0.03)


def trained_discrete_sac(env: str, seeds=(0,), **overrides):
    cfg = SACDiscreteConfig(env=env, **{**CONTINUOUS_PROBE, **overrides})
    run_state, metrics = rf.Trainer(cfg, seeds=list(seeds), chunk_updates=1000).run()
    state = one_seed(run_state)
    actor, critic = sac_discrete.networks(cfg, make_env_stack(cfg))
    params = state.learner.params
    q = lambda obs: np.asarray(critic.apply(params["critic"], jnp.array(obs, jnp.float32)))
    log_pi = lambda obs: np.asarray(
        jax.nn.log_softmax(actor.apply(params["actor"], jnp.array(obs, jnp.float32)))
    )
    return cfg, state, q, log_pi, run_state, metrics


def test_discrete_sac_probe_observation_and_action_and_same_seed_same_numbers():
    """One step, reward +1 for the action matching the observation's sign, else -1: both
    critics learn Q(s, ·) exactly and the policy prefers the rewarded action."""
    cfg, state, q, log_pi, run_state, metrics = trained_discrete_sac(
        "Probe-ObservationAction-v0", seeds=SAME_SEED_SAME_NUMBERS)
    assert_same_seed_same_numbers(run_state.learner.params, metrics, "q_loss")
    assert metrics["q_loss"][0, -1] > 0  # learning started after learning_starts
    values = q([[1.0], [-1.0]])  # [critics, 2 obs, 2 actions]
    np.testing.assert_allclose(values, np.broadcast_to([[-1.0, 1.0], [1.0, -1.0]],
                                                       values.shape), atol=0.1)
    np.testing.assert_array_equal(log_pi([[1.0], [-1.0]]).argmax(-1), [1, 0])
    greedy = ALGORITHMS["sac_discrete"].act(cfg, state, jnp.array([[1.0], [-1.0]]),
                                            jax.random.PRNGKey(0), True)
    np.testing.assert_array_equal(greedy, [1, 0])


def test_discrete_sac_probe_two_step_soft_value():
    """Q(s1, ·) = 1 (terminal); Q(s0, a) = γ Σ_a' π(a'|s1) (Q(s1, a') - α log π(a'|s1)),
    the exact soft value, computed from the learned α and policy."""
    cfg, state, q, log_pi, *_ = trained_discrete_sac("Probe-TwoStep-v0", gamma=0.9)
    np.testing.assert_allclose(q([[1.0]]), 1.0, atol=0.05)
    alpha = np.exp(float(state.learner.params["log_alpha"]))
    lp = log_pi([[1.0]])[0]
    soft_v1 = np.sum(np.exp(lp) * (q([[1.0]]).min(0)[0] - alpha * lp))
    np.testing.assert_allclose(q([[0.0]]), cfg.gamma * soft_v1, atol=0.05)


def test_squashed_sample_log_prob_matches_change_of_variables():
    scale = ActionScale.from_bounds(-2.0, 2.0, 1)
    mean, log_std, noise = jnp.array([[0.3]]), jnp.array([[-0.2]]), jnp.array([[0.7]])
    action, log_prob = squashed_sample(mean, log_std, noise, scale)
    u = 0.3 + np.exp(-0.2) * 0.7
    gaussian = -0.5 * 0.7**2 - (-0.2) - 0.5 * np.log(2 * np.pi)
    assert float(action[0, 0]) == pytest.approx(2.0 * np.tanh(u), rel=1e-6)
    assert float(log_prob[0]) == pytest.approx(gaussian - np.log(1 - np.tanh(u) ** 2), rel=1e-5)


# --- determinism and vmap ----------------------------------------------------------------

SMALL = {
    "dqn": DQNConfig(total_steps=1024, num_envs=4, num_steps=32, learning_starts=256,
                     gradient_steps=8, hidden_sizes=(32, 32), buffer_size=1024),
    "sac": SACConfig(total_steps=768, num_envs=4, num_steps=32, learning_starts=256,
                     gradient_steps=8, batch_size=64, hidden_sizes=(32, 32), buffer_size=1024),
    "td3": TD3Config(total_steps=768, num_envs=4, num_steps=32, learning_starts=256,
                     gradient_steps=8, batch_size=64, hidden_sizes=(32, 32), buffer_size=1024),
}


def test_pure_train_matches_chunked_trainer():
    cfg = SMALL["dqn"]
    state, metrics = rf.Trainer(cfg, seeds=[0], chunk_updates=3).run()
    pure_state, pure_metrics = jax.jit(rf.train)(cfg, jax.random.PRNGKey(0))
    for a, b in zip(jax.tree.leaves(pure_state.learner), jax.tree.leaves(state.learner),
                    strict=True):
        np.testing.assert_allclose(a, b[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pure_metrics["q_loss"], metrics["q_loss"][0], rtol=1e-4)


def test_vmap_over_learning_rates_matches_separate_runs():
    """A learning-rate grid vmapped in one program equals separate runs (here the pure
    ``train``, compiled once with ``lr`` as a traced leaf)."""
    cfg = SMALL["sac"]
    lrs = np.array([1e-4, 3e-3], np.float32)
    state, _ = rf.Trainer(cfg.replace(lr=lrs), seeds=[0, 0], batched=("lr",)).run()
    train = jax.jit(rf.train)
    for i, lr in enumerate(lrs):
        single, _ = train(cfg.replace(lr=jnp.float32(lr)), jax.random.PRNGKey(0))
        for a, b in zip(jax.tree.leaves(state.learner.params),
                        jax.tree.leaves(single.learner.params), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5)
    first = jax.tree.leaves(state.learner.params)[0]
    assert not np.allclose(first[0], first[1])


def test_correlated_noise_is_a_stationary_ar1_process():
    """Each value stays standard normal; consecutive values correlate ρ; ρ = 0 is white."""
    from rlfoundry.algos.offpolicy import correlated

    white = jax.random.normal(jax.random.PRNGKey(0), (20_000, 8))
    np.testing.assert_array_equal(correlated(jnp.zeros(8), white, 0.0), white)
    x = np.asarray(correlated(jax.random.normal(jax.random.PRNGKey(1), (8,)), white, 0.9))
    assert abs(x.std() - 1.0) < 0.05
    lag1 = np.mean([np.corrcoef(x[:-1, i], x[1:, i])[0, 1] for i in range(8)])
    assert abs(lag1 - 0.9) < 0.02


def test_td3_noise_process_continues_across_updates():
    """An update's noise starts from the state's carried value (correlation 0.9999: the
    first new value stays next to it), and the update stores its last value."""
    from rlfoundry.algos.offpolicy import behaviour

    cfg = SMALL["td3"].replace(noise_correlation=0.9999, learning_starts=0)
    cfg.validate()
    state = td3.TD3.init(cfg, jax.random.PRNGKey(0)).replace(noise=jnp.full((4, 1), 2.5))
    noise, _ = behaviour(cfg, state, make_env_stack(cfg), jax.random.PRNGKey(1),
                         lambda eps, obs: eps)
    np.testing.assert_allclose(noise[2][0], 2.5, atol=0.1)
    after, _ = td3.TD3.update(cfg, state)
    assert after.noise.shape == (4, 1) and np.all(np.abs(np.asarray(after.noise) - 2.5) < 1.0)
    assert not np.allclose(after.noise, 2.5)


# --- registration and config errors ------------------------------------------------------


def test_registered_and_found_by_config_class():
    for name, cfg in [("dqn", DQNConfig()), ("sac", SACConfig()), ("td3", TD3Config()),
                      ("ddpg", DDPGConfig()), ("sac_discrete", SACDiscreteConfig())]:
        assert ALGORITHMS[name] is algorithm_for(cfg)
        cfg.validate()


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (DQNConfig(env="Pendulum-v1"), "needs a discrete action space"),
        (SACConfig(env="CartPole-v1"), "needs a continuous action space"),
        (TD3Config(gradient_steps=63), "multiple of policy_delay"),
        (DDPGConfig(buffer_size=32), "cannot hold one update"),
        (DQNConfig(learning_starts=-1), "learning_starts must be a non-negative integer"),
        (DQNConfig(loss="l1"), "loss must be 'huber' or 'mse'"),
        (SACConfig(tau=0.0), "tau must be in (0.0, 1.0]"),
        (SACDiscreteConfig(env="Pendulum-v1"), "needs a discrete action space"),
        (SACDiscreteConfig(target_entropy_ratio=1.5), "target_entropy_ratio must be in"),
        (DQNConfig(noise_correlation=0.5), "noise_correlation applies to continuous"),
        (TD3Config(noise_correlation=1.0), "noise_correlation must be in"),
    ],
)
def test_config_errors_are_one_line(cfg, message):
    with pytest.raises(rf.ConfigError, match=None) as err:
        cfg.validate()
    assert message in str(err.value) and "\n" not in str(err.value)


# --- learning tests ----------------------------------------------------------------------


# DQN on CartPole-v1: the learner's defaults (tuned: see rlfoundry.algos.dqn).
DQN_CARTPOLE = DQNConfig()
# SAC and TD3 on Pendulum-v1: the shared off-policy defaults, 15,360 of the 30k steps allowed.
PENDULUM = dict(env="Pendulum-v1", total_steps=15_360)


@pytest.mark.slow
def test_dqn_solves_cartpole_within_100k_steps():
    """Two seeds vmapped; the greedy policy at the end plays 20 fresh episodes per seed."""
    assert DQN_CARTPOLE.total_steps <= 100_000
    state, _ = rf.Trainer(DQN_CARTPOLE, seeds=[0, 1], chunk_updates=400).run()
    returns = greedy_returns(DQN_CARTPOLE, state, episodes=20)
    print("DQN CartPole-v1 greedy returns per seed:", returns)
    assert np.all(returns >= 475), returns


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sac", "td3"])
def test_continuous_learner_solves_pendulum_within_30k_steps(name):
    cfg = CONTINUOUS[name][0](**PENDULUM)
    assert cfg.total_steps <= 30_000
    state, _ = rf.Trainer(cfg, seeds=[0, 1], chunk_updates=400).run()
    returns = greedy_returns(cfg, state, cap=201)
    print(f"{name} Pendulum-v1 deterministic returns per seed:", returns)
    assert np.all(returns >= -250), returns
