"""End-to-end tests of the ``rlfoundry`` command on tiny budgets.

Commands run in-process through ``main([...])`` (one JAX process, so compiled programs are
shared); the kill/Ctrl-C tests, which need real signals, are in test_experiment_resume.py.
Every run uses the same tiny settings, so the chunk program compiles once (and is kept in
a persistent compilation cache between test sessions).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("RLFOUNDRY_COMPILE_CACHE",
                      str(Path(tempfile.gettempdir()) / "rlfoundry-test-xla-cache"))

from rlfoundry.cli import main  # noqa: E402

# 2048 steps = 32 updates of 4 envs x 16 steps, in chunks of 2 updates (the same program as
# test_experiment_resume.py's, so a whole test session compiles it once).
TINY = ["--env", "CartPole-v1", "--total-steps", "2048", "--num-envs", "4", "--num-steps", "16",
        "--set", "update_epochs=1", "--set", "num_minibatches=2", "--chunk-updates", "2"]


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny 2-seed run shared by the tests that read a finished run."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    code = main(["train", *TINY, "--seeds", "2", "--run-dir", str(run_dir)])
    assert code == 0
    return run_dir


def test_train_writes_complete_run_folder(trained: Path) -> None:
    spec = json.loads((trained / "config.json").read_text())
    assert spec["algo"] == "ppo" and spec["seeds"] == [0, 1] and spec["chunk_updates"] == 2
    assert spec["config"]["num_steps"] == 16 and spec["config"]["update_epochs"] == 1
    assert spec["rlfoundry_version"]
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == list(range(1, 33))
    assert rows[-1]["steps"] == 2048 and len(rows[-1]["episode_return"]) == 2
    assert any(p.name.startswith("events.out.tfevents") for p in (trained / "tb").iterdir())
    assert "32" in os.listdir(trained / "checkpoints")
    summary = json.loads((trained / "summary.json").read_text())
    assert len(summary["final_return"]["per_seed"]) == 2
    assert summary["timing"]["compile_seconds"] > 0
    assert (trained / "plots" / "learning_curve.png").stat().st_size > 1000
    assert "![learning curve](plots/learning_curve.png)" in (trained / "report.md").read_text()


def test_train_prints_table_and_paths(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "train", *TINY, "--seeds", "2", "--run-dir",
                         str(tmp_path / "r"))
    assert code == 0
    assert "final return" in out and "steps/s" in out and "wall time" in out
    assert f"report:     {tmp_path / 'r' / 'report.md'}" in out
    assert "learning_curve.png" in out
    assert "2,048/2,048 steps" in err  # the (non-terminal) progress display


def test_eval_json_and_seed_selection(trained: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "eval", str(trained), "--episodes", "5", "--json")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["episodes"] == 10 and result["seeds"] == [0, 1]
    assert result["mean_return"] > 0 and result["std_return"] >= 0
    lo, hi = result["ci95"]
    assert lo <= result["mean_return"] <= hi
    code, out, _ = run(capsys, "eval", str(trained), "--episodes", "3", "--stochastic",
                       "--seed-index", "1", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and result["seeds"] == [1] and result["episodes"] == 3
    assert result["deterministic"] is False


def test_plot_render_compare(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture
                             ) -> None:
    code, out, _ = run(capsys, "plot", str(trained), "--out", str(tmp_path / "c.png"))
    assert code == 0 and (tmp_path / "c.png").is_file()
    gif = tmp_path / "ep.gif"
    code, out, _ = run(capsys, "render", str(trained), "--out", str(gif), "--max-frames", "60")
    assert code == 0 and gif.stat().st_size > 1000, out
    import imageio.v2 as imageio

    frames = imageio.mimread(gif)
    assert frames[0].ndim == 3 and frames[0].shape[-1] in (3, 4)
    code, out, _ = run(capsys, "compare", str(trained), str(trained), "--labels", "a,b",
                       "--out", str(tmp_path / "cmp.png"), "--reps", "200", "--json")
    assert code == 0 and (tmp_path / "cmp.png").is_file()
    res = json.loads(out.strip().splitlines()[-1])
    assert [r["label"] for r in res["runs"]] == ["a", "b"]
    assert res["runs"][0]["iqm"] == res["runs"][1]["iqm"]


def test_help_explains_flags_with_defaults(capsys: pytest.CaptureFixture) -> None:
    for cmd in ("train", "eval", "render", "plot", "compare", "sweep", "list"):
        code, out, _ = run(capsys, cmd, "--help")
        assert code == 0 and "--debug" in out
        if cmd in ("train", "eval", "sweep", "render"):
            assert "(default:" in out, cmd
        if cmd == "train":  # the thread knob lives in the environment, so help names it
            assert "RLFOUNDRY_XLA_THREADS=1" in out
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "sweep" in out


def test_list(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "list", "presets")
    assert code == 0
    for name in ("ppo-cartpole", "ppo-pendulum", "ppo-minatar"):
        assert name in out
    code, out, _ = run(capsys, "list", "envs")
    assert code == 0 and "CartPole-v1" in out and "Breakout-MinAtar" in out
    code, out, _ = run(capsys, "list", "algos")
    assert code == 0 and "ppo" in out


def test_config_sources_and_precedence(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("algo: ppo\nconfig:\n  lr: 0.001\n  gamma: 0.9\n  num_envs: 8\nseeds: 3\n")
    code, out, _ = run(capsys, "train", "--preset", "ppo-minatar", "--config", str(cfg),
                       "--lr", "0.002", "--set", "gamma=0.95", "--set",
                       "objective.clip_eps=0.1", "--dry-run")
    assert code == 0
    spec = json.loads(out)
    c = spec["config"]
    assert c["hidden_sizes"] == [256, 256] and c["env"] == "Breakout-MinAtar"  # preset
    assert c["num_envs"] == 8 and spec["seeds"] == [0, 1, 2]  # file over preset
    assert c["lr"] == 0.002 and c["gamma"] == 0.95  # flag, then --set win
    assert c["objective"] == {"kind": "ppo_clip", "clip_eps": 0.1}
    # a run's own config.json reproduces it
    again = tmp_path / "again.json"
    again.write_text(json.dumps(spec))
    code, out2, _ = run(capsys, "train", "--config", str(again), "--dry-run")
    assert code == 0 and json.loads(out2)["config"] == c


def test_bad_inputs_are_one_line_errors(trained: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys, "train", "--preset", "ppo-cartpol", "--dry-run")
    assert_one_line_error(code, err, "unknown preset", "ppo-cartpole")
    code, _, err = run(capsys, "train", "--set", "objective.clip_epz=0.1", "--dry-run")
    assert_one_line_error(code, err, "clip_epz", "clip_eps")
    code, _, err = run(capsys, "train", "--set", "lr", "--dry-run")
    assert_one_line_error(code, err, "KEY=VALUE")
    bad = tmp_path / "bad.yaml"
    bad.write_text("config:\n  lr: fast\n")
    code, _, err = run(capsys, "train", "--config", str(bad), "--dry-run")
    assert_one_line_error(code, err, str(bad), "lr must be a number")
    broken = tmp_path / "broken.yaml"
    broken.write_text("config: [lr: 1\n")
    code, _, err = run(capsys, "train", "--config", str(broken), "--dry-run")
    assert_one_line_error(code, err, "not valid YAML")
    code, _, err = run(capsys, "train", "--total-steps", "lots")
    assert_one_line_error(code, err, "--total-steps")
    code, _, err = run(capsys, "eval", str(tmp_path / "nowhere"))
    assert_one_line_error(code, err, "does not exist")
    half = tmp_path / "half"
    half.mkdir()
    (half / "metrics.jsonl").write_text("")
    code, _, err = run(capsys, "eval", str(half))
    assert_one_line_error(code, err, "no config.json", "--overwrite")
    code, _, err = run(capsys, "train", "--resume", str(half))
    assert_one_line_error(code, err, "no config.json")
    no_ckpt = tmp_path / "no-ckpt"
    no_ckpt.mkdir()
    (no_ckpt / "config.json").write_text((trained / "config.json").read_text())
    code, _, err = run(capsys, "eval", str(no_ckpt))
    assert_one_line_error(code, err, "no checkpoint yet", "--resume")
    (no_ckpt / "config.json").write_text('{"algo": "ppo", "config": {"lr": "x"')
    code, _, err = run(capsys, "eval", str(no_ckpt))
    assert_one_line_error(code, err, "unreadable", "--overwrite")
    code, _, err = run(capsys, "eval", str(trained), "--seed-index", "5")
    assert_one_line_error(code, err, "--seed-index 5")
    code, _, err = run(capsys, "train", "--resume", str(trained), "--lr", "0.1")
    assert_one_line_error(code, err, "drop --lr")


def test_existing_run_is_never_overwritten(trained: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    before = {p: p.read_bytes() for p in trained.rglob("*") if p.is_file()}
    code, _, err = run(capsys, "train", *TINY, "--run-dir", str(trained))
    assert_one_line_error(code, err, "already exists", "--overwrite")
    other = tmp_path / "not-a-run"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "train", *TINY, "--run-dir", str(other), "--overwrite")
    assert_one_line_error(code, err, "not a run folder")
    assert (other / "notes.txt").read_text() == "mine"
    after = {p: p.read_bytes() for p in trained.rglob("*") if p.is_file()}
    assert before == after


def test_corrupted_checkpoint(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture
                              ) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    latest = copy / "checkpoints" / "32"
    data = sorted((p for p in latest.rglob("*") if p.is_file() and "/d/" in str(p)),
                  key=lambda p: p.stat().st_size)[-1]
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 16] = bytes(16)
    raw[-8:] = b"garbage!"
    data.write_bytes(bytes(raw))
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    code, _, err = run(capsys, "eval", str(copy), "--episodes", "2")
    assert_one_line_error(code, err, "corrupted", "delete", "after 30 updates")
    after = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert before == after
    shutil.rmtree(latest)  # the advertised fix works
    code, out, _ = run(capsys, "eval", str(copy), "--episodes", "2", "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["checkpoint_update"] == 30


def test_sweep_vmap_backend(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out_dir = tmp_path / "sweep"
    code, out, err = run(capsys, "sweep", *TINY, "--grid", "lr=3e-4,1e-3", "--seeds", "1",
                         "--out", str(out_dir), "--json")
    assert code == 0, err
    assert "1 compiled program(s) (batched in-program: lr)" in err
    table = json.loads(out.strip().splitlines()[-1])
    assert [t["settings"]["lr"] for t in table["trials"]] == [3e-4, 1e-3]
    assert table["best"]["trial"] in ("trial-000", "trial-001")
    assert (out_dir / "sweep.csv").read_text().startswith("trial,lr,mean")
    trial = out_dir / "trials" / "trial-001"
    assert json.loads((trial / "config.json").read_text())["config"]["lr"] == 1e-3
    code, out, _ = run(capsys, "eval", str(trial), "--episodes", "2", "--json")
    assert code == 0


def test_sweep_groups_static_settings(tmp_path: Path) -> None:
    from rlfoundry.experiment.configure import resolve
    from rlfoundry.experiment.sweep import group_trials, make_trials

    r = resolve(flags={"total_steps": 2048})
    trials = make_trials(r, ["lr=1e-4,1e-3", "num_envs=4,8"], ["gamma=uniform:0.9:0.99"], 2)
    assert len(trials) == 8
    groups = group_trials(r, trials)
    assert len(groups) == 2 and all(g.numeric == ("gamma", "lr") for g in groups)
    assert sorted(g.static["num_envs"] for g in groups) == [4, 8]


def test_sweep_ray_backend(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("ray")
    out_dir = tmp_path / "ray"
    code, out, err = run(capsys, "sweep", *TINY, "--grid", "lr=3e-4,1e-3", "--seeds", "2",
                         "--backend", "ray", "--ray-cpus", "2", "--out", str(out_dir), "--json")
    assert code == 0, err
    assert "2 Ray task(s)" in err
    table = json.loads(out.strip().splitlines()[-1])
    assert table["backend"] == "ray" and len(table["trials"]) == 2
    assert all(len(t["per_seed"]) == 2 for t in table["trials"])
    assert (out_dir / "trials" / "trial-000" / "summary.json").is_file()
