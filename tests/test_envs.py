"""Environment layer: contract, registry, wrappers, probe envs and the Gymnasium adapter.

Compilation dominates the cost on 2 CPU cores, so each environment's vmapped reset and step
are compiled once per module with cheap XLA optimisation and then reused, and the other
tests share gymnax's per-environment jitted ``step``.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnasium.utils.env_checker import check_env

from rlfoundry.envs import (
    ClipAction,
    Environment,
    EpisodeStatistics,
    FlattenObservation,
    GymnasiumEnv,
    NormalizeObservation,
    ScaleReward,
    VectorEnv,
    Wrapper,
    env_names,
    env_spec,
    make,
    spaces,
)
from rlfoundry.envs.gymnasium_adapter import to_gymnasium_space
from rlfoundry.envs.wrappers import RunningMeanStd
from rlfoundry.errors import ConfigError

# Behaviour, not speed, is under test: compiling ~30 environments at full XLA optimisation
# takes minutes on 2 cores, at the cheapest settings well under one.
FAST = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,  # the older emitters compile about twice as fast
}
BATCH, STEPS = 3, 2
PROBE_STEPS = 16
ALL_ENVS = [n for n in env_names() if not env_spec(n).needs_download]
THETA_LIMIT = 12 * 2 * np.pi / 360
# gymnax declares bounds these observations leave: MemoryChain's context bits are ±1 under
# low=0, GaussianBandit's reward and normalised time go negative under low=0.
BOUNDS_WRONG_IN_GYMNAX = {"MemoryChain-bsuite", "GaussianBandit-misc"}


def compile_fast(fn, *args):
    return jax.jit(fn).lower(*args).compile(compiler_options=FAST)


def np_tree(tree: Any) -> Any:
    return jax.tree.map(np.asarray, tree)


def keys(seed: int, n: int = BATCH) -> jax.Array:
    return jax.random.split(jax.random.key(seed), n)


class Rollout:
    """One environment's vmapped reset and random-action step, each compiled once (cheaply);
    the step is then called repeatedly, so a rollout's length costs no compilation.

    Lane i resets with ``fold_in(lane_keys[i], 0)`` and draws step t's action and transition
    from ``fold_in(lane_keys[i], t + 1)``; keys are derived inside the compiled functions
    because eager JAX ops would each compile too.
    """

    def __init__(self, name: str):
        self.env, self.params = env, params = make(name)
        space = env.action_space(params)

        def reset(lane_keys):
            reset_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(lane_keys, 0)
            return jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)

        def step(lane_keys, state, t):
            def one(key, state):
                k_act, k_step = jax.random.split(jax.random.fold_in(key, t + 1))
                action = space.sample(k_act)
                obs, state, reward, terminated, truncated, info = env.step(
                    k_step, state, action, params
                )
                return state, dict(action=action, obs=obs, final_obs=info["final_observation"],
                                   reward=reward, terminated=terminated, truncated=truncated)

            return jax.vmap(one)(lane_keys, state)

        example = keys(0)
        self._reset = compile_fast(reset, example)
        state = jax.eval_shape(reset, example)[1]
        self._step = compile_fast(step, example, state, jnp.int32(0))

    def __call__(self, lane_keys: jax.Array, num_steps: int = STEPS) -> tuple[Any, dict]:
        """Reset obs ``[B, ...]`` and a trajectory ``[B, T, ...]`` as numpy."""
        obs0, state = self._reset(lane_keys)
        traj = []
        for t in range(num_steps):
            state, out = self._step(lane_keys, state, jnp.int32(t))
            traj.append(np_tree(out))
        return np_tree(obs0), jax.tree.map(lambda *xs: np.stack(xs, axis=1), *traj)


@pytest.fixture(scope="module")
def rollouts():
    """name -> Rollout, built once per module."""
    cache: dict[str, Rollout] = {}

    def get(name: str) -> Rollout:
        if name not in cache:
            cache[name] = Rollout(name)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def cartpole():
    return make("CartPole-v1")


# ---------------------------------------------------------------------------- every env


@pytest.mark.parametrize("name", ALL_ENVS)
def test_every_env_resets_and_steps_under_jit_and_vmap(rollouts, name):
    rollout = rollouts(name)
    obs0, traj = rollout(keys(0))
    space = rollout.env.observation_space(rollout.params)
    assert obs0.shape == (BATCH, *space.shape)
    assert traj["obs"].shape == traj["final_obs"].shape == (BATCH, STEPS, *space.shape)
    for key in ("reward", "terminated", "truncated"):
        assert traj[key].shape == (BATCH, STEPS)
    assert traj["terminated"].dtype == traj["truncated"].dtype == np.bool_
    assert np.isfinite(traj["reward"]).all()
    # Observations honour the declared space (the Gymnasium adapter relies on it).
    if isinstance(space, spaces.Box):
        low, high = np.asarray(space.low), np.asarray(space.high)
    else:
        low, high = 0, space.n - 1
    inside = [((o >= low) & (o <= high)).all() for o in (obs0, traj["obs"], traj["final_obs"])]
    assert all(inside) != (name in BOUNDS_WRONG_IN_GYMNAX), name
    # Without an episode end the auto-reset is a no-op.
    live = ~(traj["terminated"] | traj["truncated"])
    np.testing.assert_array_equal(traj["obs"][live], traj["final_obs"][live])


@pytest.mark.parametrize(
    "name", ["CartPole-v1", "Pendulum-v1", "Breakout-MinAtar", "Catch-bsuite", "FourRooms-misc"]
)
def test_same_key_same_trajectory(rollouts, name):
    rollout = rollouts(name)
    first, again, other = (rollout(keys(seed), 12) for seed in (0, 0, 1))
    jax.tree.map(np.testing.assert_array_equal, first, again)
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(first),
                                                         jax.tree.leaves(other), strict=True))
    assert not np.array_equal(first[1]["action"][0], first[1]["action"][1])  # lanes differ


def test_compiled_vmapped_rollout_matches_stepping_one_env_by_hand(rollouts, cartpole):
    """jit, vmap and the cheap compilation do not change a trajectory (episode ends included)."""
    env, params = cartpole
    _, traj = rollouts("CartPole-v1")(keys(0), 40)
    assert traj["terminated"][0].any()
    lane_key = keys(0)[0]
    _, state = env.reset(jax.random.fold_in(lane_key, 0), params)
    for t in range(40):
        k_act, k_step = jax.random.split(jax.random.fold_in(lane_key, t + 1))
        action = env.action_space(params).sample(k_act)
        assert int(action) == traj["action"][0, t]
        obs, state, reward, terminated, _, info = env.step(k_step, state, action, params)
        np.testing.assert_allclose(obs, traj["obs"][0, t], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(info["final_observation"], traj["final_obs"][0, t], 1e-5, 1e-6)
        assert float(reward) == traj["reward"][0, t]
        assert bool(terminated) == traj["terminated"][0, t]


# ----------------------------------------------------------------- CartPole semantics


@pytest.fixture(scope="module")
def cartpole_traj(cartpole):
    """8 CartPole envs under EpisodeStatistics, 300 random steps, with the inner env's time."""
    env, params = cartpole
    vec = VectorEnv(EpisodeStatistics(env), 8)

    def run(key):
        k_reset, k_steps = jax.random.split(key)
        obs0, state = vec.reset(k_reset, params)

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            action = jax.random.randint(k_act, (8,), 0, 2)
            obs, state, reward, terminated, truncated, info = vec.step(k_step, state, action)
            return state, dict(obs=obs, final_obs=info["final_observation"], reward=reward,
                               terminated=terminated, truncated=truncated,
                               time=state.env_state.time, ret=info["episode_return"],
                               length=info["episode_length"], done=info["episode_done"])

        _, traj = jax.lax.scan(body, state, jax.random.split(k_steps, 300))
        return obs0, traj

    obs0, traj = np_tree(compile_fast(run, jax.random.key(3))(jax.random.key(3)))
    return obs0, traj


