"""`rlfoundry eval --mazes`: solve rates per maze from a maze run's saved policy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlfoundry.cli import main


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("maze") / "m"
    code = main(["train", "--env", "Maze", "--curriculum", "dr", "--total-steps", "1024",
                 "--num-envs", "4", "--num-steps", "64", "--set", "num_minibatches=2",
                 "--set", "buffer_size=4", "--run-dir", str(run), "--no-progress"])
    assert code == 0
    return run


def test_solve_rate_per_maze_file(maze_run, tmp_path, capsys):
    mazes = tmp_path / "mazes"
    mazes.mkdir()
    (mazes / "easy.txt").write_text(">G.\n...\n...\n")  # goal one step ahead
    (mazes / "sealed.txt").write_text(">.#\n.##\n##G\n")  # goal walled in: unsolvable
    capsys.readouterr()
    code = main(["eval", str(maze_run), "--mazes", str(mazes), "--episodes", "16",
                 "--stochastic", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["per_maze"]["sealed"] == 0.0
    assert out["per_maze"]["easy"] > 0.9  # a random policy walks forward within 250 steps
    assert out["solve_rate"] == pytest.approx(out["per_maze"]["easy"] / 2)


def test_heldout_set_and_bad_paths(maze_run, capsys):
    assert main(["eval", str(maze_run), "--mazes", "heldout", "--episodes", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["per_maze"]) == 13 and "SixteenRooms" in out["per_maze"]
    assert main(["eval", str(maze_run), "--mazes", "no/such/place"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.strip().splitlines()) == 1


def test_rate_intervals_stay_within_zero_and_one():
    from rlfoundry.experiment.maze_eval import rate_ci

    m, _, lo, hi = rate_ci(np.array([0.0, 0.1, 0.9]))
    assert 0.0 <= lo <= m <= hi <= 1.0 and lo == 0.0 and hi == 1.0
