"""Objectives: PPO clip, DPO's closed form, LPO and TA-LPO drift networks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlfoundry as rf
from rlfoundry.config import batch_axes, from_dict, to_dict
from rlfoundry.objectives import DPO, LPO, TALPO, PPOClip, lpo_features

RATIOS = jnp.linspace(0.3, 2.5, 41)
ADVS = jnp.linspace(-3.0, 3.0, 31)
R, A = (x.reshape(-1) for x in jnp.meshgrid(RATIOS, ADVS))
ZERO = jnp.float32(0.0)


def test_ppo_clip_drift_equals_clipped_surrogate():
    obj = PPOClip(clip_eps=0.2)
    surrogate = obj.surrogate(R, jnp.log(R), A, ZERO)
    expected = jnp.minimum(R * A, jnp.clip(R, 0.8, 1.2) * A)
    np.testing.assert_allclose(surrogate, expected, rtol=1e-6, atol=1e-6)


def test_dpo_drift_matches_closed_form_and_is_non_negative():
    obj = DPO()
    drift = np.asarray(obj.drift(R, A, ZERO))
    r, a = np.asarray(R, np.float64), np.asarray(A, np.float64)
    pos = (r - 1) * a
    neg = np.log(r) * a
    expected = np.where(
        a >= 0,
        np.maximum(pos - 2.0 * np.tanh(pos / 2.0), 0.0),
        np.maximum(neg - 0.6 * np.tanh(neg / 0.6), 0.0),
    )
    np.testing.assert_allclose(drift, expected, rtol=1e-5, atol=1e-6)
    assert drift.min() >= 0.0
    assert float(obj.drift(jnp.ones(3), jnp.array([-1.0, 0.0, 2.0]), ZERO).max()) == 0.0


def test_ppo_initialised_lpo_reproduces_ppo_loss_at_initialisation():
    lpo, ppo = LPO(), PPOClip()
    np.testing.assert_allclose(
        lpo.surrogate(R, jnp.log(R), A, ZERO), ppo.surrogate(R, jnp.log(R), A, ZERO), atol=1.01e-4
    )


@pytest.mark.parametrize("cls", [LPO, TALPO])
def test_learned_drift_is_non_negative_for_any_weights(cls):
    theta = jax.random.normal(jax.random.PRNGKey(3), (cls.num_inputs * 128 + 128,))
    for ppo_init in (True, False):
        obj = cls(theta=theta, ppo_init=ppo_init)
        for progress in (0.0, 0.5, 1.0):
            assert float(obj.drift(R, A, jnp.float32(progress)).min()) >= 0.0


def test_ta_lpo_features_respond_to_training_progress():
    theta = jax.random.normal(jax.random.PRNGKey(0), (16 * 128 + 128,))
    obj = TALPO(theta=theta, ppo_init=False)
    f0, f1 = obj.features(R, A, jnp.float32(0.0)), obj.features(R, A, jnp.float32(0.7))
    np.testing.assert_allclose(f0[:, :8], f1[:, :8])
    np.testing.assert_allclose(f1[:, 8:], 0.7 * f0[:, :8], rtol=1e-6)
    assert float(jnp.abs(f0[:, 8:]).max()) == 0.0
    assert not np.allclose(obj.drift(R, A, jnp.float32(0.0)), obj.drift(R, A, jnp.float32(0.7)))
    lpo = LPO(theta=theta[: 8 * 128 + 128], ppo_init=False)
    np.testing.assert_allclose(lpo.drift(R, A, ZERO), lpo.drift(R, A, jnp.float32(0.9)))


def test_lpo_features_are_the_eight_of_the_paper():
    x = lpo_features(jnp.array([1.5]), jnp.array([0.5]))[0]
    r, lr = 1.5, np.log(1.5)
    base = np.array([r - 1, (r - 1) ** 2, lr, lr**2])
    np.testing.assert_allclose(x, np.concatenate([base, base * 0.5]), rtol=1e-6)


def test_learned_objective_round_trips_through_config_json():
    theta = np.arange(8 * 4 + 4, dtype=np.float32) / 100
    cfg = rf.PPOConfig(objective=LPO(hidden=4, theta=theta))
    back = from_dict(rf.PPOConfig, to_dict(cfg))
    assert isinstance(back.objective, LPO) and back.objective.hidden == 4
    np.testing.assert_array_equal(back.objective.theta, theta)
    with pytest.raises(rf.ConfigError, match="hidden=8"):
        LPO(hidden=8, theta=theta).validate()
    assert isinstance(from_dict(rf.PPOConfig, {"objective": "dpo"}).objective, DPO)


def test_population_of_learned_objectives_vmaps_through_training():
    """A population of drift networks trains in one program, as ES needs."""
    base = rf.PPOConfig(num_envs=4, num_steps=32, total_steps=4 * 32 * 3, num_minibatches=2)
    thetas = 0.5 * jax.random.normal(jax.random.PRNGKey(1), (3, 8 * 16 + 16))
    cfg = base.replace(objective=LPO(hidden=16, theta=thetas))
    axes = batch_axes(cfg, ("objective.theta",))
    keys = jnp.stack([jax.random.PRNGKey(0)] * 3)
    state, metrics = jax.jit(jax.vmap(rf.train, in_axes=(axes, 0)))(cfg, keys)
    losses = np.asarray(metrics["policy_loss"])
    assert losses.shape == (3, 3)
    assert not np.allclose(losses[0], losses[1])  # different objectives, different training