def test_auto_reset_and_final_observation(cartpole_traj):
    _, tr = cartpole_traj
    done = tr["terminated"] | tr["truncated"]
    assert done.sum() >= 50  # random CartPole episodes last ~20 steps
    # Episode ends: the returned obs is a fresh reset obs, final_observation the terminal one.
    assert (np.abs(tr["obs"][done]) <= 0.05).all()
    assert (tr["time"][done] == 0).all()
    assert (tr["obs"][done] != tr["final_obs"][done]).any(axis=-1).all()
    term = tr["final_obs"][tr["terminated"]]
    assert ((np.abs(term[:, 0]) > 2.4) | (np.abs(term[:, 2]) > THETA_LIMIT)).all()
    # Otherwise the two are the same observation and time advances by one.
    np.testing.assert_array_equal(tr["obs"][~done], tr["final_obs"][~done])
    assert (tr["time"][1:][~done[1:]] == tr["time"][:-1][~done[1:]] + 1).all()
    alive = tr["final_obs"][~done]
    assert ((np.abs(alive[:, 0]) <= 2.4) & (np.abs(alive[:, 2]) <= THETA_LIMIT)).all()


def test_episode_statistics_on_cartpole(cartpole_traj):
    _, tr = cartpole_traj
    done = tr["terminated"] | tr["truncated"]
    np.testing.assert_array_equal(tr["done"], done)
    checked = 0
    for e in range(8):
        ret, length = 0.0, 0
        for t in range(300):
            ret, length = ret + tr["reward"][t, e], length + 1
            assert tr["ret"][t, e] == pytest.approx(ret) and tr["length"][t, e] == length
            if done[t, e]:
                ret, length, checked = 0.0, 0, checked + 1
    assert checked >= 50


