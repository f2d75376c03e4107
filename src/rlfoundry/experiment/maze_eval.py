"""Held-out evaluation on mazes: solve rate and return per maze, with CIs across seeds.

``rlfoundry eval runs/m --mazes heldout|FILE|FOLDER`` plays ``episodes`` episodes on every
maze with every seed's policy in one compiled program (mazes x episodes environments, one
level each) and reports, per maze, the fraction of episodes that reached the goal.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.curricula.observe import play_episodes
from rlfoundry.envs import EpisodeStatistics, VectorEnv
from rlfoundry.envs.maze import Maze
from rlfoundry.envs.maze_heldout import load_mazes, stack_params
from rlfoundry.errors import ConfigError
from rlfoundry.experiment.evaluate import load_trained
from rlfoundry.experiment.runfolder import RunFolder
from rlfoundry.experiment.stats import mean_ci


def evaluate_mazes(
    folder: RunFolder, mazes: str, episodes: int = 10, deterministic: bool = False,
    seed: int = 0, checkpoint: int | None = None,
) -> dict[str, Any]:
    """Solve rate and mean return per maze (mean over seeds with a 95% CI)."""
    trained = load_trained(folder, checkpoint)
    config = trained.spec.config
    if getattr(config, "env", None) != "Maze":
        raise ConfigError(
            f"--mazes evaluates maze policies, but {folder.path} trained on {config.env!r}."
        )
    return solve_rates(config, trained.algo, trained.state, list(trained.spec.seeds), mazes,
                       episodes, deterministic, seed)


def rate_ci(rates: np.ndarray) -> tuple[float, float, float, float]:
    """:func:`mean_ci` of per-seed rates, the interval clipped to [0, 1] (a t-interval over
    a few seeds can leave the range a rate lives in)."""
    m, sd, lo, hi = mean_ci(rates)
    return m, sd, max(lo, 0.0), min(hi, 1.0)


def solve_rates(
    config: Any, algo: Any, state: Any, seeds: list[int], mazes: str, episodes: int = 10,
    deterministic: bool = False, seed: int = 0,
) -> dict[str, Any]:
    """:func:`evaluate_mazes` for a trained state in memory (leading axis = seeds)."""
    levels = load_mazes(mazes)
    names = list(levels)
    params = stack_params(levels)
    n = len(names) * episodes
    params = jax.tree.map(lambda x: jnp.repeat(x, episodes, axis=0), params)
    env = VectorEnv(EpisodeStatistics(Maze()), n, batched_params=True)
    cap = int(np.max(np.asarray(params.max_steps_in_episode))) + 1

    def run(state: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        policy = algo.make_policy(config, state, deterministic)  # keeps an LSTM's memory
        return play_episodes(env, params, policy, key, cap)

    keys = jax.random.split(jax.random.PRNGKey(seed), len(seeds))
    returns, _ = jax.device_get(jax.jit(jax.vmap(run))(state, keys))
    returns = np.asarray(returns, np.float64).reshape(len(seeds), len(names), episodes)
    solved = (returns > 0).mean(-1)  # [seeds, mazes]: the goal pays > 0, nothing else does
    per_maze = {}
    for i, name in enumerate(names):
        m, _, lo, hi = rate_ci(solved[:, i])
        per_maze[name] = {"solve_rate": m, "ci95": [lo, hi],
                          "mean_return": float(returns[:, i].mean())}
    mean, _, lo, hi = rate_ci(solved.mean(1))
    return {
        "solve_rate": mean,
        "ci95": [lo, hi],
        "per_maze": {k: v["solve_rate"] for k, v in per_maze.items()},
        "details": per_maze,
        "episodes_per_maze": episodes,
        "seeds": seeds,
        "deterministic": deterministic,
    }
