"""Offline trajectories: record, save and load an open, versioned ``.npz`` dataset.

A dataset is flat per-step arrays, episodes one after another:

=============  ==============  ============================================
``obs``        float32 [N, *O]  the observation the action was taken from
``actions``    int32 [N] or float32 [N, A]
``rewards``    float32 [N]      the environment's own reward
``terminated`` bool [N]         the episode ended in a terminal state
``truncated``  bool [N]         the episode was cut (time limit / record cap)
``episode_ids`` int32 [N]       0, 0, ..., 1, 1, ... (non-decreasing)
=============  ==============  ============================================

plus ``meta``, a JSON string: ``format`` (``rlfoundry.trajectories``), ``version``,
``env``, ``obs_shape``, ``action_kind`` (discrete/continuous), ``num_actions`` or
``action_dim``, ``source`` and ``num_episodes``. Any numpy (or other npz reader) opens it;
:func:`load` checks all of the above and raises a one-line :class:`DatasetError` naming
the first problem. Observations are what the learner's network sees (flattened).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.errors import ConfigError

FORMAT = "rlfoundry.trajectories"
VERSION = 1
ARRAYS = ("obs", "actions", "rewards", "terminated", "truncated", "episode_ids")


class DatasetError(ConfigError):
    """A trajectory file is missing, malformed or does not fit the environment."""


@dataclasses.dataclass(frozen=True)
class Trajectories:
    """A loaded (validated) dataset; arrays as in the module docstring."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_ids: np.ndarray
    meta: dict[str, Any]

    @property
    def num_steps(self) -> int:
        return int(self.obs.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(np.unique(self.episode_ids).size)

    def episode_returns(self) -> np.ndarray:
        ids = np.unique(self.episode_ids)
        return np.array([self.rewards[self.episode_ids == i].sum() for i in ids])

    def select_episodes(self, count: int) -> Trajectories:
        """The first ``count`` episodes (e.g. 2 expert trajectories of a bigger file)."""
        keep_ids = np.unique(self.episode_ids)[:count]
        mask = np.isin(self.episode_ids, keep_ids)
        arrays = {k: getattr(self, k)[mask] for k in ARRAYS}
        return Trajectories(**arrays, meta={**self.meta, "num_episodes": len(keep_ids)})


def save(path: str | Path, data: Trajectories) -> Path:
    """Write ``data`` as a compressed npz (``.npz`` is appended if missing)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**data.meta, "format": FORMAT, "version": VERSION,
            "num_episodes": data.num_episodes}
    arrays = {k: np.asarray(getattr(data, k)) for k in ARRAYS}
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load(path: str | Path, env: str | None = None, obs_shape: tuple[int, ...] | None = None,
         action_kind: str | None = None, num_actions: int | None = None) -> Trajectories:
    """Read and validate a dataset; with ``env``/``obs_shape``/``action_kind``/
    ``num_actions`` it must also fit that environment."""
    p = Path(path)
    where = f"dataset {str(p)!r}"
    if not p.is_file():
        raise DatasetError(f"{where} not found; record one with `rlfoundry record`.")
    try:
        with np.load(p, allow_pickle=False) as f:
            contents = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DatasetError(f"{where} is not a readable .npz file ({type(err).__name__}).") \
            from None
    if "meta" not in contents:
        raise DatasetError(f"{where} has no 'meta' entry; it was not written by rlfoundry "
                           "(record one with `rlfoundry record`).")
    try:
        meta = json.loads(str(contents["meta"]))
    except (ValueError, TypeError):
        raise DatasetError(f"{where}: 'meta' is not valid JSON.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DatasetError(f"{where}: meta.format must be {FORMAT!r}.")
    if meta.get("version") != VERSION:
        raise DatasetError(f"{where} has schema version {meta.get('version')!r}; this "
                           f"rlfoundry reads version {VERSION}.")
    missing = [k for k in ARRAYS if k not in contents]
    if missing:
        raise DatasetError(f"{where} lacks the array {missing[0]!r}; expected {', '.join(ARRAYS)}.")
    arrays = {k: contents[k] for k in ARRAYS}
    n = arrays["obs"].shape[0] if arrays["obs"].ndim else -1
    if n <= 0:
        raise DatasetError(f"{where}: 'obs' must have a leading step axis with at least one step.")
    for k, v in arrays.items():
        if v.ndim == 0 or v.shape[0] != n:
            raise DatasetError(f"{where}: {k!r} has {v.shape[0] if v.ndim else 0} steps but "
                               f"'obs' has {n}; every array needs one row per step.")
    for k in ("rewards", "terminated", "truncated", "episode_ids"):
        if arrays[k].ndim != 1:
            raise DatasetError(f"{where}: {k!r} must be 1-D [steps], got shape "
                               f"{arrays[k].shape}.")
    kinds = {"obs": "fc", "rewards": "fc", "terminated": "b", "truncated": "b",
             "episode_ids": "iu", "actions": "iufc"}
    for k, allowed in kinds.items():
        if arrays[k].dtype.kind not in allowed:
            raise DatasetError(f"{where}: {k!r} has dtype {arrays[k].dtype}, expected "
                               f"{'bool' if allowed == 'b' else 'numbers'}.")
    if not np.all(np.isfinite(arrays["obs"])) or not np.all(np.isfinite(arrays["rewards"])):
        raise DatasetError(f"{where}: 'obs' and 'rewards' must be finite.")
    if np.any(np.diff(arrays["episode_ids"]) < 0):
        raise DatasetError(f"{where}: 'episode_ids' must be non-decreasing (episodes one "
                           "after another).")
    ends = np.r_[np.diff(arrays["episode_ids"]) != 0, True]
    done = arrays["terminated"] | arrays["truncated"]
    if not np.all(done[ends]):
        raise DatasetError(f"{where}: an episode's last step must be terminated or truncated.")
    kind = meta.get("action_kind")
    if kind not in ("discrete", "continuous"):
        raise DatasetError(f"{where}: meta.action_kind must be 'discrete' or 'continuous'.")
    if kind == "discrete":
        if arrays["actions"].ndim != 1 or arrays["actions"].dtype.kind not in "iu":
            raise DatasetError(f"{where}: discrete 'actions' must be integers [steps].")
        na = meta.get("num_actions")
        if not isinstance(na, int) or arrays["actions"].min() < 0 or \
                arrays["actions"].max() >= na:
            raise DatasetError(f"{where}: actions must lie in 0..num_actions-1 "
                               f"(meta.num_actions={na!r}).")
    elif arrays["actions"].ndim != 2:
        raise DatasetError(f"{where}: continuous 'actions' must be [steps, action_dim].")
    data = Trajectories(
        obs=arrays["obs"].astype(np.float32),
        actions=arrays["actions"].astype(np.int32 if kind == "discrete" else np.float32),
        rewards=arrays["rewards"].astype(np.float32),
        terminated=arrays["terminated"], truncated=arrays["truncated"],
        episode_ids=arrays["episode_ids"].astype(np.int32), meta=meta,
    )
    _check_fits(data, where, env, obs_shape, action_kind, num_actions)
    return data


def _check_fits(data: Trajectories, where: str, env: str | None,
                obs_shape: tuple[int, ...] | None, action_kind: str | None,
                num_actions: int | None) -> None:
    if env is not None and data.meta.get("env") != env:
        raise DatasetError(f"{where} was recorded on {data.meta.get('env')!r}, not {env!r}; "
                           "record one on this environment.")
    if obs_shape is not None and tuple(data.obs.shape[1:]) != tuple(obs_shape):
        raise DatasetError(f"{where} has observations of shape {tuple(data.obs.shape[1:])} "
                           f"but the learner sees {tuple(obs_shape)}.")
    if action_kind is not None and data.meta["action_kind"] != action_kind:
        raise DatasetError(f"{where} has {data.meta['action_kind']} actions but the "
                           f"environment's are {action_kind}.")
    if num_actions is not None and data.meta["action_kind"] == "discrete" and \
            data.meta.get("num_actions") != num_actions:
        raise DatasetError(f"{where} has {data.meta.get('num_actions')} actions but the "
                           f"environment has {num_actions}.")


# ------------------------------------------------------------------------- recording

#: ``policy(obs [E, ...], env_state, key) -> actions [E, ...]``
Policy = Callable[[jax.Array, Any, jax.Array], jax.Array]


def record(config: Any, policy: Policy, episodes: int, key: jax.Array, cap: int,
           source: str) -> Trajectories:
    """Play one episode in each of ``episodes`` environments of ``config``'s stack (reward
    transforms and imitation removed, so rewards are the env's own) with ``policy`` and
    keep every step up to each episode's end (an episode still running at ``cap`` steps is
    marked truncated)."""
    from rlfoundry.algos.base import make_env_stack

    plain = plain_config(config)
    stack = make_env_stack(plain, num_envs=episodes, update_stats=False)

    def run(key: jax.Array) -> tuple[Any, ...]:
        reset_key, key = jax.random.split(key)
        obs, env_state = stack.env.reset(reset_key, stack.params)

        def step(c: tuple, k: jax.Array) -> tuple[tuple, tuple]:
            env_state, obs, alive = c
            ka, ks = jax.random.split(k)
            action = policy(obs, env_state, ka)
            nobs, env_state, reward, term, trunc, info = stack.env.step(
                ks, env_state, action, stack.params
            )
            out = (obs, action, reward, term, trunc, alive)
            return (env_state, nobs, alive & ~(term | trunc)), out

        init = (env_state, obs, jnp.ones((episodes,), bool))
        return jax.lax.scan(step, init, jax.random.split(key, cap))[1]

    obs, act, rew, term, trunc, alive = jax.device_get(jax.jit(run)(key))
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ARRAYS}
    for e in range(episodes):
        keep = np.asarray(alive[:, e])
        t_end = np.asarray(trunc[keep, e]).copy()
        if t_end.size and not (term[keep, e][-1] or t_end[-1]):
            t_end[-1] = True  # cut by the record cap
        rows["obs"].append(np.asarray(obs[keep, e]))
        rows["actions"].append(np.asarray(act[keep, e]))
        rows["rewards"].append(np.asarray(rew[keep, e], np.float32))
        rows["terminated"].append(np.asarray(term[keep, e], bool))
        rows["truncated"].append(t_end.astype(bool))
        rows["episode_ids"].append(np.full(int(keep.sum()), e, np.int32))
    arrays = {k: np.concatenate(v) for k, v in rows.items()}
    meta: dict[str, Any] = {"env": plain.env, "obs_shape": list(stack.obs_shape),
                            "action_kind": "discrete" if stack.discrete else "continuous",
                            "source": source}
    if stack.discrete:
        meta["num_actions"] = stack.action_dim
    else:
        meta["action_dim"] = stack.action_dim
    return Trajectories(**arrays, meta=meta)


def plain_config(config: Any) -> Any:
    """``config`` without reward transforms or imitation (recording wants raw rewards)."""
    from rlfoundry.data.imitation import ImitationConfig
    from rlfoundry.rewards.spec import RewardConfig

    changes = {}
    if hasattr(config, "reward"):
        changes["reward"] = RewardConfig()
    if hasattr(config, "imitation"):
        changes["imitation"] = ImitationConfig()
    return config.replace(**changes) if changes else config
