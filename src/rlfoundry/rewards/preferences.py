"""Preference reward models: a Bradley–Terry reward network learned from segment pairs.

As in Christiano et al. (2017): a teacher compares two trajectory segments σ¹, σ² and
says which is better; the model ``r_ψ(s, a)`` is fitted so that

    P(σ¹ ≻ σ²) = sigmoid(Σ_t r_ψ(s¹_t, a¹_t) − Σ_t r_ψ(s²_t, a²_t))

by cross-entropy on the teacher's labels. Here the teacher is scripted: it prefers the
segment with the larger true (environment) return, 0.5 on ties. Segments are windows of
``length`` steps of one environment's experience under a behaviour policy (uniform random
by default), cut at the first episode end (later steps are masked out of both sums).

The fitted network is saved as an ``.npz`` (weights plus a JSON ``meta``) and used by
setting ``reward.model`` in a learner's config: the env stack then replaces the reward by
``r_ψ(obs, action)`` (loaded at trace time, like demonstrations), so PPO trains on the
learned reward while ``episode_return`` still reports the true one.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct, traverse_util

from rlfoundry.errors import ConfigError

MODEL_FORMAT = "rlfoundry.reward_model"
MODEL_VERSION = 1


class RewardModel(nn.Module):
    """``r_ψ(obs, action)``: an MLP on the observation and the one-hot (or raw) action."""

    num_actions: int  # 0 for continuous actions
    hidden: tuple[int, ...] = (64, 64)

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        if self.num_actions:
            action = jax.nn.one_hot(action, self.num_actions)
        x = jnp.concatenate([obs.reshape(*obs.shape[:-1], -1), action], axis=-1)
        for h in self.hidden:
            x = nn.tanh(nn.Dense(h)(x))
        return nn.Dense(1)(x)[..., 0]


class Segments(struct.PyTreeNode):
    """``count`` segments of ``length`` steps: obs [B, L, ...], action [B, L, ...],
    reward [B, L] (true), mask [B, L] (1 up to and including the first episode end)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    mask: jax.Array

    def true_return(self) -> jax.Array:
        return (self.reward * self.mask).sum(-1)


def collect_segments(config: Any, key: jax.Array, count: int, length: int) -> Segments:
    """``count`` segments from a uniform-random policy in ``config``'s env stack (reward
    transforms removed): one rollout of ``length`` steps in each of ``count`` envs, which
    start from different points of their episodes after a warm-up."""
    from rlfoundry.algos.base import make_env_stack
    from rlfoundry.data.trajectories import plain_config

    stack = make_env_stack(plain_config(config), num_envs=count, update_stats=False)
    def random_action(key: jax.Array) -> jax.Array:
        if stack.discrete:
            return jax.random.randint(key, (count,), 0, stack.action_dim)
        low, high = jnp.asarray(stack.action_low), jnp.asarray(stack.action_high)
        return jax.random.uniform(key, (count, stack.action_dim), minval=low, maxval=high)

    def step(c: tuple[Any, Any], k: jax.Array) -> tuple[tuple[Any, Any], tuple[Any, ...]]:
        state, obs = c
        ka, ks = jax.random.split(k)
        action = random_action(ka)
        nobs, state, reward, term, trunc, _ = stack.env.step(ks, state, action, stack.params)
        return (state, nobs), (obs, action, reward, term | trunc)

    reset_key, warm_key, key = jax.random.split(key, 3)
    obs, state = stack.env.reset(reset_key, stack.params)
    # a warm-up of random steps puts the envs at different points of their episodes
    (state, obs), _ = jax.lax.scan(step, (state, obs), jax.random.split(warm_key, length))
    _, (o, a, r, done) = jax.lax.scan(step, (state, obs), jax.random.split(key, length))
    ended_before = jnp.cumsum(done, axis=0) - done  # episodes finished before step t
    mask = (ended_before == 0).astype(jnp.float32)
    swap = lambda x: jnp.swapaxes(x, 0, 1)
    return Segments(swap(o), swap(a), swap(r.astype(jnp.float32)), swap(mask))


def teacher_labels(segments_a: Segments, segments_b: Segments) -> jax.Array:
    """The scripted teacher: 1 if segment a has the larger true return, 0 if b, 0.5 tie."""
    ra, rb = segments_a.true_return(), segments_b.true_return()
    return jnp.where(ra > rb, 1.0, jnp.where(ra < rb, 0.0, 0.5))


def segment_sums(model: RewardModel, params: Any, seg: Segments) -> jax.Array:
    return (model.apply(params, seg.obs, seg.action) * seg.mask).sum(-1)


def bradley_terry_loss(model: RewardModel, params: Any, a: Segments, b: Segments,
                       labels: jax.Array) -> jax.Array:
    """Cross-entropy of the teacher's labels under the Bradley–Terry model."""
    logits = segment_sums(model, params, a) - segment_sums(model, params, b)
    return optax.sigmoid_binary_cross_entropy(logits, labels).mean()


