"""Level spaces: how to generate, mutate and describe the levels of an environment.

A level is an environment's params pytree. A :class:`LevelSpace` says how to draw a random
one (domain randomisation, PLR's new levels), how to edit one (ACCEL's mutations) and what
to log about one (its complexity). Environments join with :func:`register_level_space`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from rlfoundry.errors import ConfigError, suggest


@dataclass(frozen=True)
class LevelSpace:
    """``generate(key, default_params) -> params``; ``mutate(key, params, num_edits) ->
    params`` (keeps levels valid); ``complexity(params) -> {name: scalar}`` for logging."""

    generate: Callable[[jax.Array, Any], Any]
    mutate: Callable[[jax.Array, Any, int], Any]
    complexity: Callable[[Any], dict[str, jax.Array]] = lambda params: {}
    description: str = ""


_SPACES: dict[str, LevelSpace] = {}


def register_level_space(env_name: str, space: LevelSpace) -> None:
    _SPACES[env_name] = space


def level_space(env_name: str) -> LevelSpace:
    if env_name not in _SPACES:
        raise ConfigError(
            f"environment {env_name!r} has no level space, so curricula cannot choose its "
            f"levels.{suggest(env_name, _SPACES)} Environments with levels: "
            f"{', '.join(sorted(_SPACES))}."
        )
    return _SPACES[env_name]


def level_space_names() -> list[str]:
    return sorted(_SPACES)


# CartPole as a level-parameterised task: the pole's length and mass and the push force
# vary, so domain randomisation and PLR run on a classic-control task too.
_CARTPOLE_RANGES = {"length": (0.2, 1.2), "masspole": (0.05, 0.5), "force_mag": (5.0, 15.0)}


def _cartpole_with(params: Any, values: dict[str, jax.Array]) -> Any:
    params = params.replace(**values)
    return params.replace(
        total_mass=params.masscart + params.masspole,
        polemass_length=params.masspole * params.length,
    )


def _cartpole_generate(key: jax.Array, params: Any) -> Any:
    keys = jax.random.split(key, len(_CARTPOLE_RANGES))
    values = {
        name: jax.random.uniform(k, minval=lo, maxval=hi)
        for k, (name, (lo, hi)) in zip(keys, _CARTPOLE_RANGES.items(), strict=True)
    }
    return _cartpole_with(params, values)


def _cartpole_mutate(key: jax.Array, params: Any, num_edits: int) -> Any:
    keys = jax.random.split(key, len(_CARTPOLE_RANGES))
    values = {}
    for k, (name, (lo, hi)) in zip(keys, _CARTPOLE_RANGES.items(), strict=True):
        step = 0.05 * (hi - lo) * num_edits
        values[name] = jnp.clip(getattr(params, name) + jax.random.uniform(k, minval=-step,
                                                                            maxval=step), lo, hi)
    return _cartpole_with(params, values)


register_level_space(
    "CartPole-v1",
    LevelSpace(
        _cartpole_generate,
        _cartpole_mutate,
        lambda p: {"pole_length": jnp.asarray(p.length), "pole_mass": jnp.asarray(p.masspole)},
        "pole length, pole mass and push force",
    ),
)


def _maze_space() -> LevelSpace:
    """The UED maze: new levels have 25 random walls (the PLR/ACCEL setting); ACCEL edits
    flip walls or move the goal/agent; complexity = wall count, shortest path length
    (-1 when unsolvable) and whether the level is solvable."""
    from rlfoundry.envs.maze_levels import (
        mutate_level,
        num_walls,
        random_walls_level,
        shortest_path_length,
    )

    def _maze_complexity(p: Any) -> dict[str, jax.Array]:
        path = shortest_path_length(p.level)
        return {
            "walls": num_walls(p.level).astype(jnp.float32),
            "shortest_path": path.astype(jnp.float32),
            "solvable": (path >= 0).astype(jnp.float32),
        }

    return LevelSpace(
        generate=lambda key, params: params.replace(level=random_walls_level(key, 25)),
        mutate=lambda key, params, n: params.replace(level=mutate_level(key, params.level, n)),
        complexity=_maze_complexity,
        description="13x13 maze: walls, agent and goal",
    )


register_level_space("Maze", _maze_space())


def _gridworld_space() -> LevelSpace:
    """LPG's random gridworld distribution (10x10 padded grid); edits flip walls and move
    the agent or an object; complexity = grid size, objects and walls inside the grid."""
    from rlfoundry.envs.gridworld import mutate_level, random_level

    def complexity(p: Any) -> dict[str, jax.Array]:
        real = (~p.walls).any(0)
        return {
            "grid_size": real.sum().astype(jnp.float32),
            "objects": p.obj_present.sum().astype(jnp.float32),
            "episode_length": p.max_steps_in_episode.astype(jnp.float32),
        }

    return LevelSpace(
        generate=lambda key, params: random_level(key, params.walls.shape[-1]),
        mutate=mutate_level,
        complexity=complexity,
        description="LPG random gridworld: walls, objects and their rewards/probabilities",
    )


register_level_space("Gridworld-random-v0", _gridworld_space())
