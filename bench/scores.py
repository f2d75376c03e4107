"""Score table: every learner on the classic-control tasks and PPO on MinAtar, >= 5 seeds.

Why: a library's algorithms are only as good as the returns they reach. This trains each
(learner, task) pair from its shipped preset with the CLI a user would run
(``rlfoundry train --preset ... --seeds 5``), evaluates every seed's final policy
(``rlfoundry eval --deterministic``, 20 episodes per seed), and writes a Markdown table of
the mean over seeds with a 95% Student-t confidence interval next to the RL Baselines3
Zoo / MinAtar reference numbers of ``../shared/REFERENCES.md`` section 2, plus wall time.

Usage:
    python bench/scores.py                 # everything (hours: MinAtar PPO is 4 x 1e7 steps)
    python bench/scores.py --only classic  # the classic-control rows only
    python bench/scores.py --only dqn-acrobot,sac-pendulum
    python bench/scores.py --table         # rebuild docs/scores.md from finished rows

Each row's run folder is ``bench/results/scores/<row>/`` and its numbers are cached in
``bench/results/scores/<row>.json``; a row with a cache is not re-run (``--rerun`` forces
it), and a row whose training was interrupted (the 1e7-step MinAtar rows take hours on
2 CPU cores) is resumed from its last checkpoint, so the long table can be built over
several sessions. The last output line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scores"
DOC = ROOT / "docs" / "scores.md"
RLF = [sys.executable, "-m", "rlfoundry.cli"]


@dataclass(frozen=True)
class Row:
    """One (learner, task) entry: a shipped preset, optionally re-targeted."""

    name: str
    learner: str
    preset: str
    env: str
    reference: str  # what ../shared/REFERENCES.md reports (budget in brackets)
    group: str = "classic"
    sets: tuple[str, ...] = ()
    flags: tuple[str, ...] = field(default=())
    note: str = ""


CLASSIC = [
    # CartPole-v1
    Row("ppo-cartpole", "PPO", "ppo-cartpole", "CartPole-v1", "500 (100k)"),
    Row("a2c-cartpole", "A2C", "a2c-cartpole", "CartPole-v1", "500 (500k)"),
    Row("grpo-cartpole", "GRPO", "grpo-cartpole", "CartPole-v1", "–"),
    Row("rloo-cartpole", "RLOO", "grpo-cartpole", "CartPole-v1", "–",
        sets=("baseline=rloo",)),
    Row("reinforce-cartpole", "REINFORCE+critic", "grpo-cartpole", "CartPole-v1", "–",
        sets=("baseline=critic", "group_size=1")),
    Row("ppo-kl-cartpole", "PPO-KL", "ppo-kl-cartpole", "CartPole-v1", "–"),
    Row("trpo-cartpole", "TRPO", "trpo-cartpole", "CartPole-v1", "500 (100k)"),
    Row("dqn-cartpole", "DQN", "dqn-cartpole", "CartPole-v1", "500 (50k)"),
    Row("sac-discrete-cartpole", "SAC (discrete)", "sac-discrete-cartpole", "CartPole-v1", "–"),
    # Acrobot-v1
    Row("ppo-acrobot", "PPO", "ppo-acrobot", "Acrobot-v1", "−73.5 (1M)"),
    Row("a2c-acrobot", "A2C", "a2c-cartpole", "Acrobot-v1", "−83.4 (500k)",
        note="CartPole settings"),
    Row("trpo-acrobot", "TRPO", "trpo-cartpole", "Acrobot-v1", "−83.1",
        note="CartPole settings"),
    Row("dqn-acrobot", "DQN", "dqn-acrobot", "Acrobot-v1", "−76.6 (100k)"),
    # MountainCar-v0
    Row("ppo-mountaincar", "PPO", "ppo-mountaincar", "MountainCar-v0", "−110.4 (1M)"),
    Row("a2c-mountaincar", "A2C", "a2c-cartpole", "MountainCar-v0", "−111.3 (1M)",
        flags=("--total-steps", "1000000"), note="CartPole settings"),
    Row("trpo-mountaincar", "TRPO", "trpo-cartpole", "MountainCar-v0", "−107.3",
        flags=("--total-steps", "1000000"), note="CartPole settings"),
    Row("dqn-mountaincar", "DQN", "dqn-mountaincar", "MountainCar-v0", "−100.8 (120k)"),
    # Pendulum-v1
    Row("ppo-pendulum", "PPO", "ppo-pendulum", "Pendulum-v1", "−172 (100k)", note="gSDE"),
    Row("sac-pendulum", "SAC", "sac-pendulum", "Pendulum-v1", "−157 (20k)"),
    Row("td3-pendulum", "TD3", "td3-pendulum", "Pendulum-v1", "−152 (20k)"),
    Row("ddpg-pendulum", "DDPG", "ddpg-pendulum", "Pendulum-v1", "–"),
    # MountainCarContinuous-v0
    Row("ppo-mcc", "PPO", "ppo-mountaincar-continuous", "MountainCarContinuous-v0",
        "88.3 (20k)", note="gSDE, 50k steps"),
    Row("sac-mcc", "SAC", "sac-mountaincar-continuous", "MountainCarContinuous-v0",
        "94.7 (50k)", note="correlated noise (ρ 0.99) instead of gSDE"),
    Row("td3-mcc", "TD3", "td3-pendulum", "MountainCarContinuous-v0", "–",
        flags=("--total-steps", "50000"), sets=("noise_correlation=0.99",
                                                 "exploration_noise=0.5"),
        note="Pendulum settings + correlated noise (ρ 0.99, σ 0.5)"),
]

MINATAR_REFERENCE = {"Asterix": "≈ 15", "Breakout": "≈ 28–50", "Freeway": "≈ 58–62",
                     "SpaceInvaders": "≈ 131–167"}
MINATAR = [
    Row(f"ppo-{game.lower()}-minatar", "PPO", "ppo-minatar", f"{game}-MinAtar",
        f"{ref} (10M)", group="minatar")
    for game, ref in MINATAR_REFERENCE.items()
]
ROWS = {r.name: r for r in CLASSIC + MINATAR}


def log(msg: str) -> None:
    print(f"[scores] {msg}", file=sys.stderr, flush=True)


def unfinished(folder: Path) -> bool:
    """A run folder with a checkpoint but no final summary (training was interrupted)."""
    ckpt = folder / "checkpoints"
    return (not (folder / "summary.json").exists() and ckpt.is_dir()
            and any(ckpt.iterdir()))


def _default_sigint() -> None:
    """In the training process: Ctrl-C back to Python's default (it installs its own)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_row(row: Row, seeds: int, episodes: int, resume: bool = True) -> dict:
    """Train, evaluate and summarise one row (its run folder is overwritten, or resumed
    when ``resume`` and it holds an interrupted run)."""
    folder = RESULTS / row.name
    cmd = [*RLF, "train", "--preset", row.preset, "--env", row.env, "--seeds", str(seeds),
           "--run-dir", str(folder), "--overwrite", "--no-progress", *row.flags]
    for s in row.sets:
        cmd += ["--set", s]
    if resume and unfinished(folder):  # a long row interrupted earlier: continue it
        cmd = [*RLF, "train", "--resume", str(folder), "--no-progress"]
    log(" ".join(cmd[2:]))
    start = time.perf_counter()
    # Ctrl-C reaches the training process too, which finishes its chunk and checkpoints;
    # this process must not kill it meanwhile, so it ignores SIGINT while training runs
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = subprocess.run(cmd, stdout=subprocess.DEVNULL, preexec_fn=_default_sigint).returncode
    finally:
        signal.signal(signal.SIGINT, previous)
    if code == 130:  # interrupted: the training saved a checkpoint and stopped
        log(f"{row.name}: interrupted and checkpointed; run this command again to resume it")
        raise SystemExit(130)
    if code:
        raise SystemExit(f"{row.name}: training failed (exit {code}); see its run folder")
    wall = time.perf_counter() - start
    out = subprocess.run(
        [*RLF, "eval", str(folder), "--episodes", str(episodes), "--deterministic", "--json"],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    ev = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    summary = json.loads((folder / "summary.json").read_text())
    per_seed = ev["per_seed_mean_return"]
    from rlfoundry.experiment.stats import mean_ci

    mean, std, low, high = mean_ci(per_seed)
    return {
        "row": row.name, "learner": row.learner, "env": row.env, "preset": row.preset,
        "sets": list(row.sets), "flags": list(row.flags), "seeds": seeds,
        "steps": summary["steps_per_seed"], "eval_episodes_per_seed": episodes,
        "eval_mean": mean, "eval_std": std, "eval_ci95": [low, high],
        "eval_per_seed": per_seed,
        "train_final_return": summary["final_return"]["mean"],
        "wall_seconds": wall, "compile_seconds": summary["timing"].get("compile_seconds"),
        "reference": row.reference, "note": row.note,
        "machine_load": os.getloadavg()[0],
    }


def fmt(x: float) -> str:
    return f"{x:.1f}"


def table(results: dict[str, dict]) -> str:
    """The Markdown page: one table per group, rows in ``ROWS`` order."""
    lines = [
        "# Scores",
        "",
        "Written by `bench/scores.py` (do not edit by hand; re-run it). Each row trains the",
        "shipped preset with `rlfoundry train --preset P --env E --seeds 5`, then evaluates",
        "every seed's final policy deterministically for 20 episodes (`rlfoundry eval`).",
        "*eval* is the mean over seeds of those per-seed means with a 95% Student-t interval",
        "across seeds; *train* is the mean return of the training episodes in the last 10% of",
        "updates (stochastic or epsilon-greedy policy). *wall* is the whole `train` command on",
        "this 2-core CPU, all seeds at once (vmapped), compilation included, under the machine",
        "load shown. References are from `../shared/REFERENCES.md` section 2 (RL Baselines3",
        "Zoo, one run, tuned hyperparameters; MinAtar: gymnax PPO checkpoints).",
        "",
    ]
    for group, title in (("classic", "Classic control"), ("minatar", "MinAtar (PPO, 1e7 steps)")):
        rows = [ROWS[n] for n in ROWS if n in results and ROWS[n].group == group]
        if not rows:
            continue
        lines += [f"## {title}", "",
                  "| env | learner | preset | steps | seeds | eval mean [95% CI] | train | "
                  "reference | wall s | load | note |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            r = results[row.name]
            preset = row.preset + "".join(f" `{s}`" for s in row.sets)
            lines.append(
                f"| {r['env']} | {r['learner']} | {preset} | {r['steps']:,} | {r['seeds']} | "
                f"{fmt(r['eval_mean'])} [{fmt(r['eval_ci95'][0])}, {fmt(r['eval_ci95'][1])}] | "
                f"{fmt(r['train_final_return'])} | {r['reference']} | {r['wall_seconds']:.0f} | "
                f"{r['machine_load']:.1f} | {r['note']} |"
            )
        lines.append("")
    notes = DOC.with_name("scores_notes.md")
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="all",
                        help="all, classic, minatar, or comma-separated row names")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=20, help="eval episodes per seed")
    parser.add_argument("--rerun", action="store_true",
                        help="ignore cached rows and start interrupted ones afresh")
    parser.add_argument("--table", action="store_true", help="only rebuild docs/scores.md")
    args = parser.parse_args()

    if args.only in ("all", "classic", "minatar"):
        names = [n for n, r in ROWS.items() if args.only in ("all", r.group)]
    else:
        names = [n.strip() for n in args.only.split(",")]
        unknown = [n for n in names if n not in ROWS]
        if unknown:
            parser.error(f"unknown rows {unknown}; choose from {sorted(ROWS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.table:
        for name in names:
            cache = RESULTS / f"{name}.json"
            if cache.exists() and not args.rerun:
                continue
            result = run_row(ROWS[name], args.seeds, args.episodes, resume=not args.rerun)
            cache.write_text(json.dumps(result, indent=1))
            log(f"{name}: eval {result['eval_mean']:.1f} {result['eval_ci95']} "
                f"in {result['wall_seconds']:.0f} s")
    results = {p.stem: json.loads(p.read_text()) for p in RESULTS.glob("*.json")}
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(table(results))
    print(table(results))
    print(json.dumps({n: results[n] for n in ROWS if n in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