def fit_reward_model(model: RewardModel, a: Segments, b: Segments, labels: jax.Array,
                     key: jax.Array, steps: int = 500, lr: float = 3e-3,
                     batch_size: int = 64) -> tuple[Any, jax.Array]:
    """Adam on the Bradley–Terry loss over minibatches of pairs; returns the parameters
    and the loss per step."""
    init_key, key = jax.random.split(key)
    params = model.init(init_key, a.obs[0, :1], a.action[0, :1])
    tx = optax.adam(lr)
    n = labels.shape[0]

    def step(c: tuple[Any, Any], k: jax.Array) -> tuple[tuple[Any, Any], jax.Array]:
        p, opt = c
        idx = jax.random.randint(k, (min(batch_size, n),), 0, n)
        take = lambda s: jax.tree.map(lambda x: x[idx], s)
        loss, grads = jax.value_and_grad(
            lambda q: bradley_terry_loss(model, q, take(a), take(b), labels[idx]))(p)
        updates, opt = tx.update(grads, opt, p)
        return (optax.apply_updates(p, updates), opt), loss

    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)),
                                       jax.random.split(key, steps))
    return params, losses


def preference_accuracy(model: RewardModel, params: Any, a: Segments, b: Segments,
                        labels: jax.Array) -> jax.Array:
    """Fraction of strict preferences the model predicts correctly."""
    pred = segment_sums(model, params, a) > segment_sums(model, params, b)
    strict = labels != 0.5
    return ((pred == (labels == 1.0)) & strict).sum() / jnp.maximum(strict.sum(), 1)


def learn_from_preferences(config: Any, key: jax.Array, pairs: int = 512, length: int = 25,
                           steps: int = 500, hidden: tuple[int, ...] = (64, 64)
                           ) -> tuple[RewardModel, Any, dict[str, float]]:
    """Collect ``2 * pairs`` random segments, label pairs with the scripted teacher and
    fit a :class:`RewardModel`; returns the model, its parameters and fit statistics."""
    from rlfoundry.algos.base import make_env_stack

    stack = make_env_stack(config, num_envs=1)
    model = RewardModel(stack.action_dim if stack.discrete else 0, hidden)
    seg_key, fit_key = jax.random.split(key)
    segs = jax.jit(collect_segments, static_argnums=(0, 2, 3))(config, seg_key, 2 * pairs,
                                                               length)
    a = jax.tree.map(lambda x: x[:pairs], segs)
    b = jax.tree.map(lambda x: x[pairs:], segs)
    labels = teacher_labels(a, b)
    params, losses = jax.jit(fit_reward_model, static_argnums=(0, 5))(
        model, a, b, labels, fit_key, steps)
    stats = {"final_loss": float(losses[-10:].mean()),
             "train_accuracy": float(preference_accuracy(model, params, a, b, labels)),
             "strict_pairs": int((labels != 0.5).sum())}
    return model, params, stats


# ------------------------------------------------------------------------ save / load


def save_reward_model(path: str | Path, model: RewardModel, params: Any, env: str,
                      obs_shape: tuple[int, ...]) -> Path:
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
    meta = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "env": env,
            "num_actions": model.num_actions, "hidden": list(model.hidden),
            "obs_shape": list(obs_shape)}
    np.savez(path, meta=np.array(json.dumps(meta)), **{f"w/{k}": v for k, v in flat.items()})
    return path


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> tuple[RewardModel, Any, dict[str, Any]]:
    where = f"reward model {path!r}"
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            flat = {k[2:]: np.asarray(f[k]) for k in f.files if k.startswith("w/")}
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise ConfigError(f"{where} is not a readable reward model ({type(err).__name__}).") \
            from None
    if meta.get("format") != MODEL_FORMAT or meta.get("version") != MODEL_VERSION:
        raise ConfigError(f"{where}: not a version-{MODEL_VERSION} {MODEL_FORMAT} file.")
    model = RewardModel(int(meta["num_actions"]), tuple(meta["hidden"]))
    params = traverse_util.unflatten_dict(flat, sep="/")
    return model, params, meta


def load_reward_model(path: str | Path, env: str | None = None
                      ) -> tuple[RewardModel, Any, dict[str, Any]]:
    """``(model, params, meta)`` of a saved reward model; checks it was fitted on ``env``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"reward model {str(p)!r} not found; fit one with "
                          "rlfoundry.rewards.preferences.learn_from_preferences.")
    model, params, meta = _load(str(p), p.stat().st_mtime)
    if env is not None and meta.get("env") != env:
        raise ConfigError(f"reward model {str(p)!r} was fitted on {meta.get('env')!r}, "
                          f"not {env!r}.")
    return model, params, meta


def learned_reward(path: str | Path, env: str | None = None) -> Any:
    """``fn(obs, action, next_obs, info) -> r_ψ(obs, action)`` for the env stack."""
    model, params, _ = load_reward_model(path, env)
    params = jax.tree.map(jnp.asarray, params)

    def fn(obs: jax.Array, action: jax.Array, next_obs: jax.Array, info: Any) -> jax.Array:
        return model.apply(params, obs, action)

    return fn
