"""Evaluating a saved policy: K episodes per seed in one compiled, vmapped loop.

The run's config rebuilds the environment stack with ``num_envs = K`` and frozen
statistics: if training normalised observations, the trained running mean/variance are
copied in (and the first observation re-normalised with them), so the policy sees inputs
scaled exactly as in training. Each environment plays one episode; a ``while_loop`` runs
until all have ended or the step cap is hit. Returns come from the episode-statistics
wrapper, so they are unscaled even when training scaled rewards. Nothing here knows which
learner made the state: actions come from ``Algorithm.act``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.errors import ConfigError, RunFolderError
from rlfoundry.experiment.runfolder import RunFolder
from rlfoundry.experiment.stats import mean_ci


@dataclasses.dataclass
class Trained:
    """A run's spec, learner and restored state (leading seed axis)."""

    spec: Any
    algo: Any
    state: Any
    update: int


def load_trained(folder: RunFolder, checkpoint: int | None = None) -> Trained:
    """Restore a run's checkpoint (default: the latest) with nothing but its folder."""
    from rlfoundry.engine import Trainer, get_algorithm
    from rlfoundry.experiment.checkpoint import Checkpointer, abstract_state

    spec = folder.read_spec()
    if not folder.checkpoint_dir.is_dir():
        raise RunFolderError(
            f"{folder.path} has no checkpoint yet (training stopped before the first one); "
            f"continue it with `rlfoundry train --resume {folder.path}`."
        )
    checkpoints = Checkpointer(folder.checkpoint_dir, keep=spec.keep_checkpoints)
    if checkpoints.latest() is None:
        raise RunFolderError(
            f"{folder.path} has no checkpoint yet (training stopped before the first one); "
            f"continue it with `rlfoundry train --resume {folder.path}`."
        )
    trainer = Trainer(spec.config, seeds=spec.seeds, chunk_updates=spec.chunk_updates,
                      batched=spec.batched)
    state, record = checkpoints.restore(abstract_state(trainer), checkpoint)
    checkpoints.close()
    return Trained(spec, get_algorithm(spec.algo), state, int(record["update"]))


def select_seeds(trained: Trained, seed_index: int | None) -> tuple[Any, list[int]]:
    """The state of one seed (``seed_index``) or of all, keeping the seed axis."""
    seeds = list(trained.spec.seeds)
    if seed_index is None:
        return trained.state, seeds
    if not -len(seeds) <= seed_index < len(seeds):
        raise ConfigError(
            f"--seed-index {seed_index} is out of range: the run has {len(seeds)} seed(s) "
            f"{seeds}; use 0..{len(seeds) - 1}."
        )
    i = seed_index % len(seeds)
    return jax.tree.map(lambda x: x[i:i + 1], trained.state), [seeds[i]]


def _normalizer(env: Any) -> Any:
    """The observation-normalisation wrapper in a wrapper chain, if any."""
    from rlfoundry.envs import NormalizeObservation

    while env is not None:
        if isinstance(env, NormalizeObservation):
            return env
        env = getattr(env, "env", None) if hasattr(env, "_env") else None
    return None


def freeze_observation_stats(stack: Any, env_state: Any, obs: Any, trained_state: Any,
                             reset_key: jax.Array) -> tuple[Any, Any]:
    """Copy the trained observation statistics into a freshly reset evaluation stack and
    re-normalise its first observation with them (no-op without normalisation)."""
    from rlfoundry.envs.wrappers import NormalizeObservationState

    is_norm = lambda x: isinstance(x, NormalizeObservationState)
    found = [x for x in jax.tree.leaves(trained_state, is_leaf=is_norm) if is_norm(x)]
    wrapper = _normalizer(stack.env)
    if not found or wrapper is None:
        return env_state, obs
    stats = found[0].obs_stats
    env_state = jax.tree.map(lambda x: x.replace(obs_stats=stats) if is_norm(x) else x,
                             env_state, is_leaf=is_norm)
    raw_obs, _ = wrapper.env.reset(reset_key, stack.params)  # same key: same raw obs
    return env_state, wrapper._normalize(raw_obs, stats)


