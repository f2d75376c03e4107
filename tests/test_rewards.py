"""Reward design: hostile reward code is refused, valid code matches a Python reference,
potential-based shaping leaves the optimal policy unchanged, reward wrappers in the env
stack, and the command line refuses bad code in one line before training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlfoundry.rewards.code import MAX_ELEMENTS, RewardCodeError, check_program, check_source
from rlfoundry.rewards.spec import RewardConfig, sample_transitions
from rlfoundry.rewards.transforms import shaped_reward

SIG = "def reward(obs, action, next_obs, info):\n"

HOSTILE = {
    "import": ("import os\n" + SIG + "    return 0.0", "import", 1),
    "import_inside": (SIG + "    import os\n    return 0.0", "import", 2),
    "dunder_import": (SIG + "    return __import__('os')", "__import__", 2),
    "open": (SIG + "    return open('/etc/passwd')", "'open'", 2),
    "eval": (SIG + "    return eval('1')", "'eval'", 2),
    "class_escape": (SIG + "    return ().__class__.__bases__[0]", "__", 2),
    "attr_on_arg": (SIG + "    return obs.__array_interface__", "attribute", 2),
    "jnp_escape": (SIG + "    return jnp.sum.__globals__", "attribute", 2),
    "jnp_module": (SIG + "    return jnp.numpy.sum(obs)", "jnp.numpy.sum", 2),
    "while": (SIG + "    while True:\n        obs = obs\n    return 0.0", "while", 2),
    "for": (SIG + "    for i in obs:\n        obs = obs\n    return 0.0", "for", 2),
    "comprehension": (SIG + "    return jnp.sum(jnp.stack([x for x in obs]))", "comprehension", 2),
    "huge_zeros": (SIG + "    return jnp.sum(jnp.zeros(10**12))", "jnp.zeros", 2),
    "huge_ones": (SIG + "    return jnp.sum(jnp.ones((100000, 100000)))", "jnp.ones", 2),
    "huge_power": (SIG + "    x = 9\n    return 9 ** x ** 9", "power", 3),
    "recursion": (SIG + "    return reward(obs, action, next_obs, info)", "recursion", 2),
    "lambda": (SIG + "    f = lambda: 0\n    return 0.0", "lambda", 2),
    "helper_call": ("def helper(x):\n    return x\n" + SIG + "    return helper(obs)",
                    "helper", 1),
    "getattr": (SIG + "    return getattr(obs, 'sum')()", "getattr", 2),
    "globals": (SIG + "    return globals()", "'globals'", 2),
    "string": (SIG + "    return 'rm -rf'", "constant", 2),
    "info_key": (SIG + "    return info['__class__']", "info", 2),
    "with": (SIG + "    with open('x') as f:\n        pass\n    return 0.0", "with", 2),
    "try": (SIG + "    try:\n        x = 1\n    except Exception:\n        x = 2\n    return x",
            "try", 2),
    "global": (SIG + "    global jnp\n    return 0.0", "global", 2),
    "rebind_jnp": (SIG + "    jnp = obs\n    return 0.0", "jnp", 2),
    "if": (SIG + "    if obs[0] > 0:\n        return 1.0\n    return 0.0", "if", 2),
    "bool_op": (SIG + "    return (obs[0] > 0) and (obs[1] > 0)", "and", 2),
    "walrus": (SIG + "    return (x := obs[0])", ":=", 2),
    "underscore": (SIG + "    _x = obs[0]\n    return _x", "underscore", 2),
    "wrong_signature": ("def reward(obs):\n    return 0.0", "signature", 1),
    "decorator": ("@jax.jit\n" + SIG + "    return 0.0", "decorator", 1),
    "no_return": (SIG + "    x = obs[0]", "return", 1),
    "top_level_code": ("x = 1\n" + SIG + "    return 0.0", "Assign", 1),
    "syntax": (SIG + "    return obs[", "syntax", None),
    "huge_index": (SIG + "    return obs[10**7]", "computed index", 2),
    "dtype_kw": (SIG + "    return jnp.sum(obs, dtype=object)", "dtype", 2),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_sources_are_refused_naming_construct_and_line(name):
    source, construct, line = HOSTILE[name]
    with pytest.raises(RewardCodeError) as err:
        check_source(source, where="r.py")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("r.py:")
    assert construct.lower() in msg.lower(), msg
    if line is not None:
        assert f"line {line}:" in msg, msg


def test_program_checks_refuse_big_intermediates_wrong_shapes_and_nonfinite():
    samples = sample_transitions("CartPole-v1")
    big = lambda obs, a, nobs, info: jnp.sum(jnp.zeros((MAX_ELEMENTS + 1,)) + obs[0])
    with pytest.raises(RewardCodeError, match="intermediate array"):
        check_program(big, samples)
    vec = check_source(SIG + "    return next_obs * 2").function
    with pytest.raises(RewardCodeError, match="one number"):
        check_program(vec, samples)
    bad = check_source(SIG + "    return jnp.log(next_obs[0] - 100)").function
    with pytest.raises(RewardCodeError, match="non-finite"):
        check_program(bad, samples)


VALID = SIG + '''    """Upright bonus with a cart-position penalty, plus the env reward."""
    angle = jnp.abs(next_obs[2])
    bonus = jnp.where(angle < 0.05, 1, 0) + 0.5 * (action == 1)
    penalty = 0.1 * next_obs[0] ** 2 + jnp.linalg.norm(obs[0:2]) / 4
    bonus -= penalty
    return info["reward"] + bonus - jnp.clip(angle, 0, 1)
'''


def python_reference(obs, action, next_obs, info):
    angle = abs(next_obs[2])
    bonus = (1.0 if angle < 0.05 else 0.0) + 0.5 * (action == 1)
    penalty = 0.1 * next_obs[0] ** 2 + np.linalg.norm(obs[0:2]) / 4
    return info["reward"] + bonus - penalty - min(max(angle, 0.0), 1.0)


def test_valid_source_compiles_and_agrees_with_python_reference():
    fn = check_source(VALID, where="valid.py").function
    samples = sample_transitions("CartPole-v1")
    check_program(fn, samples)
    got = np.asarray(jax.jit(jax.vmap(fn))(*samples))
    obs, act, nobs, info = jax.tree.map(np.asarray, samples)
    want = [python_reference(obs[i], act[i], nobs[i], {k: v[i] for k, v in info.items()})
            for i in range(len(got))]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _value_iteration(p: np.ndarray, r: np.ndarray, terminal: np.ndarray, gamma: float,
                     iters: int = 2000) -> np.ndarray:
    """Exact Q* of a tabular MDP: p [S, A, S'], r [S, A, S'] (terminal states absorb)."""
    q = np.zeros(p.shape[:2])
    for _ in range(iters):
        v = np.where(terminal, 0.0, q.max(1))
        q = (p * (r + gamma * v[None, None, :])).sum(-1)
    return q


def test_potential_shaping_keeps_the_optimal_policy_on_a_tabular_mdp():
    rng = np.random.default_rng(0)
    states, actions, gamma = 8, 3, 0.9
    p = rng.dirichlet(np.ones(states) * 0.3, size=(states, actions))
    r = rng.normal(size=(states, actions, states))
    terminal = np.zeros(states, bool)
    terminal[-1] = True
    phi = jnp.asarray(rng.normal(scale=5.0, size=states), jnp.float32)  # big, arbitrary
    shaping = shaped_reward(lambda s: phi[s], gamma)
    s, a, s2 = np.meshgrid(np.arange(states), np.arange(actions), np.arange(states),
                           indexing="ij")
    info = {"reward": jnp.asarray(r, jnp.float32), "terminated": jnp.asarray(terminal[s2])}
    shaped = np.asarray(shaping(jnp.asarray(s), jnp.asarray(a), jnp.asarray(s2), info))
    q = _value_iteration(p, r, terminal, gamma)
    q_shaped = _value_iteration(p, shaped, terminal, gamma)
    live = ~terminal
    np.testing.assert_array_equal(q.argmax(1)[live], q_shaped.argmax(1)[live])
    # Q' = Q - Φ(s) exactly (Ng et al.), not just the same argmax
    np.testing.assert_allclose(q_shaped[live], (q - np.asarray(phi)[:, None])[live], atol=1e-3)
    assert not np.allclose(shaped, r)  # the shaping did change the rewards


def test_reward_wrappers_in_the_env_stack_keep_true_episode_returns():
    from rlfoundry.algos.base import make_env_stack
    from rlfoundry.algos.ppo import PPOConfig

    cfg = PPOConfig(env="CartPole-v1", num_envs=4, reward=RewardConfig(
        code=SIG + "    return info['reward'] * 0 + 2",
        potential="def potential(obs):\n    return -jnp.abs(obs[2])",
        scale=0.5, clip=0.9))
    cfg.validate()
    stack = make_env_stack(cfg)
    obs, state = stack.env.reset(jax.random.PRNGKey(0), stack.params)
    step = jax.jit(lambda k, s, a: stack.env.step(k, s, a, stack.params))
    for t in range(3):
        obs, state, reward, term, trunc, info = step(jax.random.PRNGKey(t), state,
                                                     jnp.ones(4, jnp.int32))
    assert np.all(np.asarray(reward) <= 0.9 + 1e-6)  # clipped after scaling
    assert np.all(np.asarray(reward) > 0.5)  # 0.5 * (2 + shaping) with small angles
    np.testing.assert_allclose(np.asarray(info["episode_return"]), 3.0)  # CartPole's own


def test_aux_weights_must_match_the_aux_rewards():
    from rlfoundry.errors import ConfigError

    cfg = RewardConfig(aux=(SIG + "    return 1.0",), aux_weights=np.ones(2, np.float32))
    with pytest.raises(ConfigError, match="one weight per reward"):
        cfg.validate()


def test_cli_refuses_reward_code_in_one_line_before_training(tmp_path, capsys):
    from rlfoundry.cli import main

    bad = tmp_path / "reward.py"
    bad.write_text(SIG + "    total = obs[0]\n    while True:\n        total = total\n"
                   "    return total\n")
    code = main(["train", "--env", "CartPole-v1", "--reward-code", str(bad),
                 "--run-dir", str(tmp_path / "run"), "--total-steps", "2048"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "line 3" in err and "while" in err and str(bad) in err
    assert not (tmp_path / "run").exists()
