"""The ``rlfoundry`` command: train, resume, eval, render, plot, compare, sweep, list.

Every subcommand parses its flags here and calls into :mod:`rlfoundry.experiment`; JAX and
the plotting stack are imported only by the commands that need them, so ``--help`` and
``list`` answer at once. Anything a user can get wrong surfaces as an
:class:`~rlfoundry.errors.RLFoundryError`: :func:`main` prints its one-line message to
stderr and returns exit code 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlfoundry.errors import ConfigError, RLFoundryError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(RLFoundryError):
    """A command line argparse rejected."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so :func:`main`
    reports every bad command line as the same single line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`).")


_FMT = argparse.ArgumentDefaultsHelpFormatter


def _count(text: str) -> int:
    """An integer that may be written 500000, 500_000, 5e5, 500k or 1M."""
    t = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(t[-1:], 1)
    if scale != 1:
        t = t[:-1]
    try:
        value = float(t) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count like 500000 or 5e5, got {text!r}") from None
    if not value.is_integer() or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(value)


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks instead of one-line errors")


def _config_sources(p: argparse.ArgumentParser, *, with_defaults: bool = True) -> None:
    g = p.add_argument_group("settings (later sources win: preset < --config < flags < --set)")
    g.add_argument("--algo", help="learner (see `rlfoundry list algos`); default: the "
                   "preset's or config file's, else ppo")
    g.add_argument("--preset", help="shipped preset (see `rlfoundry list presets`)")
    g.add_argument("--config", metavar="FILE",
                   help="YAML/JSON settings file (flat, or with algo/config keys; a run's "
                   "config.json works)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, dotted for nested ones, e.g. "
                   "--set objective.clip_eps=0.1 (repeatable)")
    g.add_argument("--env", help="environment name (see `rlfoundry list envs`)")
    g.add_argument("--total-steps", type=_count, help="environment steps per seed (5e5, 500k)")
    g.add_argument("--num-envs", type=_positive, help="parallel environments per seed")
    g.add_argument("--num-steps", type=_positive, help="steps per environment per update")
    g.add_argument("--lr", type=float, help="learning rate")
    g.add_argument("--gamma", type=float, help="discount factor")
    g.add_argument("--network", help="network torso: mlp or cnn")
    g.add_argument("--objective", metavar="NAME|RUN_DIR",
                   help="policy objective: ppo_clip, dpo, lpo, ta_lpo, or a discovery run "
                   "folder whose learned objective is loaded")
    g.add_argument("--curriculum", choices=["dr", "plr", "robust_plr", "accel", "paired"],
                   help="train PPO on a curriculum of levels (the env needs a level space, "
                   "e.g. Maze or CartPole-v1)")
    g.add_argument("--reward-code", metavar="FILE",
                   help="train on the reward defined by `def reward(obs, action, next_obs, "
                   "info)` in FILE (validated: jnp arithmetic only; see README)")
    g.add_argument("--bc-data", metavar="FILE.npz",
                   help="demonstrations (from `rlfoundry record`) for behaviour-cloning "
                   "pre-training and an imitation loss (tune with --set imitation.coef=...)")


def _typed_flags(args: argparse.Namespace) -> dict[str, Any]:
    from rlfoundry.experiment.configure import TYPED_FLAGS

    return {k: getattr(args, k) for k in TYPED_FLAGS if getattr(args, k, None) is not None}


