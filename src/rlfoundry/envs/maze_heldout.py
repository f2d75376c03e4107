'''The held-out mazes of the UED literature, user maze files, and batching for evaluation.

The 13x13 layouts SixteenRooms, SixteenRooms2, Labyrinth, LabyrinthFlipped, Labyrinth2,
StandardMaze, StandardMaze2 and StandardMaze3 are transcribed from the public layouts in
JaxUED (``level.py``) and minimax (``maze_ood.py``), including the agent's starting
direction as JaxUED fixes it. The others are procedurally generated per episode in those
codebases; here each is ONE fixed representative layout, frozen as text so results never
depend on a generator or a PRNG implementation:

* SmallCorridor (13x13) and LargeCorridor (19x19): minimax's corridor walls and agent
  cell, with the goal fixed at one of its candidate cells (the far end, (10, 7) and
  (16, 10)); minimax draws the goal among 10/16 candidates and the direction at random.
* FourRooms (17x17, the minigrid interior): the two wall lines with one fixed door per
  half-line, agent and goal in diagonally opposite rooms (random in minimax).
* SimpleCrossing (9x9, minigrid's SimpleCrossingS11N5 interior): 5 wall lines, one
  opening each along a monotone path from the top-left agent to the bottom-right goal.
* PerfectMaze (13x13): drawn once by ``perfect_maze_level(jax.random.PRNGKey(0))``.

Every maze uses T = 250 (the training horizon) unless ``stack_params`` is told otherwise.
Mazes larger than 13x13 are kept at their published size: the view is local, so a 13x13
agent plays them unchanged, and :func:`stack_levels` pads smaller ones with walls.
'''

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp

from rlfoundry.envs.maze import Level, MazeParams, pad_level
from rlfoundry.envs.maze_levels import parse_level, read_level
from rlfoundry.errors import ConfigError

HELDOUT_MAZES: dict[str, str] = {
    "SixteenRooms": """
...#..#..#...
.>.......#...
...#..#......
#.###.##.###.
...#.........
......#..#...
##.#.##.###.#
...#.....#...
...#..#......
.####.##.#.##
...#..#..#...
......#....G.
...#.....#...
""",
    "SixteenRooms2": """
...#.....#...
.>....#..#...
...#..#..#...
####.##.###.#
...#..#......
......#..#...
#.#####.#####
...#..#..#...
...#.........
##.##.##.####
...#..#..#...
......#....G.
...#..#..#...
""",
    "Labyrinth": """
.............
.###########.
.#.........#.
.#.#######.#.
.#.#.....#.#.
.#.#.###.#.#.
.#.#.#G#.#.#.
.#.#.#.#.#.#.
.#...#...#.#.
.#########.#.
.....#.....#.
####.#.#####.
>....#.......
""",
    "LabyrinthFlipped": """
.............
.###########.
.#.........#.
.#.#######.#.
.#.#.....#.#.
.#.#.###.#.#.
.#.#.#G#.#.#.
.#.#.#.#.#.#.
.#.#...#...#.
.#.#########.
.#.....#.....
.#####.#.####
.......#....<
""",
    "Labyrinth2": """
>#...........
.#.#########.
.#.#.......#.
.#.#.#####.#.
.#.#.#...#.#.
...#.#.#.#.#.
####.#G#.#.#.
...#.###.#.#.
.#.#.....#.#.
.#.#######.#.
.#.........#.
.###########.
.............
""",
    "StandardMaze": """
.....#>...#..
.###.####.##.
.#...........
.########.###
........#....
######.#####.
....#..#.....
.##...##.####
..#.#..#...#.
#.#.##.###.#.
#.#..#...#...
#.##.###.###.
...#..G#.#...
""",
    "StandardMaze2": """
...#.#....#..
.#.#.####...#
.#........#..
.########.###
...#..#.#.#.G
##.#.##.#.#..
>#.#....#.##.
.#.##.###..#.
.#..#..###.#.
.##.##.#.#.#.
.#...#.#.#.#.
.#.#.#.#.#.#.
...#...#.....
""",
    "StandardMaze3": """
...>#.#......
.####.#.####.
.#....#.#....
...####.#.#.#
##.#....#.#..
...#.##.#.##.
.#.#.#..#..#G
.#.#.#.###.##
.#...#.#.#...
.###.#.#.###.
.#...#.#...#.
.#.###.#.#.#.
.#...#...#...
""",
    "SmallCorridor": """
.............
.#.#.#.#.#.#.
.#.#.#.#.#.#.
.#.#.#.#.#.#.
.#.#.#.#.#.#.
.#.#.#.#.#.#.
>###########.
.#.#.#.#.#G#.
.#.#.#.#.#.#.
.#.#.#.#.#.#.
.#.#.#.#.#.#.
.#.#.#.#.#.#.
.............
""",
    "LargeCorridor": """
...................
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
>#################.
.#.#.#.#.#.#.#.#G#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
.#.#.#.#.#.#.#.#.#.
...................
""",
    "FourRooms": """
........#........
........#........
..>.....#........
........#........
........#........
.................
........#........
........#........
###.########.####
........#........
........#........
........#........
........#........
.................
........#.....G..
........#........
........#........
""",
    "SimpleCrossing": """
>....#.#.
.#...#.#.
.#...#.#.
##.######
.#.......
.#...#.#.
.#...#.#.
########.
.#...#.#G
""",
    "PerfectMaze": """
.#.........#.
.#.#######.#.
.#...#.....#.
.#.###.###.#.
...#.#.#.#...
.###.###.#.#.
.#.....G.#.#.
.#####.#.####
.#...#.#.....
>###.#.#.###.
.#.....#.#...
.#.#.###.#.#.
...#...#.#.#.
""",
}