def test_cartpole_truncates_at_time_limit_and_terminates_when_pole_falls(cartpole):
    env, params = cartpole
    short = params.replace(max_steps_in_episode=5)
    key = jax.random.key(0)
    _, state = env.reset(key, short)
    for t in range(1, 6):  # alternating pushes keep the pole up
        _, state, _, terminated, truncated, _ = env.step(key, state, jnp.int32(t % 2), short)
        assert not bool(terminated)
        assert bool(truncated) == (t == 5)
    assert int(state.time) == 0  # auto-reset after the time limit

    falling = state.replace(theta=jnp.float32(0.2), theta_dot=jnp.float32(2.0))
    obs, state, reward, terminated, truncated, info = env.step(key, falling, jnp.int32(0), params)
    assert bool(terminated) and not bool(truncated)
    assert float(reward) == 1.0  # Gymnasium pays the step the pole falls on
    assert info["final_observation"][2] > THETA_LIMIT
    assert abs(float(obs[2])) <= 0.05


def test_cartpole_matches_gymnasium_step_by_step(cartpole):
    """Same state and action -> same obs, reward, terminated, truncated as Gymnasium's
    CartPole-v1, over terminations (falls) and truncations (a short time limit)."""
    env, params = cartpole
    params = params.replace(max_steps_in_episode=60)
    genv = gymnasium.make("CartPole-v1", max_episode_steps=60)
    genv.reset(seed=0)
    rng = np.random.default_rng(0)
    key = jax.random.key(0)

    def sync(state):  # float32 -> float64 is exact, so both start from identical values
        genv.unwrapped.state = np.array(
            [state.x, state.x_dot, state.theta, state.theta_dot], dtype=np.float64
        )

    key, k = jax.random.split(key)
    obs, state = env.reset(k, params)
    sync(state)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(400):
        # Alternate episodes of a balancing controller (reaches the time limit) and of
        # random actions (the pole falls), so both kinds of episode end are compared.
        if sum(ends.values()) % 2 == 0:
            action = int(obs[2] + 0.5 * obs[3] > 0)
        else:
            action = int(rng.integers(2))
        g_obs, g_reward, g_term, g_trunc, _ = genv.step(action)
        key, k = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = env.step(
            k, state, jnp.int32(action), params
        )
        np.testing.assert_allclose(info["final_observation"], g_obs, rtol=1e-5, atol=1e-6)
        assert float(reward) == g_reward
        assert (bool(terminated), bool(truncated)) == (g_term, g_trunc)
        if g_term or g_trunc:
            ends["terminated"] += g_term
            ends["truncated"] += g_trunc and not g_term
            genv.reset()  # clears Gymnasium's time limit; then take over our reset state
        sync(state)
    assert ends["terminated"] >= 2 and ends["truncated"] >= 2, ends


# ------------------------------------------------------------------------- wrappers


def test_episode_statistics_on_two_step_probe():
    env, params = make("Probe-TwoStep-v0")
    wrapped = EpisodeStatistics(env)
    key = jax.random.key(0)
    _, state = wrapped.reset(key, params)
    for _ in range(2):  # two episodes
        _, state, reward, _, _, info = wrapped.step(key, state, 0, params)
        assert (float(info["episode_return"]), int(info["episode_length"])) == (0.0, 1)
        assert not bool(info["episode_done"])
        _, state, reward, _, _, info = wrapped.step(key, state, 0, params)
        assert (float(info["episode_return"]), int(info["episode_length"])) == (1.0, 2)
        assert bool(info["episode_done"])
        assert (float(state.episode_return), int(state.episode_length)) == (0.0, 0)