def episode_cap(stack: Any, max_steps: int | None) -> int:
    if max_steps is not None:
        return int(max_steps)
    limit = getattr(stack.params, "max_steps_in_episode", None)
    return int(limit) + 1 if limit is not None else 10_000


def play(config: Any, algo: Any, num_envs: int, cap: int, deterministic: bool) -> Any:
    """A pure function ``(state_of_one_seed, key) -> (returns, lengths, finished)`` that
    plays one episode in each of ``num_envs`` environments."""
    from rlfoundry.algos.base import make_env_stack

    stack = make_env_stack(config, num_envs=num_envs, update_stats=False)

    def run(state: Any, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        reset_key, key = jax.random.split(key)
        obs, env_state = stack.env.reset(reset_key, stack.params)
        env_state, obs = freeze_observation_stats(stack, env_state, obs, state, reset_key)
        zeros = jnp.zeros((num_envs,))
        initial_memory, act = algo.make_policy(config, state, deterministic)

        def cond(c: tuple) -> jax.Array:
            return (c[-1] < cap) & ~jnp.all(c[4])

        def body(c: tuple) -> tuple:
            env_state, obs, memory, key, done, ret, length, t = c
            key, act_key, step_key = jax.random.split(key, 3)
            memory, action = act(memory, obs, act_key)
            obs, env_state, _, _, _, info = stack.env.step(step_key, env_state, action,
                                                           stack.params)
            ret = jnp.where(done, ret, info["episode_return"])
            length = jnp.where(done, length, info["episode_length"])
            return (env_state, obs, memory, key, done | info["episode_done"], ret, length,
                    t + 1)

        init = (env_state, obs, initial_memory(num_envs), key,
                jnp.zeros((num_envs,), bool), zeros, zeros, 0)
        out = jax.lax.while_loop(cond, body, init)
        return out[5], out[6], out[4]

    return run


@dataclasses.dataclass
class EvalResult:
    algo: str
    env: str
    seeds: list[int]
    update: int
    deterministic: bool
    max_steps: int
    returns: np.ndarray  # [seeds, episodes]
    lengths: np.ndarray
    finished: np.ndarray

    def summary(self) -> dict[str, Any]:
        m, sd, lo, hi = mean_ci(self.returns)
        return {
            "mean_return": m, "std_return": sd, "ci95": [lo, hi],
            "episodes": int(self.returns.size),
            "mean_length": float(self.lengths.mean()),
            "per_seed_mean_return": [float(r.mean()) for r in self.returns],
            "seeds": self.seeds, "checkpoint_update": self.update,
            "deterministic": self.deterministic, "unfinished": int((~self.finished).sum()),
            "algo": self.algo, "env": self.env,
        }


def evaluate(folder: RunFolder, episodes: int = 100, deterministic: bool = True, seed: int = 0,
             seed_index: int | None = None, checkpoint: int | None = None,
             max_steps: int | None = None) -> EvalResult:
    """Play ``episodes`` episodes with each selected seed's policy; one compiled call."""
    from rlfoundry.algos.base import make_env_stack

    trained = load_trained(folder, checkpoint)
    state, seeds = select_seeds(trained, seed_index)
    config = trained.spec.config
    cap = episode_cap(make_env_stack(config, num_envs=1, update_stats=False), max_steps)
    run = play(config, trained.algo, episodes, cap, deterministic)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(seeds))
    returns, lengths, finished = jax.device_get(jax.jit(jax.vmap(run))(state, keys))
    return EvalResult(trained.spec.algo, getattr(config, "env", "?"), seeds, trained.update,
                      deterministic, cap, np.asarray(returns, np.float64),
                      np.asarray(lengths, np.float64), np.asarray(finished, bool))