def heldout_levels() -> dict[str, Level]:
    """Every held-out maze by name, in the order of the literature's tables."""
    return {name: parse_level(text, source=name) for name, text in HELDOUT_MAZES.items()}


def load_mazes(path: str | Path) -> dict[str, Level]:
    """Mazes to evaluate on, named by file stem: one ``.txt`` file, or every ``*.txt`` in
    a folder (sorted). ``"heldout"`` (when no such file exists) means the built-in set."""
    p = Path(path)
    if not p.exists():
        if str(path) == "heldout":
            return heldout_levels()
        raise ConfigError(
            f"maze path {str(path)!r} does not exist; give a maze .txt file, a folder of "
            "them, or 'heldout'."
        )
    if p.is_dir():
        files = sorted(p.glob("*.txt"))
        if not files:
            raise ConfigError(f"maze folder {str(p)!r} holds no *.txt maze files.")
        return {f.stem: read_level(f) for f in files}
    return {p.stem: read_level(p)}


def stack_levels(levels: Mapping[str, Level] | Sequence[Level]) -> Level:
    """One batched level (leading axis = maze) from levels of any sizes, padding the
    smaller ones with walls (which plays identically) to the largest height and width."""
    items = list(levels.values()) if isinstance(levels, Mapping) else list(levels)
    if not items:
        raise ConfigError("no levels to stack.")
    height = max(lv.walls.shape[-2] for lv in items)
    width = max(lv.walls.shape[-1] for lv in items)
    padded = [pad_level(lv, height, width) for lv in items]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *padded)


def stack_params(
    levels: Mapping[str, Level] | Sequence[Level], max_steps_in_episode: int = 250
) -> MazeParams:
    """Batched :class:`MazeParams` for ``VectorEnv(Maze(), len(levels), batched_params=True)``."""
    stacked = stack_levels(levels)
    n = stacked.agent_dir.shape[0]
    return MazeParams(
        level=stacked, max_steps_in_episode=jnp.full((n,), max_steps_in_episode, jnp.int32)
    )