def test_flatten_observation_on_minatar():
    env, params = make("Breakout-MinAtar")
    flat = FlattenObservation(env)
    space = flat.observation_space(params)
    assert space.shape == (400,) and space.dtype == jnp.float32
    assert (np.asarray(space.low) == 0).all() and (np.asarray(space.high) == 1).all()

    def run(key):
        obs, state = flat.reset(key, params)
        raw_obs, raw_state = env.reset(key, params)
        out = flat.step(key, state, 1, params)
        raw = env.step(key, raw_state, 1, params)
        return obs, raw_obs, out, raw

    obs, raw_obs, out, raw = np_tree(compile_fast(run, jax.random.key(0))(jax.random.key(0)))
    assert obs.shape == out[0].shape == out[5]["final_observation"].shape == (400,)
    np.testing.assert_array_equal(obs, raw_obs.reshape(-1))
    np.testing.assert_array_equal(out[0], raw[0].reshape(-1))
    np.testing.assert_array_equal(out[5]["final_observation"],
                                  raw[5]["final_observation"].reshape(-1))


@struct.dataclass
class _EchoState:
    time: jax.Array


@struct.dataclass
class _EchoParams:
    max_steps_in_episode: int = 10


class _EchoAction(Environment):
    """Observes the action it was given: shows exactly what reached the environment."""

    @property
    def default_params(self) -> _EchoParams:
        return _EchoParams()

    def action_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(jnp.array([-1.0, -2.0]), jnp.array([1.0, 0.5]), (2,), jnp.float32)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-5.0, 5.0, (2,), jnp.float32)

    def reset_env(self, key, params):
        return jnp.zeros(2), _EchoState(jnp.int32(0))

    def step_env(self, key, state, action, params):
        return action, _EchoState(state.time + 1), jnp.float32(0.0), jnp.bool_(False), {}


def test_clip_action_clips_into_per_dimension_bounds():
    env = ClipAction(_EchoAction())
    _, state = env.reset(jax.random.key(0))
    action = jnp.array([3.0, -4.0])
    obs, *_ = env.step(jax.random.key(0), state, action)
    np.testing.assert_array_equal(obs, [1.0, -2.0])
    obs, *_ = env.step(jax.random.key(0), state, jnp.array([0.3, 0.4]))
    np.testing.assert_allclose(obs, [0.3, 0.4])
    unclipped, *_ = _EchoAction().step(jax.random.key(0), state, action)
    np.testing.assert_array_equal(unclipped, action)


def test_vector_env_batched_params(cartpole):
    """Two levels in one batch: each env follows its own params, including auto-reset."""
    env, params = cartpole
    levels = [params.replace(max_steps_in_episode=3),
              params.replace(max_steps_in_episode=500, force_mag=20.0)]
    batched = jax.tree.map(lambda *leaves: jnp.stack([jnp.asarray(x) for x in leaves]), *levels)
    vec = VectorEnv(env, 2, batched_params=True)

    def run(key):
        obs, state = vec.reset(key, batched)
        # Identical starts, so any difference comes from the params.
        state = jax.tree.map(lambda x: jnp.stack([x[0], x[0]]), state)
        ks = jax.random.split(key, 2)
        out = []
        for _ in range(3):
            step = vec.step(ks, state, jnp.ones(2, jnp.int32), batched)
            state = step[1]
            out.append(step)
        return out, jax.tree.map(lambda x: x[0], vec.reset(key, batched)[1])

    key = jax.random.key(0)
    steps, state0 = compile_fast(run, key)(key)
    steps = np_tree(steps)
    first = steps[0][5]["final_observation"]
    assert first[1, 1] > first[0, 1] > 0  # the stronger push accelerates more
    truncated = np.stack([s[4] for s in steps])
    np.testing.assert_array_equal(truncated, [[False, False], [False, False], [True, False]])
    assert steps[2][1].time.tolist() == [0, 3]  # env 0 reset on its own time limit
    # Lane 0 agrees with the single env under its own params.
    ks = jax.random.split(key, 2)
    ref = env.step(ks[0], state0, jnp.int32(1), levels[0])
    np.testing.assert_allclose(first[0], ref[5]["final_observation"], rtol=1e-6)


def test_vector_env_accepts_one_key_or_a_batch(cartpole):
    env, params = cartpole
    vec = VectorEnv(env, 4)
    key = jax.random.key(7)
    obs_one, _ = vec.reset(key, params)
    obs_batch, _ = vec.reset(jax.random.split(key, 4), params)
    assert obs_one.shape == (4, 4)
    np.testing.assert_array_equal(obs_one, obs_batch)
    assert len(np.unique(np.asarray(obs_one)[:, 0])) == 4


