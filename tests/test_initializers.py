"""Orthogonal initialisation without LAPACK (the jaxlib 0.10.2 batched-QR deadlock)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlfoundry.algos import ALGORITHMS, PPOConfig, ppo
from rlfoundry.initializers import orthogonal


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (3, 3, 2, 16), (54, 256)])
def test_matches_flax_orthogonal_for_the_same_key(shape):
    key = jax.random.PRNGKey(3)
    ours = orthogonal(np.sqrt(2))(key, shape)
    flax_q = nn.initializers.orthogonal(np.sqrt(2))(key, shape)
    np.testing.assert_allclose(ours, flax_q, atol=2e-6)
    flat = np.asarray(ours).reshape(-1, shape[-1]) / np.sqrt(2)
    small = min(flat.shape)
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_no_learner_init_calls_lapack_under_vmap(name):
    """Every learner's default init, and UED's recurrent agent, lowered for 2 seeds."""
    algo = ALGORITHMS[name]
    configs = [algo.config_cls()]
    if name == "ued":
        configs.append(algo.config_cls(env="Maze", network="cnn", recurrent=True))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    for cfg in configs:
        hlo = jax.jit(jax.vmap(lambda k, c=cfg: algo.init(c, k))).lower(keys).as_text().lower()
        assert "lapack" not in hlo and "geqrf" not in hlo, (name, cfg)


def test_vmapped_learner_init_calls_no_lapack():
    """A batched QR is what deadlocked: the compiled init of many seeds must not call it."""
    cfg = PPOConfig(env="CartPole-v1")
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    hlo = jax.jit(jax.vmap(lambda k: ppo.init(cfg, k))).lower(keys).as_text()
    assert "lapack" not in hlo.lower() and "geqrf" not in hlo.lower()
    params = jax.jit(jax.vmap(lambda k: ppo.init(cfg, k)))(keys).params
    first = jax.tree.leaves(params)[1]  # a kernel, [seeds, in, out]
    assert not jnp.allclose(first[0], first[1])
