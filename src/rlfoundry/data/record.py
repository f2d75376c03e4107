"""``rlfoundry record``: trajectories of a trained run's policy or of a scripted expert."""

from __future__ import annotations

from pathlib import Path

import jax

from rlfoundry.data.experts import EXPERTS
from rlfoundry.data.trajectories import Trajectories, record, save
from rlfoundry.errors import ConfigError


def _cap(config: object, max_steps: int | None) -> int:
    from rlfoundry.algos.base import make_env_stack
    from rlfoundry.experiment.evaluate import episode_cap

    return episode_cap(make_env_stack(config, num_envs=1, update_stats=False), max_steps)


def record_expert(expert: str, env: str, episodes: int, out: str | Path, seed: int = 0,
                  max_steps: int | None = None) -> tuple[Path, Trajectories]:
    """Record ``episodes`` episodes of a scripted expert (see :mod:`rlfoundry.data.experts`)."""
    from rlfoundry.algos.ppo import PPOConfig
    from rlfoundry.envs import env_spec, make

    env_spec(env)
    if expert not in EXPERTS:
        raise ConfigError(f"unknown expert {expert!r}; choose from {', '.join(EXPERTS)}.")
    if not env.startswith("Maze"):
        raise ConfigError(f"the {expert} expert plays Maze environments, not {env!r}.")
    config = PPOConfig(env=env)
    _, params = make(env)
    data = record(config, EXPERTS[expert](params), episodes, jax.random.PRNGKey(seed),
                  _cap(config, max_steps), source=f"expert:{expert}")
    return save(out, data), data


def record_run(run: str | Path, episodes: int, out: str | Path, seed: int = 0,
               seed_index: int = 0, deterministic: bool = True,
               max_steps: int | None = None) -> tuple[Path, Trajectories]:
    """Record ``episodes`` episodes of one seed's saved policy in run folder ``run``."""
    from rlfoundry.experiment.evaluate import load_trained, select_seeds
    from rlfoundry.experiment.runfolder import RunFolder

    folder = RunFolder.open(run)
    trained = load_trained(folder)
    config = trained.spec.config
    if getattr(config, "normalize_observations", False):
        raise ConfigError(f"{folder.path} normalises observations; recording such runs is not "
                          "supported (their observations depend on running statistics).")
    if getattr(config, "per_env_levels", False):
        raise ConfigError(f"{folder.path} trained on a curriculum of levels; record from a "
                          "run on one environment.")
    state, seeds = select_seeds(trained, seed_index)
    one = jax.tree.map(lambda x: x[0], state)
    algo = trained.algo

    def policy(obs: jax.Array, env_state: object, key: jax.Array) -> jax.Array:
        return algo.act(config, one, obs, key, deterministic)

    data = record(config, policy, episodes, jax.random.PRNGKey(seed), _cap(config, max_steps),
                  source=f"run:{folder.path}:seed{seeds[0]}:update{trained.update}")
    return save(out, data), data