@pytest.mark.parametrize("name", ["CartPole-v1", "Asterix-MinAtar", "Maze", "Pendulum-v1"])
def test_pre_drawn_resets_reproduce_gymnax_auto_reset(name):
    """A wrapped, vectorised step given the reset gymnax would have drawn (from the second
    half of its key split) returns what gymnax's own auto-resetting step returns,
    for deterministic and stochastic dynamics, over steps with and without episode ends."""
    env, params = make(name)
    params = params.replace(max_steps_in_episode=3)  # episode ends within the test
    n, steps = 4, 5
    vec = VectorEnv(EpisodeStatistics(FlattenObservation(env)), n)
    space = env.action_space(params)

    def run(key):
        _, state = vec.reset(key, params)
        same = []
        for t in range(steps):
            k = jax.random.fold_in(key, t + 1)
            lanes = jax.random.split(k, n)
            actions = jax.vmap(space.sample)(jax.random.split(jax.random.fold_in(k, 9), n))
            step_keys, reset_keys = jax.vmap(jax.random.split, out_axes=1)(lanes)
            reset = jax.vmap(env.reset_env, in_axes=(0, None))(reset_keys, params)
            ours = vec.step(step_keys, state, actions, params, reset=reset)
            theirs = vec.step(lanes, state, actions, params)
            same.append((ours, theirs))
            state = theirs[1]
        return same

    key = jax.random.key(2)
    pairs = np_tree(compile_fast(run, key)(key))
    ends = 0
    for ours, theirs in pairs:  # float physics may fuse differently: equal to rounding
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                     ours, theirs)
        ends += int(np.sum(theirs[3] | theirs[4]))
    assert ends > 0  # auto-resets happened

    pool = jax.eval_shape(lambda k: vec.draw_resets(k, params, 7), key)
    reset_obs = jax.eval_shape(lambda k: env.reset_env(k, params), key)[0]
    assert pool[0].shape == (7, n, *reset_obs.shape)


def test_env_with_its_own_auto_reset_draws_resets_in_step(cartpole):
    """An environment that overrides ``step`` keeps its own auto-reset, and a wrapper
    without the ``reset`` argument still works: nothing is pre-drawn for either."""
    env, params = cartpole

    class OwnStep(type(env)):
        def step(self, key, state, action, params=None):
            return super().step(key, state, action, params)

    assert VectorEnv(OwnStep(), 2).draw_resets(jax.random.key(0), params, 3) is None
    assert VectorEnv(env, 2).draw_resets(jax.random.key(0), params, 3) is not None

    class OldStyleWrapper(Wrapper):  # a user's wrapper written before ``reset`` existed
        def step(self, key, state, action, params=None):
            return self._env.step(key, state, action, params)

    vec = VectorEnv(EpisodeStatistics(OldStyleWrapper(env)), 2)
    assert vec.draw_resets(jax.random.key(0), params, 3) is None
    _, state = vec.reset(jax.random.key(0), params)
    assert vec.step(jax.random.key(1), state, jnp.zeros(2, jnp.int32), params)[0].shape == (2, 4)


@pytest.fixture(scope="module")
def normalized_run(cartpole):
    """NormalizeObservation over 8 CartPoles, with the raw inner transitions alongside."""
    env, params = cartpole
    vec = VectorEnv(env, 8)
    norm = NormalizeObservation(vec)

    def run(key):
        raw_obs0, _ = vec.reset(key, params)
        obs0, state = norm.reset(key, params)

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            action = jax.random.randint(k_act, (8,), 0, 2)
            raw = vec.step(k_step, state.env_state, action, params)
            out = norm.step(k_step, state, action, params)
            return out[1], (raw, out, out[1].obs_stats)

        _, (raw, out, stats) = jax.lax.scan(body, state, jax.random.split(key, 400))
        return raw_obs0, obs0, raw, out, stats

    key = jax.random.key(1)
    return np_tree(compile_fast(run, key)(key))


def _normalize(x, mean, var):
    return np.clip((x - mean) / np.sqrt(var + 1e-8), -10, 10)


