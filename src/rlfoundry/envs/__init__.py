"""Environments: the contract, the registry, wrappers and rlfoundry's own environments."""

from rlfoundry.envs.core import Environment, Wrapper, is_discrete, spaces, unwrap
from rlfoundry.envs.gridworld import NAMED_LEVELS, GridLevel, Gridworld
from rlfoundry.envs.gridworld import named_gridworld as _named_gridworld
from rlfoundry.envs.gridworld import random_gridworld as _random_gridworld
from rlfoundry.envs.gymnasium_adapter import GymnasiumEnv
from rlfoundry.envs.maze import Level, Maze, MazeParams
from rlfoundry.envs.probes import PROBES
from rlfoundry.envs.registry import env_names, env_spec, make, register
from rlfoundry.envs.wrappers import (
    ClipAction,
    EpisodeStatistics,
    FlattenObservation,
    NormalizeObservation,
    ScaleReward,
    VectorEnv,
)

for _name, _cls in PROBES.items():
    register(_name, _cls, family="probe")
register("Maze", Maze, family="maze")
for _name in NAMED_LEVELS:
    register(f"Gridworld-{_name}-v0", _named_gridworld(_name), family="gridworld")
register("Gridworld-random-v0", _random_gridworld, family="gridworld")


def _heldout_maze(name: str, **kwargs: object) -> Maze:
    """One held-out maze as a fixed-level environment (a sparse-reward task on its own)."""
    from rlfoundry.envs.maze_heldout import heldout_levels

    return Maze(default_level=heldout_levels()[name], **kwargs)


def _register_heldout() -> None:
    """Two held-out mazes as sparse-reward tasks of their own (used by the imitation
    demonstrations); only two, as every registered environment joins the env test sweep."""
    import functools

    for maze in ("SixteenRooms", "Labyrinth"):
        register(f"Maze-{maze}", functools.partial(_heldout_maze, maze), family="maze")


_register_heldout()

__all__ = [
    "ClipAction",
    "Environment",
    "EpisodeStatistics",
    "FlattenObservation",
    "GridLevel",
    "Gridworld",
    "GymnasiumEnv",
    "Level",
    "Maze",
    "MazeParams",
    "NormalizeObservation",
    "ScaleReward",
    "VectorEnv",
    "Wrapper",
    "env_names",
    "env_spec",
    "is_discrete",
    "make",
    "register",
    "spaces",
    "unwrap",
]