def _resolve(args: argparse.Namespace) -> Any:
    from rlfoundry.experiment.configure import resolve

    return resolve(args.algo, args.preset, args.config, _typed_flags(args), args.set)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rlfoundry",
        description="Reinforcement learning on JAX: train, evaluate and compare agents.",
        formatter_class=_FMT,
    )
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of one-line errors")
    parser.add_argument("--compile-cache", metavar="DIR|off",
                        help="folder of the persistent XLA compilation cache (default: "
                        "$RLFOUNDRY_COMPILE_CACHE or ~/.cache/rlfoundry/xla)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    # --- train ----------------------------------------------------------------------------
    p = sub.add_parser("train", help="train an agent (or --resume an interrupted run)",
                       description="Train N seeds at once (vmapped) and write a run folder. "
                       "Ctrl-C stops after the current chunk and saves a checkpoint.",
                       epilog="Threads: RLFOUNDRY_XLA_THREADS=1 rlfoundry train ... runs each "
                       "compiled program on one thread, 10-20% faster for small networks "
                       "(CartPole-sized MLPs) on few cores; keep the default for CNNs and "
                       "large vmapped runs (README, Speed).",
                       formatter_class=_FMT)
    _common(p)
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the interrupted run in RUN_DIR from its latest checkpoint, "
                   "with its saved settings")
    _config_sources(p)
    g = p.add_argument_group("run")
    g.add_argument("--seeds", default=None,
                   help="number of seeds (4 → 0..3) or a list (0,3,9); all run at once "
                   "[default: 1]")
    g.add_argument("--chunk-updates", type=_positive,
                   help="updates per compiled chunk (progress, logs and checkpoints happen "
                   "between chunks) [default: about 1/25 of the run]")
    g.add_argument("--checkpoint-every", type=_positive, metavar="UPDATES",
                   help="save a checkpoint every this many updates, rounded up to whole "
                   "chunks [default: every chunk]")
    g.add_argument("--keep-checkpoints", type=_positive, default=3,
                   help="how many recent checkpoints to keep")
    g.add_argument("--run-dir", help="run folder [default: runs/<algo>-<env>-<time>]")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing run folder of the same name")
    g.add_argument("--no-progress", action="store_true", help="no progress display")
    g.add_argument("--dry-run", action="store_true",
                   help="print the resolved settings as JSON and exit without training")
    p.set_defaults(func=cmd_train)

    # --- eval -----------------------------------------------------------------------------
    p = sub.add_parser("eval", help="evaluate a run's saved policy",
                       description="Run the saved policy for K episodes per seed in one "
                       "compiled loop; print mean, std and a 95%% confidence interval.",
                       formatter_class=_FMT)
    _common(p)
    p.add_argument("run", metavar="RUN_DIR", help="run folder")
    p.add_argument("--episodes", type=_positive, default=100,
                   help="episodes per seed (with --mazes: per maze and seed, at most 100)")
    p.add_argument("--mazes", metavar="heldout|FILE|DIR", default=None,
                   help="evaluate a Maze policy on the built-in held-out mazes, one maze text "
                   "file, or every *.txt maze in a folder: solve rate per maze")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--deterministic", dest="deterministic", action="store_true",
                      default=True, help="greedy / mean actions")
    mode.add_argument("--stochastic", dest="deterministic", action="store_false",
                      help="sample actions from the policy")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of the evaluation episodes")
    p.add_argument("--seed-index", type=int, default=None,
                   help="evaluate only the policy of this seed (index into the run's seeds) "
                   "[default: all seeds]")
    p.add_argument("--checkpoint", type=int, default=None, metavar="UPDATE",
                   help="checkpoint to load (update count) [default: latest]")
    p.add_argument("--max-steps", type=_positive, default=None,
                   help="cap on steps per episode [default: the environment's time limit]")
    p.add_argument("--json", action="store_true",
                   help="end the output with one JSON line (mean_return, std_return, ...)")
    p.set_defaults(func=cmd_eval)

    # --- render ---------------------------------------------------------------------------
    p = sub.add_parser("render", help="write a GIF of the saved policy playing (text envs: "
                       "print transcripts)",
                       description="Play episodes with the saved policy and write them as "
                       "an animated GIF (CartPole, Pendulum, Acrobot, MountainCar, MinAtar, "
                       "any image-observation env); for text environments print readable "
                       "transcripts (and write them to --out if given).", formatter_class=_FMT)
    _common(p)
    p.add_argument("run", metavar="RUN_DIR", help="run folder")
    p.add_argument("--out", help="output file (.gif) [default: RUN_DIR/videos/episode.gif]")
    p.add_argument("--episodes", type=_positive, default=1, help="episodes to record")
    p.add_argument("--seed-index", type=int, default=0, help="which seed's policy to show")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of the episodes")
    p.add_argument("--stochastic", action="store_true", help="sample actions (default: greedy)")
    p.add_argument("--max-frames", type=_positive, default=500, help="stop after this many frames")
    p.add_argument("--fps", type=_positive, default=30, help="frames per second")
    p.add_argument("--checkpoint", type=int, default=None, metavar="UPDATE",
                   help="checkpoint to load [default: latest]")
    p.add_argument("--maze", default="SixteenRooms", metavar="NAME|FILE",
                   help="maze curriculum runs: the held-out maze (or maze .txt file) to play; "
                   "they also get a PNG grid of the buffer's top levels")
    p.add_argument("--top", type=_positive, default=16,
                   help="maze curriculum runs: how many top-scoring levels to draw")
    p.set_defaults(func=cmd_render)

    # --- plot -----------------------------------------------------------------------------
    p = sub.add_parser("plot", help="learning curve PNG and report.md of a run",
                       formatter_class=_FMT,
                       description="Plot the mean over seeds with a 95%% band and (re)write "
                       "the run's report.md.")
    _common(p)
    p.add_argument("run", metavar="RUN_DIR", help="run folder")
    p.add_argument("--metric", default="episode_return", help="metric from metrics.jsonl")
    p.add_argument("--out", help="PNG path [default: RUN_DIR/plots/learning_curve.png]")
    p.set_defaults(func=cmd_plot)

    # --- compare --------------------------------------------------------------------------
    p = sub.add_parser("compare", help="overlay runs and aggregate their scores",
                       formatter_class=_FMT,
                       description="Overlay learning curves of several runs and report final "
                       "returns as IQM with stratified-bootstrap 95%% CIs (per run, and per "
                       "label across tasks when labels repeat).")
    _common(p)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders")
    p.add_argument("--out", default="compare.png", help="PNG path of the overlay")
    p.add_argument("--labels", help="comma-separated labels, one per run [default: folder "
                   "names]; runs sharing a label on different envs are aggregated as tasks")
    p.add_argument("--metric", default="episode_return", help="metric to plot")
    p.add_argument("--normalize", choices=("none", "minmax"), default="minmax",
                   help="per-task score normalisation before aggregating across tasks")
    p.add_argument("--reps", type=_positive, default=2000, help="bootstrap resamples")
    p.add_argument("--json", action="store_true", help="end the output with one JSON line")
    p.set_defaults(func=cmd_compare)

    # --- sweep ----------------------------------------------------------------------------
    p = sub.add_parser("sweep", help="grid or random search over settings x seeds",
                       formatter_class=_FMT,
                       description="Train every trial (a combination of settings) for N "
                       "seeds. Backend vmap: trials differing only in numeric settings run "
                       "in ONE compiled program (sizes and names are static, so each "
                       "distinct value of those is its own program). Backend ray: each "
                       "trial is a Ray task.")
    _common(p)
    _config_sources(p)
    g = p.add_argument_group("search")
    g.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="values to try for a setting (repeatable: the grid is the product)")
    g.add_argument("--random", type=_positive, metavar="N",
                   help="also draw N random combinations from the --dist distributions")
    g.add_argument("--dist", action="append", default=[], metavar="KEY=KIND:ARGS",
                   help="distribution for --random: uniform:LO:HI, loguniform:LO:HI, "
                   "int:LO:HI or choice:A,B,C (repeatable)")
    g.add_argument("--search-seed", type=int, default=0, help="seed of the random search")
    g.add_argument("--seeds", default="2", help="seeds per trial (count or list)")
    g.add_argument("--metric", default="episode_return",
                   help="what ranks trials: the final value of this metric (higher is better)")
    g.add_argument("--backend", choices=("vmap", "ray"), default="vmap", help="how trials run")
    g.add_argument("--ray-address", help="address of an existing Ray cluster [default: start "
                   "a local one]")
    g.add_argument("--ray-cpus", type=_positive, default=2, help="CPUs of the local Ray")
    g.add_argument("--chunk-updates", type=_positive, help="updates per compiled chunk")
    g.add_argument("--out", help="sweep folder [default: runs/sweep-<time>]")
    g.add_argument("--overwrite", action="store_true", help="replace an existing sweep folder")
    g.add_argument("--no-progress", action="store_true", help="no progress display")
    g.add_argument("--json", action="store_true", help="end the output with one JSON line")
    p.set_defaults(func=cmd_sweep)

    # --- record ---------------------------------------------------------------------------
    p = sub.add_parser("record", help="save trajectories of a policy or a scripted expert",
                       description="Play episodes with a run's saved policy (or a scripted "
                       "expert: --expert maze_bfs --env Maze-...) and save them as a "
                       "versioned .npz dataset for --bc-data.", formatter_class=_FMT)
    _common(p)
    p.add_argument("run", metavar="RUN_DIR", nargs="?", help="run folder (omit with --expert)")
    p.add_argument("--expert", choices=["maze_bfs"], help="scripted expert instead of a run")
    p.add_argument("--env", help="environment of the expert (e.g. Maze-SixteenRooms)")
    p.add_argument("--episodes", type=_positive, default=10, help="episodes to record")
    p.add_argument("--out", required=True, help="output .npz file")
    p.add_argument("--stochastic", action="store_true", help="sample actions (default: greedy)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of the episodes")
    p.add_argument("--seed-index", type=int, default=0, help="which seed's policy to record")
    p.add_argument("--max-steps", type=_positive, default=None,
                   help="cap on steps per episode [default: the environment's time limit]")
    p.set_defaults(func=cmd_record)

    # --- reward learning --------------------------------------------------------------------
    p = sub.add_parser("reward-model", help="fit a Bradley-Terry reward model from preferences",
                       description="Collect random-policy segment pairs, label them with a "
                       "scripted teacher (the larger true return wins) and fit a reward "
                       "network; train on it with --set reward.model=OUT.", formatter_class=_FMT)
    _common(p)
    p.add_argument("--env", required=True, help="environment")
    p.add_argument("--pairs", type=_positive, default=512, help="preference pairs")
    p.add_argument("--length", type=_positive, default=25, help="segment length (steps)")
    p.add_argument("--steps", type=_positive, default=500, help="Adam steps of the fit")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed")
    p.add_argument("--out", required=True, help="output .npz")
    p.set_defaults(func=cmd_reward_model)

    p = sub.add_parser("blend", help="learn auxiliary-reward weights by ES",
                       description="ES over the weights of auxiliary rewards (reward code "
                       "files); every member is a complete PPO run on env reward + weighted "
                       "auxiliaries, fitness = the env's own return.", formatter_class=_FMT)
    _common(p)
    _config_sources(p)
    p.add_argument("--aux", action="append", required=True, metavar="FILE",
                   help="auxiliary reward code file (repeatable)")
    p.add_argument("--generations", type=_positive, default=6, help="ES generations")
    p.add_argument("--population", type=_positive, default=8, help="population (even)")
    p.add_argument("--sigma", type=float, default=0.5, help="ES noise scale")
    p.add_argument("--es-lr", type=float, default=0.3, help="ES learning rate")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed")
    p.add_argument("--out", help="write the weights and history as JSON")
    p.set_defaults(func=cmd_blend)

    p = sub.add_parser("design-reward", help="propose-train-evaluate loop for reward code",
                       description="Propose reward code, validate it, train briefly, score "
                       "by the task's own return and feed the result back. Without --url a "
                       "deterministic designer hill-climbs the coefficient {c} of --template; "
                       "with --url an OpenAI-compatible chat endpoint proposes code.",
                       formatter_class=_FMT)
    _common(p)
    _config_sources(p)
    p.add_argument("--task", default="maximise the environment's return",
                   help="task description for the designer")
    p.add_argument("--template", metavar="FILE", help="reward code with a {c} coefficient")
    p.add_argument("--url", help="OpenAI-compatible /chat/completions URL (off by default)")
    p.add_argument("--model", default="gpt-4o-mini", help="model name for --url")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the API key for --url")
    p.add_argument("--rounds", type=_positive, default=4, help="proposals")
    p.add_argument("--design-seeds", type=_positive, default=2, help="seeds per proposal")
    p.add_argument("--out", help="write every attempt as JSON")
    p.set_defaults(func=cmd_design_reward)

    # --- list -----------------------------------------------------------------------------
    p = sub.add_parser("discover", help="meta-train a learned policy objective by ES",
                       description="Evolve the weights of a learned drift objective (LPO or "
                       "TA-LPO): every population member is a complete PPO training run, the "
                       "population vmapped. Checkpoints every generation; Ctrl-C saves; "
                       "--resume continues. Train with the result: rlfoundry train "
                       "--objective RUN_DIR.",
                       formatter_class=_FMT)
    _common(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted discovery run")
    p.add_argument("--objective", choices=["lpo", "ta_lpo"], default="lpo",
                   help="learned objective family")
    p.add_argument("--env", action="append", default=None,
                   help="inner task (repeatable for several tasks per generation) "
                   "[default: CartPole-v1]")
    p.add_argument("--generations", type=_positive, default=50, help="ES generations")
    p.add_argument("--population", type=_positive, default=16,
                   help="population size (even: antithetic pairs)")
    p.add_argument("--strategy", default="Open_ES", help="evosax strategy name")
    p.add_argument("--sigma", type=float, default=0.03, help="ES noise scale (decayed)")
    p.add_argument("--es-lr", type=float, default=0.03, help="ES learning rate (decayed)")
    p.add_argument("--decay", type=float, default=0.99, help="per-generation decay of σ and lr")
    p.add_argument("--hidden", type=_positive, default=32, help="drift network width")
    p.add_argument("--ppo-init", action="store_true",
                   help="start from PPO's drift (LPO's PPO initialisation)")
    p.add_argument("--no-normalize", action="store_true",
                   help="fitness = raw final return, not divided by PPO's on the task")
    p.add_argument("--inner-steps", type=_count, default=None,
                   help="environment steps of each inner training run [default: per task]")
    p.add_argument("--final-fraction", type=float, default=None,
                   help="fitness = mean return over this last fraction of each inner run "
                   "[default: 0.1, or 0.25 with a curriculum]")
    g = p.add_argument_group("GROOVE: meta-training over a curriculum of levels")
    g.add_argument("--curriculum", choices=["none", "groove", "uniform", "pvl", "maxmc"],
                   default="none",
                   help="choose each generation's levels: groove = PLR scored by algorithmic "
                   "regret; uniform, pvl, maxmc = baselines [default env: Gridworld-random-v0]")
    g.add_argument("--levels", type=_positive, default=4, help="levels per generation")
    g.add_argument("--buffer-size", type=_positive, default=256, help="PLR buffer capacity")
    g.add_argument("--replay-prob", type=float, default=0.5, help="PLR replay probability")
    g.add_argument("--antagonist", choices=["a2c", "ppo"], default="a2c",
                   help="hand-designed learner regret is measured against")
    g = p.add_argument_group("where the population trains")
    g.add_argument("--backend", choices=["vmap", "ray"], default="vmap",
                   help="vmap: one program here; ray: population shards as Ray tasks")
    g.add_argument("--ray-address", default="",
                   help="Ray cluster address [default: start a local Ray]")
    g.add_argument("--shards", type=_positive, default=2, help="Ray tasks per generation")
    p.add_argument("--seed", type=int, default=0, help="meta-training seed")
    p.add_argument("--run-dir", default="runs/discover", help="run folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_discover)

    # --- list -----------------------------------------------------------------------------
    p = sub.add_parser("list", help="list environments, algorithms or presets",
                       formatter_class=_FMT)
    _common(p)
    p.add_argument("what", choices=("envs", "algos", "presets"), help="what to list")
    p.set_defaults(func=cmd_list)
    return parser


# --- helpers ------------------------------------------------------------------------------


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(file=sys.stderr if stderr else sys.stdout, highlight=False,
                   soft_wrap=True)


def _fmt(x: Any, digits: int = 1) -> str:
    import math

    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:,.{digits}f}"


# --- train --------------------------------------------------------------------------------


def _spec_from_args(args: argparse.Namespace) -> Any:
    from rlfoundry.engine import get_algorithm
    from rlfoundry.experiment.spec import RunSpec, default_chunk_updates, parse_seeds

    resolved = _resolve(args)
    algo = get_algorithm(resolved.algo)
    total = algo.num_updates(resolved.config)
    run = resolved.run
    seeds = parse_seeds(args.seeds if args.seeds is not None else run.get("seeds", 1))
    chunk = args.chunk_updates or run.get("chunk_updates") or default_chunk_updates(total)
    chunk = min(int(chunk), total)
    every = args.checkpoint_every or run.get("checkpoint_every") or chunk
    keep = args.keep_checkpoints
    for name, v in (("chunk_updates", chunk), ("checkpoint_every", every)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}.")
    import shlex

    extra = {"command": shlex.join(["rlfoundry", *getattr(args, "argv", [])]),
             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if resolved.description:
        extra["description"] = resolved.description
    return RunSpec(resolved.algo, resolved.config, seeds, chunk, int(every), keep, (), extra)


def cmd_train(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from rlfoundry.experiment.runfolder import RunFolder

    if args.resume:
        given = [f for f in ("algo", "preset", "config", "env", "total_steps", "num_envs",
                             "num_steps", "lr", "gamma", "network", "objective",
                             "curriculum", "reward_code", "bc_data", "seeds", "chunk_updates",
                             "checkpoint_every", "run_dir")
                 if getattr(args, f) is not None] + (["set"] if args.set else [])
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(f"--resume continues a run with its saved settings; drop {flag} "
                              "(or start a new run with --config RUN_DIR/config.json).")
        folder = RunFolder.open(args.resume)
        spec = folder.read_spec()
        if folder.complete:
            print(f"{folder.path} already finished training; nothing to resume. "
                  f"Evaluate it with `rlfoundry eval {folder.path}`.")
            return 0
    else:
        spec = _spec_from_args(args)
        if args.dry_run:
            print(json.dumps(spec.to_json(), indent=2))
            return 0
        run_dir = args.run_dir or "runs/{}-{}-{}".format(
            spec.algo, getattr(spec.config, "env", "run"), time.strftime("%Y%m%d-%H%M%S"))
        folder = RunFolder.create(run_dir, spec, overwrite=args.overwrite)

    _enable_cache(args)
    from rlfoundry.experiment import runner

    err = _console(stderr=True)
    env = getattr(spec.config, "env", "?")
    verb = "Resuming" if args.resume else "Training"
    err.print(f"{verb} {spec.algo} on {env}: {len(spec.seeds)} seed(s) "
              f"{spec.seeds if len(spec.seeds) <= 8 else ''}, chunks of {spec.chunk_updates} "
              f"updates -> {folder.path}")
    out = runner.train(spec, folder, resume=bool(args.resume), progress=not args.no_progress,
                       started=started)
    if out.resumed_from is not None:
        err.print(f"(resumed from the checkpoint after {out.resumed_from} updates)")
    elif args.resume:
        err.print("(no checkpoint yet: started again from update 0)")
    if out.interrupted:
        print(f"Stopped by {out.interrupted} after {out.updates_done}/{out.total_updates} "
              f"updates; checkpoint saved in {folder.checkpoint_dir}.\n"
              f"Resume with: rlfoundry train --resume {folder.path}", flush=True)
        return EXIT_INTERRUPTED
    _print_train_table(out)
    return 0


def _print_train_table(out: Any) -> None:
    from rich.table import Table

    s = out.summary
    fr, t = s["final_return"], s["timing"]
    table = Table(title=f"{s['algo']} on {s['env']}: {s['steps_per_seed']:,} steps per seed")
    for col in ("seed", "final return", "episodes", "steps", "steps/s", "wall time (s)"):
        table.add_column(col, justify="right")
    for seed, r, n in zip(s["seeds"], fr["per_seed"], fr["episodes_per_seed"], strict=False):
        table.add_row(str(seed), _fmt(r), str(n), f"{s['steps_per_seed']:,}",
                      _fmt(t["steps_per_second_per_seed"], 0), _fmt(t["wall_seconds"]))
    con = _console()
    con.print(table)
    con.print(
        f"final return over seeds: mean {_fmt(fr['mean'])} (95% CI {_fmt(fr['ci95'][0])} .. "
        f"{_fmt(fr['ci95'][1])}), IQM {_fmt(fr['iqm'])}\n"
        f"throughput: {_fmt(t['steps_per_second'], 0)} steps/s over all seeds; wall time "
        f"{_fmt(t['wall_seconds'])} s including {_fmt(t['compile_seconds'])} s compile\n"
        f"({fr['definition']}; seeds ran together, so wall time and steps/s are shared)"
    )
    f = out.folder
    con.print(f"run folder: {f.path}\nplot:       {f.plots_dir / 'learning_curve.png'}\n"
              f"report:     {f.report_path}\n"
              f"next:       rlfoundry eval {f.path} --episodes 100")


def _enable_cache(args: argparse.Namespace) -> None:
    from rlfoundry.experiment import compile_cache

    compile_cache.enable(getattr(args, "compile_cache", None))


# --- eval / render / plot / compare -------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    from rlfoundry.experiment.runfolder import RunFolder

    folder = RunFolder.open(args.run)
    _enable_cache(args)
    if args.mazes:
        return _eval_mazes(folder, args)
    if _is_text_run(folder):
        return _eval_text(folder, args)
    from rlfoundry.experiment.evaluate import evaluate

    res = evaluate(folder, episodes=args.episodes, deterministic=args.deterministic,
                   seed=args.seed, seed_index=args.seed_index, checkpoint=args.checkpoint,
                   max_steps=args.max_steps)
    from rich.table import Table

    table = Table(title=f"{res.algo} on {res.env}: {args.episodes} "
                  f"{'deterministic' if args.deterministic else 'stochastic'} episodes per seed "
                  f"(checkpoint after {res.update} updates)")
    for col in ("seed", "mean return", "std", "mean length"):
        table.add_column(col, justify="right")
    for i, s in enumerate(res.seeds):
        r = res.returns[i]
        table.add_row(str(s), _fmt(r.mean()), _fmt(r.std(ddof=1) if r.size > 1 else 0.0),
                      _fmt(res.lengths[i].mean()))
    con = _console()
    con.print(table)
    summary = res.summary()
    con.print(f"mean return {_fmt(summary['mean_return'], 2)} ± {_fmt(summary['std_return'], 2)}"
              f" (std), 95% CI {_fmt(summary['ci95'][0], 2)} .. {_fmt(summary['ci95'][1], 2)}, "
              f"{summary['episodes']} episodes")
    if summary["unfinished"]:
        con.print(f"note: {summary['unfinished']} episode(s) hit the {res.max_steps}-step cap "
                  "and count with their return so far")
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0


def _eval_mazes(folder: Any, args: argparse.Namespace) -> int:
    from rich.table import Table

    from rlfoundry.experiment.maze_eval import evaluate_mazes

    episodes = min(args.episodes, 100)
    res = evaluate_mazes(folder, args.mazes, episodes=episodes,
                         deterministic=args.deterministic, seed=args.seed,
                         checkpoint=args.checkpoint)
    table = Table(title=f"solve rate on {len(res['per_maze'])} maze(s), {episodes} episodes "
                  f"per maze and seed, {len(res['seeds'])} seed(s)")
    for col in ("maze", "solve rate", "95% CI", "mean return"):
        table.add_column(col, justify="right")
    for name, d in res["details"].items():
        table.add_row(name, _fmt(d["solve_rate"], 2),
                      f"{_fmt(d['ci95'][0], 2)} .. {_fmt(d['ci95'][1], 2)}",
                      _fmt(d["mean_return"], 3))
    con = _console()
    con.print(table)
    con.print(f"mean solve rate {_fmt(res['solve_rate'], 3)} (95% CI "
              f"{_fmt(res['ci95'][0], 3)} .. {_fmt(res['ci95'][1], 3)})")
    if args.json:
        out = {k: v for k, v in res.items() if k != "details"}
        print(json.dumps(out), flush=True)
    return 0


def _is_text_run(folder: Any) -> bool:
    from rlfoundry.language.transcript import is_text_run

    return is_text_run(folder.read_spec().config)


def _eval_text(folder: Any, args: argparse.Namespace) -> int:
    from rlfoundry.language.transcript import eval_run

    res = eval_run(folder, episodes=args.episodes, seed=args.seed, seed_index=args.seed_index,
                   greedy=args.deterministic, checkpoint=args.checkpoint)
    for s, r in res["per_seed"].items():
        print(f"seed {s}: success {r['success']:.3f}, mean return {r['mean_return']:.3f}, "
              f"mean turns {r['mean_turns']:.2f}")
    print(f"{res['algo']} on {res['env']} after {res['update']} updates: success "
          f"{res['success']:.3f} over {args.episodes} {'greedy' if res['greedy'] else 'sampled'}"
          " dialogues per seed")
    if args.json:
        print(json.dumps(res), flush=True)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from rlfoundry.experiment.runfolder import RunFolder

    folder = RunFolder.open(args.run)
    _enable_cache(args)
    if _is_text_run(folder):  # language agents: print transcripts instead of a GIF
        from rlfoundry.language.transcript import render_run

        text = render_run(folder, episodes=args.episodes, seed_index=args.seed_index,
                          seed=args.seed, greedy=not args.stochastic,
                          checkpoint=args.checkpoint)
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
        return 0
    from rlfoundry.experiment.render import render

    spec = folder.read_spec()
    if getattr(spec.config, "env", None) == "Maze" and hasattr(spec.config, "curriculum"):
        return _render_maze(folder, args)
    out = args.out or str(folder.videos_dir / "episode.gif")
    res = render(folder, out, episodes=args.episodes, seed_index=args.seed_index,
                 seed=args.seed, deterministic=not args.stochastic,
                 max_frames=args.max_frames, fps=args.fps, checkpoint=args.checkpoint)
    print(f"wrote {res['path']}: {res['frames']} frames, {res['episodes']} episode(s), "
          f"returns {', '.join(_fmt(r) for r in res['returns'])}")
    return 0


def _render_maze(folder: Any, args: argparse.Namespace) -> int:
    from rlfoundry.experiment.maze_render import render_maze_run

    out = args.out or str(folder.videos_dir)
    if out.lower().endswith(".gif"):
        raise ConfigError(f"--out {out}: a maze run renders a PNG and a GIF, so --out names "
                          "a folder; drop the .gif.")
    res = render_maze_run(folder, out, maze=args.maze, top=args.top,
                          seed_index=args.seed_index, seed=args.seed,
                          deterministic=not args.stochastic, max_frames=args.max_frames,
                          fps=args.fps, checkpoint=args.checkpoint)
    print(f"wrote {res['levels_png']}: top {res['levels']} level(s) of the curriculum")
    print(f"wrote {res['gif']}: {res['frames']} frames on {res['maze']}, "
          f"{'solved' if res['solved'] else 'not solved'} (return {_fmt(res['return'])})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from rlfoundry.experiment.report import learning_curve, write_report
    from rlfoundry.experiment.runfolder import RunFolder

    folder = RunFolder.open(args.run)
    png = learning_curve(folder, args.out, args.metric)
    report = write_report(folder, png)
    print(f"plot:   {png}\nreport: {report}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rlfoundry.experiment.compare import compare

    labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
    res = compare(args.runs, out=args.out, labels=labels, metric=args.metric,
                  normalize=args.normalize, reps=args.reps)
    from rich.table import Table

    con = _console()
    table = Table(title="final return per run (IQM and mean over seeds, 95% CIs)")
    for col in ("run", "label", "env", "seeds", "IQM", "IQM 95% CI", "mean", "mean 95% CI"):
        table.add_column(col, justify="right")
    for r in res["runs"]:
        table.add_row(r["run"], r["label"], r["env"], str(r["seeds"]), _fmt(r["iqm"]),
                      f"{_fmt(r['iqm_ci95'][0])} .. {_fmt(r['iqm_ci95'][1])}", _fmt(r["mean"]),
                      f"{_fmt(r['mean_ci95'][0])} .. {_fmt(r['mean_ci95'][1])}")
    con.print(table)
    if res["aggregate"]:
        table = Table(title=f"aggregate across tasks ({res['normalize']} normalised scores, "
                      "stratified bootstrap)")
        for col in ("label", "tasks", "runs", "IQM", "IQM 95% CI", "mean", "mean 95% CI"):
            table.add_column(col, justify="right")
        for a in res["aggregate"]:
            table.add_row(a["label"], str(a["tasks"]), str(a["runs"]), _fmt(a["iqm"], 3),
                          f"{_fmt(a['iqm_ci95'][0], 3)} .. {_fmt(a['iqm_ci95'][1], 3)}",
                          _fmt(a["mean"], 3),
                          f"{_fmt(a['mean_ci95'][0], 3)} .. {_fmt(a['mean_ci95'][1], 3)}")
        con.print(table)
    con.print(f"plot: {res['plot']}")
    if args.json:
        print(json.dumps(res), flush=True)
    return 0


# --- sweep --------------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    from rlfoundry.experiment import sweep as sw
    from rlfoundry.experiment.spec import parse_seeds

    resolved = _resolve(args)
    seeds = parse_seeds(args.seeds)
    trials = sw.make_trials(resolved, args.grid, args.dist, args.random, args.search_seed)
    out = args.out or f"runs/sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = sw.create_sweep_folder(out, overwrite=args.overwrite)
    _enable_cache(args)
    err = _console(stderr=True)
    groups = sw.group_trials(resolved, trials)
    err.print(f"Sweep of {len(trials)} trial(s) x {len(seeds)} seed(s) on backend "
              f"{args.backend}: {sw.describe_groups(groups, args.backend)} -> {folder}")
    if args.backend == "vmap":
        results = sw.run_vmap(resolved, trials, groups, seeds, chunk_updates=args.chunk_updates,
                              progress=not args.no_progress, log=err.print)
    else:
        results = sw.run_ray(resolved, trials, seeds, chunk_updates=args.chunk_updates,
                             address=args.ray_address, num_cpus=args.ray_cpus,
                             cache_dir=getattr(args, "compile_cache", None), log=err.print)
    table = sw.write_results(folder, results, args.metric, args.backend)
    _print_sweep(table)
    if args.json:
        print(json.dumps(table), flush=True)
    return 0


def _print_sweep(table: dict[str, Any]) -> None:
    from rich.table import Table

    keys = table["swept"]
    t = Table(title=f"sweep: final {table['metric']} per trial (mean over seeds)")
    for col in ("trial", *keys, "mean", "std", "per seed"):
        t.add_column(col, justify="right")
    best = table["best"]["trial"] if table["best"] else None
    for r in table["trials"]:
        mark = " *" if r["trial"] == best else ""
        t.add_row(r["trial"] + mark, *[str(r["settings"][k]) for k in keys], _fmt(r["mean"]),
                  _fmt(r["std"]), ", ".join(_fmt(v) for v in r["per_seed"]))
    con = _console()
    con.print(t)
    if table["best"]:
        b = table["best"]
        sets = " ".join(f"--set {k}={v}" for k, v in b["settings"].items())
        con.print(f"best: {b['trial']} ({_fmt(b['mean'])}): {sets}")
    con.print(f"results: {table['json']} and {table['csv']}")


# --- discover -----------------------------------------------------------------------------


def cmd_discover(args: argparse.Namespace) -> int:
    from rlfoundry.discovery.objective_search import DiscoveryConfig
    from rlfoundry.discovery.run import discover

    if args.resume:
        summary = discover(args.resume, resume=True, show_progress=not args.no_progress)
        run_dir = args.resume
    else:
        inner = (("total_steps", args.inner_steps),) if args.inner_steps else ()
        levels = args.curriculum != "none"
        default_env = "Gridworld-random-v0" if levels else "CartPole-v1"
        fraction = args.final_fraction or (0.25 if levels else 0.1)
        config = DiscoveryConfig(
            objective=args.objective, envs=tuple(args.env or (default_env,)),
            generations=args.generations, population=args.population, strategy=args.strategy,
            sigma=args.sigma, lr=args.es_lr, decay=args.decay, hidden=args.hidden,
            ppo_init=args.ppo_init, normalize_by_ppo=not (args.no_normalize or levels),
            final_fraction=fraction, inner=inner, curriculum=args.curriculum,
            levels=args.levels, buffer_size=args.buffer_size, replay_prob=args.replay_prob,
            antagonist=args.antagonist, backend=args.backend, ray_address=args.ray_address,
            shards=args.shards,
        )
        config.validate()
        where = f" ({args.curriculum} levels)" if levels else ""
        print(f"Discovering a {args.objective} objective on {', '.join(config.envs)}{where}: "
              f"{config.generations} generations x {config.population} inner runs -> "
              f"{args.run_dir}")
        summary = discover(args.run_dir, config, seed=args.seed, overwrite=args.overwrite,
                           show_progress=not args.no_progress)
        run_dir = args.run_dir
    last = summary["last"] or {}
    state = "finished" if summary["finished"] else "stopped (resume with --resume)"
    print(f"{state} after {summary['generations_done']} generations; last fitness "
          f"mean {_fmt(last.get('fitness_mean'), 3)}, max {_fmt(last.get('fitness_max'), 3)}; "
          f"time outside compiled code {100 * summary['host_fraction']:.1f}%")
    print(f"learned objective: {run_dir}/objective.json (use: rlfoundry train --objective "
          f"{run_dir})")
    for name, path in summary["plots"].items():
        print(f"{name}: {path}")
    return 130 if summary["interrupted"] else 0


# --- record -------------------------------------------------------------------------------


def cmd_record(args: argparse.Namespace) -> int:
    from rlfoundry.data.record import record_expert, record_run

    _enable_cache(args)
    if args.expert:
        if args.run:
            raise ConfigError("give a RUN_DIR or --expert, not both.")
        if not args.env:
            raise ConfigError(f"--expert {args.expert} needs --env (e.g. Maze-SixteenRooms).")
        path, data = record_expert(args.expert, args.env, args.episodes, args.out,
                                   seed=args.seed, max_steps=args.max_steps)
    else:
        if not args.run:
            raise ConfigError("record needs a RUN_DIR (or --expert maze_bfs --env NAME).")
        if args.env:
            raise ConfigError("--env is for --expert; a run records on its own environment.")
        path, data = record_run(args.run, args.episodes, args.out, seed=args.seed,
                                seed_index=args.seed_index, deterministic=not args.stochastic,
                                max_steps=args.max_steps)
    returns = data.episode_returns()
    print(f"wrote {path}: {data.num_episodes} episode(s), {data.num_steps} steps on "
          f"{data.meta['env']}; mean return {_fmt(float(returns.mean()), 3)} "
          f"(min {_fmt(float(returns.min()), 3)}, max {_fmt(float(returns.max()), 3)})")
    print(f"next: rlfoundry train --env {data.meta['env']} --bc-data {path}")
    return 0


# --- reward learning ----------------------------------------------------------------------


def cmd_reward_model(args: argparse.Namespace) -> int:
    import jax

    from rlfoundry.algos.base import make_env_stack
    from rlfoundry.algos.ppo import PPOConfig
    from rlfoundry.envs import env_spec
    from rlfoundry.rewards.preferences import learn_from_preferences, save_reward_model

    env_spec(args.env)
    _enable_cache(args)
    config = PPOConfig(env=args.env)
    model, params, stats = learn_from_preferences(config, jax.random.PRNGKey(args.seed),
                                                  pairs=args.pairs, length=args.length,
                                                  steps=args.steps)
    stack = make_env_stack(config, num_envs=1)
    path = save_reward_model(args.out, model, params, args.env, stack.obs_shape)
    print(f"wrote {path}: {stats['strict_pairs']} strict preferences, training accuracy "
          f"{stats['train_accuracy']:.3f}, loss {stats['final_loss']:.3f}")
    print(f"next: rlfoundry train --env {args.env} --set reward.model={path}")
    return 0


def _read_code(path: str, name: str = "reward") -> str:
    from pathlib import Path

    from rlfoundry.rewards.code import check_source

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"reward code file {path!r} not found; check the path.")
    text = p.read_text(encoding="utf-8")
    check_source(text.replace("{c}", "1.0"), name, where=str(p))
    return text


def cmd_blend(args: argparse.Namespace) -> int:
    import jax

    from rlfoundry.config import set_path
    from rlfoundry.rewards.blend import BlendSearch

    resolved = _resolve(args)
    config = set_path(resolved.config, "reward.aux", [_read_code(f) for f in args.aux])
    _enable_cache(args)
    search = BlendSearch(config, population=args.population, generations=args.generations,
                         sigma=args.sigma, lr=args.es_lr)
    out = search.run(jax.random.PRNGKey(args.seed), log=print)
    weights = ", ".join(f"{w:.3f}" for w in out["weights"])
    print(f"learned weights ({', '.join(args.aux)}): {weights}")
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(json.dumps({"aux": args.aux, **out}, indent=2))
        print(f"wrote {args.out}")
    return 0


def cmd_design_reward(args: argparse.Namespace) -> int:
    import os

    from rlfoundry.rewards.designer import CoefficientDesigner, HTTPDesigner, design_reward

    resolved = _resolve(args)
    if args.url:
        designer: Any = HTTPDesigner(args.url, model=args.model,
                                     api_key=os.environ.get(args.api_key_env))
    elif args.template:
        designer = CoefficientDesigner(_read_code(args.template))
    else:
        raise ConfigError("design-reward needs --template FILE (with a {c} coefficient) or "
                          "--url of a chat endpoint.")
    _enable_cache(args)
    out = design_reward(resolved.config, designer, args.task, rounds=args.rounds,
                        seeds=args.design_seeds, log=print)
    best = out["best"]
    if best:
        print(f"best: round {best['round']} with task return {best['success']:.2f}:\n"
              f"{best['source']}")
    else:
        print("no proposal was accepted.")
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.out}")
    return 0


# --- list ---------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    con = _console()
    if args.what == "presets":
        from rlfoundry.experiment.presets import load_preset, preset_names

        t = Table(title="presets (use with --preset NAME)")
        for col in ("name", "algo", "env", "description"):
            t.add_column(col)
        for name in preset_names():
            p = load_preset(name)
            t.add_row(name, p.algo, str(p.config.get("env", "")), p.description)
    elif args.what == "algos":
        from rlfoundry.algos import ALGORITHMS

        t = Table(title="algorithms (use with --algo NAME)")
        for col in ("name", "action spaces", "description"):
            t.add_column(col)
        for name, a in ALGORITHMS.items():
            t.add_row(name, ", ".join(a.action_spaces), a.description)
    else:
        from rlfoundry.envs import env_names, env_spec

        t = Table(title="environments (use with --env NAME)")
        for col in ("name", "family", "note"):
            t.add_column(col)
        for name in env_names():
            spec = env_spec(name)
            t.add_row(name, spec.family, "downloads data; unavailable" if spec.needs_download
                      else "")
    con.print(t)
    return 0


# --- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except RLFoundryError as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; nothing saved since the last checkpoint.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