def _with_prior(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``x`` plus RunningMeanStd's prior (count 1e-4, mean 0, var 1)."""
    c, n = 1e-4, x.shape[0]
    mean = x.sum(axis=0) / (n + c)
    return mean, (c + (x**2).sum(axis=0)) / (n + c) - mean**2


def test_normalize_observation(normalized_run):
    raw_obs0, obs0, raw, out, stats = normalized_run
    at = lambda t: jax.tree.map(lambda x: x[t], stats)
    # The running statistics are those of every observation seen, reset ones included.
    seen = np.concatenate([raw_obs0, raw[0].reshape(-1, 4)])
    mean, var = _with_prior(seen)
    assert at(-1).count == pytest.approx(len(seen), abs=1e-2)
    np.testing.assert_allclose(at(-1).mean, mean, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(at(-1).var, var, rtol=1e-3)
    # Reset normalises by the statistics of the reset observations alone.
    np.testing.assert_allclose(obs0, _normalize(raw_obs0, *_with_prior(raw_obs0)), rtol=1e-4,
                               atol=1e-4)
    # Each step normalises obs and final_observation with the same, just-updated stats.
    for t in (0, 57, 399):
        s = at(t)
        np.testing.assert_allclose(out[0][t], _normalize(raw[0][t], s.mean, s.var),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out[5]["final_observation"][t],
                                   _normalize(raw[5]["final_observation"][t], s.mean, s.var),
                                   rtol=1e-4, atol=1e-5)
    done = raw[3] | raw[4]
    assert done.sum() > 20
    np.testing.assert_array_equal(out[0][~done], out[5]["final_observation"][~done])
    assert (out[0][done] != out[5]["final_observation"][done]).any(axis=-1).all()
    # After many steps the normalised observations are ~zero mean, unit variance.
    late = out[0][200:].reshape(-1, 4)
    np.testing.assert_allclose(late.mean(axis=0), 0.0, atol=0.2)
    np.testing.assert_allclose(late.std(axis=0), 1.0, atol=0.2)


def test_scale_reward_divides_by_return_std():
    env, params = make("Pendulum-v1")
    params = params.replace(max_steps_in_episode=40)
    vec = VectorEnv(env, 4)
    scaled_env = ScaleReward(vec, gamma=0.9)

    def run(key):
        _, state = scaled_env.reset(key, params)

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            action = jax.random.uniform(k_act, (4, 1), minval=-2.0, maxval=2.0)
            raw = vec.step(k_step, state.env_state, action, params)
            out = scaled_env.step(k_step, state, action, params)
            return out[1], (raw[2], raw[3] | raw[4], out[2], out[1].return_stats.var)

        return jax.lax.scan(body, state, jax.random.split(key, 100))[1]

    key = jax.random.key(2)
    reward, done, scaled, var = np_tree(compile_fast(run, key)(key))
    assert done.any()
    ret, rets = np.zeros(4), []
    for t in range(100):
        ret = ret * 0.9 + reward[t]
        rets.append(ret)
        _, expected_var = _with_prior(np.concatenate(rets))
        assert var[t] == pytest.approx(expected_var, rel=1e-3)
        expected = np.clip(reward[t] / np.sqrt(expected_var + 1e-8), -10, 10)
        np.testing.assert_allclose(scaled[t], expected, rtol=1e-3)
        ret = ret * (1 - done[t])
    assert np.abs(scaled[-1]).max() < np.abs(reward[-1]).max()


def test_frozen_statistics_stay_fixed(cartpole):
    """update_stats=False (evaluation): injected training statistics are used unchanged."""
    env, params = cartpole
    stack = ScaleReward(NormalizeObservation(VectorEnv(env, 4), update_stats=False),
                        gamma=0.99, update_stats=False)
    obs_stats = RunningMeanStd(jnp.array([0.1, 0.0, 0.0, 0.0]), jnp.full(4, 4.0), jnp.float32(50))
    ret_stats = RunningMeanStd(jnp.float32(0.0), jnp.float32(16.0), jnp.float32(50))

    def run(key):
        _, state = stack.reset(key, params)
        state = state.replace(return_stats=ret_stats,
                              env_state=state.env_state.replace(obs_stats=obs_stats))

        def body(state, k):
            obs, state, reward, *_ = stack.step(k, state, jnp.ones(4, jnp.int32), params)
            return state, (obs, reward, state.env_state.env_state)

        return jax.lax.scan(body, state, jax.random.split(key, 30))

    key = jax.random.key(4)
    state, (obs, reward, cp) = np_tree(compile_fast(run, key)(key))
    jax.tree.map(np.testing.assert_array_equal, state.return_stats, np_tree(ret_stats))
    jax.tree.map(np.testing.assert_array_equal, state.env_state.obs_stats, np_tree(obs_stats))
    np.testing.assert_allclose(reward, 1.0 / 4.0, rtol=1e-6)  # CartPole pays 1; std of 16 is 4
    raw = np.stack([cp.x, cp.x_dot, cp.theta, cp.theta_dot], axis=-1)  # obs = state fields
    np.testing.assert_allclose(obs, (raw - [0.1, 0, 0, 0]) / 2.0, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- probe envs


def probe(rollouts, name):
    obs0, tr = rollouts(name)(keys(0), PROBE_STEPS)
    seen = np.concatenate([obs0[:, None], tr["obs"][:, :-1]], axis=1)  # obs each action saw
    return seen[..., 0], {k: (v[..., 0] if k in ("obs", "final_obs") else v) for k, v in tr.items()}


def test_probe_constant(rollouts):
    seen, tr = probe(rollouts, "Probe-Constant-v0")
    assert (seen == 0).all() and (tr["reward"] == 1).all()
    assert tr["terminated"].all() and not tr["truncated"].any()


def test_probe_observation(rollouts):
    seen, tr = probe(rollouts, "Probe-Observation-v0")
    assert set(np.unique(seen)) == {-1.0, 1.0}
    np.testing.assert_array_equal(tr["reward"], seen)
    np.testing.assert_array_equal(tr["final_obs"], seen)
    assert tr["terminated"].all() and not tr["truncated"].any()


def test_probe_two_step(rollouts):
    seen, tr = probe(rollouts, "Probe-TwoStep-v0")
    first = np.tile([True, False], (BATCH, PROBE_STEPS // 2))
    np.testing.assert_array_equal(seen, np.where(first, 0.0, 1.0))
    np.testing.assert_array_equal(tr["terminated"], ~first)
    np.testing.assert_array_equal(tr["reward"], tr["terminated"].astype(np.float32))
    assert (tr["final_obs"] == 1).all()  # the episode ends on obs 1, the reset obs is 0
    np.testing.assert_array_equal(tr["obs"], np.where(tr["terminated"], 0.0, 1.0))


def test_probe_action(rollouts):
    seen, tr = probe(rollouts, "Probe-Action-v0")
    assert set(np.unique(tr["action"])) == {0, 1}
    np.testing.assert_array_equal(tr["reward"], np.where(tr["action"] == 1, 1.0, -1.0))
    assert tr["terminated"].all()


def test_probe_observation_action(rollouts):
    seen, tr = probe(rollouts, "Probe-ObservationAction-v0")
    matched = tr["action"] == (seen > 0)
    assert matched.any() and (~matched).any()
    np.testing.assert_array_equal(tr["reward"], np.where(matched, 1.0, -1.0))
    assert tr["terminated"].all()


def test_probe_continuous_action(rollouts):
    _, tr = probe(rollouts, "Probe-ContinuousAction-v0")
    env = rollouts("Probe-ContinuousAction-v0").env
    assert env.num_actions == env.action_space().shape[0] == 1
    a = tr["action"][..., 0]
    assert (np.abs(a) <= 1).all() and a.std() > 0.3
    np.testing.assert_allclose(tr["reward"], 1 - (a - 0.5) ** 2, rtol=1e-6)
    assert tr["terminated"].all()


# ------------------------------------------------------------------------- registry


def test_make_unknown_name_suggests_the_close_one():
    with pytest.raises(ConfigError) as err:
        make("CartPol-v1")
    message = str(err.value)
    assert "'CartPole-v1'" in message and "\n" not in message
    with pytest.raises(ConfigError, match="Probe-Action-v0"):
        make("probe-action")
    with pytest.raises(ConfigError):
        make("CartPole-v1", not_an_argument=1)


def test_registry_lists_gymnax_and_probes():
    assert {"CartPole-v1", "Breakout-MinAtar", "Probe-TwoStep-v0"} <= set(env_names())
    assert env_spec("MNISTBandit-bsuite").needs_download
    assert "Asterix-MinAtar" in env_names("minatar") and "CartPole-v1" not in env_names("probe")


# ------------------------------------------------------------------ Gymnasium adapter


@pytest.fixture(scope="module")
def gym_envs():
    """name -> GymnasiumEnv, one per module (each compiles its reset and step once)."""
    cache: dict[str, GymnasiumEnv] = {}

    def get(name: str) -> GymnasiumEnv:
        if name not in cache:
            cache[name] = GymnasiumEnv(name)
        return cache[name]

    return get


def test_space_conversion_keeps_bounds_and_dtypes():
    env, params = make("CartPole-v1")
    box = to_gymnasium_space(env.observation_space(params))
    assert box.dtype == np.float32 and box.shape == (4,)
    np.testing.assert_array_equal(box.high, env.observation_space(params).high)
    assert box.high[1] == np.finfo(np.float32).max and np.isfinite(box.low).all()
    env, params = make("Catch-bsuite")
    assert to_gymnasium_space(env.observation_space(params)).dtype == np.int32
    env, params = make("FrozenLake-misc")
    assert to_gymnasium_space(env.observation_space(params)) == gymnasium.spaces.Discrete(16)
    nested = to_gymnasium_space(spaces.Tuple([
        spaces.Discrete(3),
        spaces.Dict({"v": spaces.Box(jnp.array([0.0, -1.0]), 2.0, (2,), jnp.float32)}),
    ]))
    assert nested == gymnasium.spaces.Tuple((
        gymnasium.spaces.Discrete(3),
        gymnasium.spaces.Dict({"v": gymnasium.spaces.Box(
            np.array([0.0, -1.0], np.float32), np.array([2.0, 2.0], np.float32))}),
    ))


@pytest.mark.parametrize(
    "name", ["CartPole-v1", "Pendulum-v1", "Breakout-MinAtar", "Probe-ObservationAction-v0"]
)
def test_gymnasium_adapter_passes_check_env_and_rolls_out(gym_envs, name):
    env = gym_envs(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # Gymnasium's own Pendulum-v1 gets this recommendation too; anything else is a defect.
    advice = "recommend using a symmetric and normalized space"
    assert [str(w.message) for w in caught
            if "WARN" in str(w.message) and advice not in str(w.message)] == []

    obs, info = env.reset(seed=0)
    assert obs in env.observation_space and info == {}
    env.action_space.seed(0)
    for _ in range(1000):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs in env.observation_space and obs.dtype == env.observation_space.dtype
        assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
        if terminated or truncated:
            break
    assert terminated or truncated


def test_gymnasium_adapter_episode_protocol(gym_envs):
    env = gym_envs("CartPole-v1")
    obs, _ = env.reset(seed=3)
    trajectory = [obs]
    while True:
        obs, reward, terminated, truncated, _ = env.step(1)  # always push right: falls fast
        trajectory.append(obs)
        if terminated or truncated:
            break
    # The last observation is the one the episode ended on, not a reset one.
    assert terminated and not truncated and reward == 1.0
    assert abs(obs[0]) > 2.4 or abs(obs[2]) > THETA_LIMIT
    with pytest.warns(UserWarning, match="call reset"):
        env.step(0)
    # Seeds reproduce episodes; the key stream continues across unseeded resets.
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(again, trajectory[0])
    for expected in trajectory[1:]:
        np.testing.assert_array_equal(env.step(1)[0], expected)
    assert not np.array_equal(env.reset(seed=4)[0], trajectory[0])
    next_a, next_b = env.reset()[0], env.reset()[0]
    assert not np.array_equal(next_a, next_b)
    env.reset(seed=4)
    np.testing.assert_array_equal(env.reset()[0], next_a)
    with pytest.raises(ValueError):
        env.step(2)


def test_gymnasium_adapter_requires_reset_and_handles_time_limits(gym_envs):
    pendulum = gym_envs("Pendulum-v1")
    short = GymnasiumEnv(pendulum.jax_env, pendulum.params.replace(max_steps_in_episode=5))
    with pytest.raises(gymnasium.error.ResetNeeded):
        short.step(np.zeros(1, np.float32))
    short.reset(seed=0)
    ends = [short.step(np.array([0.5], np.float32))[2:4] for _ in range(5)]
    assert ends == [(False, False)] * 4 + [(False, True)]


@struct.dataclass
class _DictState:
    pos: jax.Array
    time: jax.Array


class _DictObs(Environment):
    """A Dict observation (position and a flag) to exercise nested space conversion."""

    @property
    def default_params(self) -> _EchoParams:
        return _EchoParams()

    def observation_space(self, params: Any = None) -> spaces.Dict:
        return spaces.Dict({"pos": spaces.Box(-10, 10, (2,), jnp.int32),
                            "flag": spaces.Discrete(2)})

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def _obs(self, state):
        return {"pos": state.pos, "flag": (state.pos[0] > 0).astype(jnp.int32)}

    def reset_env(self, key, params):
        state = _DictState(jax.random.randint(key, (2,), -3, 4), jnp.int32(0))
        return self._obs(state), state

    def step_env(self, key, state, action, params):
        move = jnp.array([[1, 0], [-1, 0], [0, 1], [0, -1]])[action]
        state = _DictState(jnp.clip(state.pos + move, -10, 10), state.time + 1)
        return self._obs(state), state, jnp.float32(1.0), jnp.bool_(False), {}


def test_gymnasium_adapter_dict_observations_and_wrapped_envs():
    env = GymnasiumEnv(_DictObs())
    assert isinstance(env.observation_space, gymnasium.spaces.Dict)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught if "WARN" in str(w.message)] == []
    obs, *_ = env.step(0)
    assert isinstance(obs["flag"], np.int64) and obs["pos"].dtype == np.int32

    probe_env, params = make("Probe-TwoStep-v0")
    wrapped = GymnasiumEnv(EpisodeStatistics(probe_env), params)
    wrapped.reset(seed=0)
    wrapped.step(0)
    obs, reward, terminated, _, info = wrapped.step(0)
    assert terminated and obs[0] == 1.0 and info["episode_return"] == 1.0
