"""PLR level buffer invariants: size, scores, staleness, no duplicates, replay statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlfoundry.curricula import LevelBuffer, level_hash, max_mc, positive_value_loss


def levels(values):
    """Toy levels: a small int grid whose content is the given value."""
    v = jnp.asarray(values, jnp.int32)
    return {"grid": jnp.broadcast_to(v[:, None, None], (v.shape[0], 3, 3)), "goal": v % 7}


def buffer(capacity=4, **kw):
    return LevelBuffer.create(jax.tree.map(lambda x: x[0], levels([0])), capacity, **kw)


insert = jax.jit(LevelBuffer.insert)


def test_fills_then_replaces_only_the_lowest_score_and_never_duplicates():
    buf = insert(buffer(4), levels([1, 2, 3, 4]), jnp.array([0.5, 0.1, 0.9, 0.3]))
    assert int(buf.size) == 4
    buf = insert(buf, levels([5]), jnp.array([0.05]))  # below the minimum: rejected
    assert 5 not in set(np.asarray(buf.levels["goal"]).tolist())
    buf = insert(buf, levels([6]), jnp.array([0.2]))  # beats 0.1 (level 2): replaces it
    goals = set(np.asarray(buf.levels["goal"]).tolist())
    assert goals == {1 % 7, 3, 4, 6} and int(buf.size) == 4
    buf = insert(buf, levels([3]), jnp.array([0.01]))  # duplicate: score updated in place
    g = np.asarray(buf.levels["goal"])
    assert (g == 3).sum() == 1
    assert float(buf.scores[np.argmax(g == 3)]) == pytest.approx(0.01)
    hashes = {tuple(h) for h in np.asarray(jax.vmap(level_hash)(buf.levels)).tolist()}
    assert len(hashes) == 4


def test_duplicates_within_one_batch_are_merged():
    buf = insert(buffer(8), levels([1, 1, 1, 2]), jnp.array([0.1, 0.2, 0.3, 0.4]))
    assert int(buf.size) == 2


def test_rank_prioritisation_and_top_k():
    buf = insert(buffer(4, temperature=1.0, staleness_coef=0.0), levels([1, 2, 3, 4]),
                 jnp.array([0.4, 0.3, 0.2, 0.1]))
    w = np.asarray(buf.score_weights())
    expected = np.array([1, 1 / 2, 1 / 3, 1 / 4]) / sum([1, 1 / 2, 1 / 3, 1 / 4])
    np.testing.assert_allclose(w, expected, rtol=1e-5)
    top2 = buf.replace(top_k=2)
    np.testing.assert_allclose(np.asarray(top2.score_weights()), [0.5, 0.5, 0, 0])
    empty_slots = insert(buffer(6), levels([1, 2]), jnp.array([1.0, 2.0]))
    assert np.asarray(empty_slots.replay_distribution())[2:].sum() == 0.0


def test_staleness_grows_and_replay_refreshes():
    buf = insert(buffer(3, staleness_coef=1.0), levels([1, 2, 3]), jnp.zeros(3))
    for _ in range(5):
        buf = buf.tick()
    buf = buf.update_replayed(jnp.array([0]), jnp.array([1.0]))
    stale = np.asarray(buf.staleness_weights())
    assert stale[0] == 0.0 and stale[1] == pytest.approx(0.5)
    assert float(buf.stats()["buffer_staleness_mean"]) == pytest.approx(10 / 3)


def test_sampling_follows_the_replay_distribution_statistically():
    buf = insert(buffer(4, temperature=0.5, staleness_coef=0.3), levels([1, 2, 3, 4]),
                 jnp.array([4.0, 3.0, 2.0, 1.0]))
    buf = buf.replace(now=jnp.int32(10), last_seen=jnp.array([0, 5, 8, 9], jnp.int32))
    p = np.asarray(buf.replay_distribution())
    idx, _ = jax.jit(LevelBuffer.sample, static_argnums=2)(buf, jax.random.PRNGKey(0), 20_000)
    freq = np.bincount(np.asarray(idx), minlength=4) / 20_000
    np.testing.assert_allclose(freq, p, atol=0.015)


def test_buffer_vmaps_over_seeds():
    bufs = jax.vmap(lambda _: buffer(4))(jnp.arange(3))
    new = jax.vmap(LevelBuffer.insert)(
        bufs, jax.vmap(levels)(jnp.array([[1, 2], [3, 4], [5, 5]])), jnp.ones((3, 2))
    )
    np.testing.assert_array_equal(np.asarray(new.size), [2, 2, 1])


def test_scores():
    adv = jnp.array([[1.0, -1.0], [-2.0, 3.0]])
    np.testing.assert_allclose(positive_value_loss(adv), [0.5, 1.5])
    mask = jnp.array([[1.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(positive_value_loss(adv, mask), [1.0, 1.5])
    values = jnp.array([[0.2, 0.5], [0.4, 0.5]])
    np.testing.assert_allclose(max_mc(values, jnp.array([1.0, 0.5])), [0.7, 0.0], atol=1e-6)


def test_level_hash_tells_float_parameters_apart():
    """Continuous level parameters (e.g. a domain-randomised pole length) must not collide
    when they share an integer part; -0.0 and 0.0 are the same level."""
    h = lambda v: tuple(np.asarray(level_hash({"length": jnp.float32(v), "k": jnp.int32(3)})))
    assert h(0.25) != h(0.75) != h(1.0)
    assert h(0.0) == h(-0.0)
    assert h(0.5) == h(0.5)


def test_buffer_remembers_each_levels_best_return():
    """MaxMC's R_max is the best return ever seen on a level: inserting records it, a
    duplicate or a replay only raises it."""
    buf = insert(buffer(4), levels([1, 2]), jnp.array([0.1, 0.2]))
    assert np.all(np.isneginf(np.asarray(buf.max_returns)))  # no returns given: unknown
    buf = buffer(4).insert(levels([1, 2]), jnp.array([0.1, 0.2]), jnp.array([0.5, 0.0]))
    slot = {int(g): i for i, g in enumerate(np.asarray(buf.levels["goal"])) if buf.filled[i]}
    assert float(buf.max_returns[slot[1]]) == pytest.approx(0.5)
    buf = buf.insert(levels([1]), jnp.array([0.3]), jnp.array([0.2]))  # duplicate, worse
    assert float(buf.max_returns[slot[1]]) == pytest.approx(0.5)
    buf = buf.update_replayed(jnp.array([slot[2], slot[1]]), jnp.array([0.0, 0.0]),
                              jnp.array([0.7, 0.1]))
    assert float(buf.max_returns[slot[2]]) == pytest.approx(0.7)
    assert float(buf.max_returns[slot[1]]) == pytest.approx(0.5)
