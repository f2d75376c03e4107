"""Assertions shared by the learner test files (imported as a plain module, like
``child_process``)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from rlfoundry.engine import algorithm_for
from rlfoundry.experiment import report
from rlfoundry.experiment.evaluate import play

SAME_SEED_SAME_NUMBERS = [0, 0, 1]


def assert_same_seed_same_numbers(params: Any, metrics: dict, loss: str) -> None:
    """A run of seeds ``SAME_SEED_SAME_NUMBERS`` vmapped together: the two seed-0 copies
    end with identical parameters and loss curves, and seed 1 differs. Folded into a probe
    test per learner, so the check reuses the probe's compiled program."""
    leaves = jax.tree.leaves(params)
    assert all(np.array_equal(x[0], x[1]) for x in leaves)
    assert not all(np.array_equal(x[0], x[2]) for x in leaves)
    np.testing.assert_array_equal(metrics[loss][0], metrics[loss][1])


def final_returns(metrics: dict, fraction: float = 0.05) -> np.ndarray:
    """Per-seed episode-weighted mean training return over the last ``fraction`` of updates
    (the run summary's measure)."""
    return report.final_returns(metrics, fraction)[0]


def greedy_returns(cfg: Any, state: Any, episodes: int = 10, cap: int = 501) -> np.ndarray:
    """Mean return of the deterministic (greedy / mean-action) policy per seed, from a
    compiled evaluation loop of ``episodes`` fresh episodes."""
    run = play(cfg, algorithm_for(cfg), episodes, cap, True)
    keys = jax.random.split(jax.random.PRNGKey(1234), jax.tree.leaves(state)[0].shape[0])
    returns, _, finished = jax.jit(jax.vmap(run))(state, keys)
    assert np.asarray(finished).all()
    return np.asarray(returns).mean(axis=1)
