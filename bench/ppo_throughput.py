"""PPO training throughput on CartPole-v1: rlfoundry vs rejax vs Stable-Baselines3, in one run.

Why: to know what rlfoundry's generality (pluggable objectives, chunked host loop, truncation
bootstrapping, metrics) costs against a lean JAX PPO (rejax, PureJaxRL-style) and against
the usual PyTorch baseline (SB3), on the same machine, settings and run.

Settings (rlfoundry's ``PPOConfig()`` defaults, passed to the peers): 4 envs x 128 steps per
update, 4 epochs x 4 minibatches, lr 2.5e-4 annealed linearly per update, gamma 0.99, GAE
lambda 0.95, clip 0.2, entropy 0.01, value 0.5, max grad norm 0.5, separate 64x64 tanh actor
and critic; 500k env steps (976 updates x 512, the same whole number of updates for both
JAX implementations). The differences that remain are printed under the table.

How it measures (wall clock, ``time.perf_counter``, one seed unless said):
- JAX implementations: ``compile s`` is tracing + lowering + XLA compilation, measured ahead
  of time (rlfoundry: the first, compiling call of ``Trainer.init`` plus
  ``Trainer.compile_seconds``, the AOT compile of the chunk program; rejax:
  ``jax.jit(algo.train).lower(key).compile()``). Each then makes one untimed warm-up call,
  then ``--repeats`` timed calls of the already-compiled program, rejax's and rlfoundry's
  alternating (rejax waits in its process for each request), so machine load hits both
  alike; ``run s`` is the best of them (medians and all runs are in the JSON).
  The JSON also has each timed run's process CPU time (``*_cpus_s``, all threads).
  rlfoundry's run is a whole ``Trainer.run()`` (init, all 976 updates in one chunk,
  metrics copied to the host); rejax's is ``compiled(key)`` until ready. steps/s = env
  steps / run s. The vmapped 8-seed row is one run: its first ``run()`` minus the
  ``compile_seconds`` spent inside it.
- rejax's periodic evaluation is off (its eval callback returns nothing); its final return
  is the mean of 128 episodes of the final stochastic policy, run afterwards with rejax's
  own ``evaluate``. rlfoundry's and SB3's final return is the mean return of the training
  episodes that ended in the last 5% of training (episode-count weighted).
- SB3 (PyTorch, one CPU thread, DummyVecEnv of 4) trains ``--sb3-steps`` (default 100k:
  it runs at a few thousand steps/s) with lr annealed over that budget, so its final
  return is at 100k steps, not 500k; it has no compile step.
- rejax and SB3 run in their own virtualenv (``.peers/venv``, created on first use with the
  pinned versions below: rejax 0.1.3 needs gymnax<1.0) as subprocesses of
  ``bench/ppo_peers.py`` that print one JSON line. Its jax is pinned to the main venv's,
  so the JAX comparison is of implementations, not XLA versions. Environment variables
  (e.g. ``XLA_FLAGS``) reach both.
- Both JAX processes run XLA single-threaded unless ``--xla-threads``: its matrix kernels
  (``--xla_cpu_multi_thread_eigen=false``) and each compiled program (``PJRT_NPROC=1``,
  which ``RLFOUNDRY_XLA_THREADS=1`` sets). By default XLA's CPU runtime runs independent
  operations of a program on a pool of one thread per core; for programs of this size the
  hand-offs cost more than they gain (rlfoundry 3.4 s on two threads vs 3.0 s on one, with
  the process using more CPU than wall time), and the single-threaded peer is the fair one.
- Run nothing else heavy meanwhile: on 2 cores another process easily costs 30%.
  ``taskset -c 0`` (the peers' processes inherit it) pins the whole run to one core.

Output: a table, then, as the last line, one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / ".peers" / "venv"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
PEERS_HELPER = Path(__file__).resolve().parent / "ppo_peers.py"
PEERS_STAMP = PEERS_VENV / "bench-pins.txt"
# torch 2.13.0 exactly: pip takes the CPU wheel that lies on this machine's disk (any other
# spec pulls a multi-GB CUDA build). jax/flax/optax/distrax pinned to the main venv's.
TORCH_PIN = "torch==2.13.0"
PEER_PINS = (
    "rejax==0.1.3",
    "gymnax==0.0.9",  # the last gymnax with the five-value step rejax 0.1.3 unpacks
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "distrax==0.1.9",
    "chex==0.1.92",
    "tfp-nightly==0.26.0.dev20261027",
    "numpy==2.4.6",
    "stable-baselines3==2.9.2",
    "gymnasium==1.3.0",
    TORCH_PIN,
)
FINAL_FRACTION = 0.05
SINGLE_THREADED_XLA = "--xla_cpu_multi_thread_eigen=false"


def run_xla_single_threaded() -> None:
    """Before jax is imported (the peers' processes inherit it): XLA's matrix kernels and
    its compiled programs on one thread each (``PJRT_NPROC=1``, what
    ``RLFOUNDRY_XLA_THREADS=1`` sets), for every JAX implementation alike."""
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} {SINGLE_THREADED_XLA}".strip()
    os.environ["PJRT_NPROC"] = "1"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def ensure_peers() -> None:
    """Create ``.peers/venv`` with PEER_PINS unless it already holds exactly them."""
    pins = "\n".join(PEER_PINS) + "\n"
    if PEERS_PYTHON.exists() and PEERS_STAMP.exists() and PEERS_STAMP.read_text() == pins:
        return
    if not PEERS_PYTHON.exists():
        log(f"creating {PEERS_VENV} (first run only; a few minutes)")
        # This interpreter: the torch wheel on disk is for its Python version.
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(PEERS_PYTHON), "-m", "pip", "install", "-q"]
    log(f"installing into {PEERS_VENV}: {' '.join(PEER_PINS)}")
    subprocess.run([*pip, TORCH_PIN], check=True)
    subprocess.run([*pip, *PEER_PINS], check=True)
    PEERS_STAMP.write_text(pins)


def peer_command(impl: str, hp: dict, total_steps: int, repeats: int, seed: int) -> list[str]:
    return [
        str(PEERS_PYTHON), str(PEERS_HELPER), impl, "--total-steps", str(total_steps),
        "--repeats", str(repeats), "--seed", str(seed), "--hp", json.dumps(hp),
    ]


def run_peer(impl: str, hp: dict, total_steps: int, seed: int) -> dict:
    """Run a peer to completion; its progress goes to our stderr, its JSON line to us."""
    log(f"{impl}: training {total_steps} steps in the peers venv")
    cmd = peer_command(impl, hp, total_steps, 1, seed)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{impl} failed (exit {proc.returncode}):\n{proc.stdout}")
    return json.loads(lines[-1])


class RejaxPeer:
    """A rejax learner (``impl``: rejax = PPO, rejax-dqn, rejax-sac, rejax-td3) in a
    peers-venv process that compiles once, then times one run per request, so its timed
    runs can alternate with rlfoundry's under the same machine load."""

    def __init__(self, hp: dict, total_steps: int, seed: int, impl: str = "rejax") -> None:
        log(f"{impl}: compiling {total_steps} steps in the peers venv")
        cmd = [*peer_command(impl, hp, total_steps, 1, seed), "--serve"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.ready = self._read()

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"rejax failed (exit {self.proc.wait()}); see its output above")

    def _send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def run(self) -> float:
        self._send("run")
        return self._read()["run_s"]

    def finish(self) -> dict:
        self._send("done")
        result = self._read()
        self.proc.wait()
        return result


class RlfoundryBench:
    """rlfoundry's side: compile, warm up, then one timed ``Trainer.run()`` per ``run``."""

    def __init__(self, cfg, seeds: int) -> None:
        import jax

        import rlfoundry as rf

        self.seeds = seeds
        self.tr = tr = rf.Trainer(cfg, seeds=seeds, chunk_updates=max(1000, cfg.total_steps))
        t0 = time.perf_counter()
        jax.block_until_ready(tr.init())  # init's first call: compile + run (run is tiny)
        self.init_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, self.metrics = tr.run()  # AOT-compiles the chunk program, then runs (warm-up)
        self.first_run_s = time.perf_counter() - t0 - tr.compile_seconds
        self.runs: list[float] = []
        self.cpus: list[float] = []

    def run(self) -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        _, self.metrics = self.tr.run()
        self.runs.append(time.perf_counter() - t0)
        self.cpus.append(time.process_time() - c0)
        log(f"rlfoundry x{self.seeds}: run {len(self.runs)} {self.runs[-1]:.2f}s "
            f"(cpu {self.cpus[-1]:.2f}s)")
        return self.runs[-1]

    def result(self) -> dict:
        tr, runs = self.tr, self.runs or [self.first_run_s]
        return {
            "cpu_s": min(self.cpus) if self.cpus else None, "cpus_s": self.cpus,
            "impl": "rlfoundry", "seeds": self.seeds, "updates": tr.total_updates,
            "steps": tr.total_updates * tr.steps_per_update * tr.num_seeds,
            "compile_s": self.init_s + tr.compile_seconds, "init_first_call_s": self.init_s,
            "first_run_s": self.first_run_s, "run_s": min(runs),
            "run_s_median": statistics.median(runs), "runs_s": runs,
            "final_return": final_return(self.metrics),
        }


def shared_hyperparameters(cfg) -> dict:
    """The settings the peers are given, read from rlfoundry's config."""
    return {
        "num_envs": cfg.num_envs, "num_steps": cfg.num_steps,
        "update_epochs": cfg.update_epochs, "num_minibatches": cfg.num_minibatches,
        "lr": float(cfg.lr), "gamma": float(cfg.gamma), "gae_lambda": float(cfg.gae_lambda),
        "clip_eps": float(cfg.objective.clip_eps), "ent_coef": float(cfg.ent_coef),
        "vf_coef": float(cfg.vf_coef), "max_grad_norm": float(cfg.max_grad_norm),
        "hidden_sizes": list(cfg.hidden_sizes), "activation": cfg.activation,
    }


def final_return(metrics: dict) -> float:
    """Episode-count-weighted mean return over the last 5% of updates (and all seeds)."""
    returns, episodes = metrics["episode_return"], metrics["episodes"]
    k = max(1, round(FINAL_FRACTION * returns.shape[1]))
    weights = episodes[:, -k:]
    return float((returns[:, -k:] * weights).sum() / max(weights.sum(), 1.0))


def differences(cfg) -> list[str]:
    """Settings the three cannot share, as configured here (checked against their source)."""
    ours_vclip = (
        f"clipped ({float(cfg.vf_clip)})" if cfg.clip_value else "unclipped"
    )
    return [
        "grad clipping: rlfoundry and SB3 clip the global norm of all gradients to 0.5; "
        "rejax applies optax.clip(0.5), element-wise, separately to actor and critic.",
        "optimiser: rlfoundry one Adam (eps 1e-5) on the joint loss; SB3 the same (eps 1e-5); "
        "rejax two Adams (optax eps 1e-8), actor and critic losses backpropagated separately.",
        f"value loss: rlfoundry 0.5*MSE, {ours_vclip}; rejax 0.5*max(MSE, clipped MSE) with "
        "clip_eps 0.2 (always); SB3 plain MSE (no 0.5 factor, so vf_coef 0.5 weighs it 2x), "
        "unclipped (clip_range_vf=None; SB3's clipping is a different formula).",
        "time limit (500 steps): rlfoundry and SB3 bootstrap truncated episodes from "
        "V(final obs); rejax treats truncation as termination.",
        "init: rlfoundry and SB3 orthogonal (sqrt 2 hidden, 0.01 policy head, 1 value head); "
        "rejax flax defaults (lecun normal).",
        "lr annealing: rlfoundry and rejax (given a schedule) per update, to 0 at 976 updates; "
        "SB3 per update over its own, shorter budget.",
        f"observation normalisation: off in all three (rlfoundry normalize_observations="
        f"{cfg.normalize_observations}, rejax normalize_observations=False, SB3 no "
        "VecNormalize); no reward scaling in any.",
        "final return: rejax from 128 evaluation episodes after training (rejax keeps no "
        "training returns); rlfoundry and SB3 from training episodes in the last 5%.",
    ]


def fmt(x: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if x is None else format(x, spec) + unit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--total-steps", type=int, default=500_000, help="JAX implementations")
    p.add_argument("--sb3-steps", type=int, default=100_000, help="SB3's (shorter) budget")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per JAX impl (best)")
    p.add_argument("--vmap-seeds", type=int, default=8, help="extra rlfoundry row; 0: skip")
    p.add_argument("--skip-rejax", action="store_true")
    p.add_argument("--skip-sb3", action="store_true")
    p.add_argument("--seed", type=int, default=0, help="peers' seed (rlfoundry: seeds 0..)")
    p.add_argument("--xla-threads", action="store_true",
                   help="keep XLA's default threads (multi-threaded kernels, one thread per core "
                         "per program); default: one thread for every JAX implementation")
    a = p.parse_args()
    repeats = max(1, a.repeats)
    if not a.xla_threads:
        run_xla_single_threaded()

    import jax
    from rich.console import Console
    from rich.table import Table

    import rlfoundry as rf

    if f"jax=={jax.__version__}" not in PEER_PINS:
        log(f"warning: main venv has jax {jax.__version__}, the peers are pinned to another; "
            "update PEER_PINS so both JAX implementations run the same XLA")
    cfg = rf.PPOConfig(total_steps=a.total_steps)
    hp = shared_hyperparameters(cfg)
    if not (a.skip_rejax and a.skip_sb3):
        ensure_peers()

    load_start = os.getloadavg()[0]
    # rejax and rlfoundry compile, then their timed runs alternate (same load for both).
    peer = None if a.skip_rejax else RejaxPeer(hp, a.total_steps, a.seed)
    log("rlfoundry: 1 seed, compiling")
    bench = RlfoundryBench(cfg, 1)
    for _ in range(repeats):
        if peer:
            peer.run()
        bench.run()
    rejax = peer.finish() if peer else None
    ours = bench.result()
    vmapped = None
    if a.vmap_seeds > 1:  # one run, timed as its first run() minus the compile inside it
        log(f"rlfoundry: {a.vmap_seeds} seeds vmapped, compiling and running once")
        vmapped = RlfoundryBench(cfg, a.vmap_seeds).result()
    sb3 = None if a.skip_sb3 else run_peer("sb3", hp, a.sb3_steps, a.seed)

    def sps(r: dict | None) -> float | None:
        return None if r is None else r["steps"] / r["run_s"]

    def ratio(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else x / y

    table = Table(title=f"PPO on CartPole-v1, {os.cpu_count()} CPU cores, best of {repeats} "
                  "timed runs (JAX)")
    cols = ("implementation", "env steps", "compile s", "run s", "median s", "steps/s",
            "final return")
    for col in cols:
        table.add_column(col, justify="left" if col == "implementation" else "right")
    rows = [(f"rlfoundry {rf.__version__} (1 seed)", ours)]
    if vmapped:
        rows.append((f"rlfoundry ({a.vmap_seeds} seeds, vmapped)", vmapped))
    if rejax:
        rows.append((f"rejax {rejax['version']} (gymnax {rejax['gymnax_version']})", rejax))
    if sb3:
        rows.append((f"SB3 {sb3['version']} (torch {sb3['torch_version']}, "
                     f"{sb3['torch_threads']} thread; {sb3['steps'] // 1000}k steps)", sb3))
    for name, r in rows:
        table.add_row(
            name, f"{r['steps']:,}", fmt(r.get("compile_s"), ".1f"), f"{r['run_s']:.2f}",
            fmt(r.get("run_s_median"), ".2f"), f"{sps(r):,.0f}", fmt(r["final_return"], ".1f"),
        )
    console = Console(width=120)
    console.print(table)
    ratio_rejax, ratio_sb3 = ratio(sps(ours), sps(rejax)), ratio(sps(ours), sps(sb3))
    load = (load_start, os.getloadavg()[0])
    console.print(f"1-min load average at start / end: {load[0]:.1f} / {load[1]:.1f} "
                  f"(on {os.cpu_count()} cores; above ~1 the timings share the CPU)")
    console.print(f"rlfoundry / rejax throughput: {fmt(ratio_rejax, '.2f', 'x')}   "
                  f"rlfoundry / SB3 throughput: {fmt(ratio_sb3, '.1f', 'x')}")
    if sb3:
        console.print(f"SB3 trained {sb3['steps']:,} steps (--sb3-steps); its final return is "
                      f"at that budget, not at {ours['steps']:,}.")
    console.print("Differences between the implementations:")
    for line in differences(cfg):
        console.print(f"  - {line}", highlight=False)

    def get(r: dict | None, key: str) -> float | None:
        return None if r is None else r.get(key)

    result = {
        "rlfoundry_sps": sps(ours),
        "rejax_sps": sps(rejax),
        "sb3_sps": sps(sb3),
        "rlfoundry_compile_s": ours["compile_s"],
        "rlfoundry_run_s": ours["run_s"],
        "rlfoundry_run_s_median": ours["run_s_median"],
        "rlfoundry_runs_s": ours["runs_s"],
        "rlfoundry_final_return": ours["final_return"],
        "rlfoundry_steps": ours["steps"],
        "rlfoundry_init_first_call_s": ours["init_first_call_s"],
        "rlfoundry_vmap_seeds": a.vmap_seeds if vmapped else None,
        "rlfoundry_vmap_sps": sps(vmapped),
        "rlfoundry_vmap_compile_s": get(vmapped, "compile_s"),
        "rlfoundry_vmap_run_s": get(vmapped, "run_s"),
        "rlfoundry_vmap_final_return": get(vmapped, "final_return"),
        "rejax_compile_s": get(rejax, "compile_s"),
        "rejax_run_s": get(rejax, "run_s"),
        "rejax_run_s_median": get(rejax, "run_s_median"),
        "rejax_runs_s": get(rejax, "runs_s"),
        "rejax_final_return": get(rejax, "final_return"),
        "rejax_steps": get(rejax, "steps"),
        "sb3_run_s": get(sb3, "run_s"),
        "sb3_final_return": get(sb3, "final_return"),
        "sb3_steps": get(sb3, "steps"),
        "ratio_vs_rejax": ratio_rejax,
        "ratio_vs_sb3": ratio_sb3,
        "rlfoundry_cpus_s": ours["cpus_s"],
        "rejax_cpus_s": get(rejax, "cpus_s"),
        "sb3_cpu_s": get(sb3, "cpu_s"),
        "jax_version_main": jax.__version__,
        "jax_version_peers": get(rejax, "jax_version") or get(sb3, "jax_version"),
        "rejax_version": get(rejax, "version"),
        "sb3_version": get(sb3, "version"),
        "torch_version": get(sb3, "torch_version"),
        "repeats": repeats,
        "load_avg_start_end": load,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "pjrt_nproc": os.environ.get("PJRT_NPROC"),
        "total_steps": a.total_steps,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
