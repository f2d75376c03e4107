"""Environments: the contract, the registry, wrappers and rlfoundry's own environments."""

from rlfoundry.envs.core import Environment, Wrapper, is_discrete, spaces, unwrap
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

__all__ = [
    "ClipAction",
    "Environment",
    "EpisodeStatistics",
    "FlattenObservation",
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
