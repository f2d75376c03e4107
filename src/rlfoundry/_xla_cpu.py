"""XLA's CPU runtime settings. They must be in the environment before JAX starts its CPU
backend (importing gymnax starts it), so ``import rlfoundry`` imports this module first.

- Matrix kernels run single-threaded: Eigen's multi-threaded kernels only add contention
  for RL-sized networks.
- ``RLFOUNDRY_XLA_THREADS=N`` runs each compiled program on N threads (``PJRT_NPROC``).
  XLA runs independent operations of one program on different threads; that pays for big
  programs (PPO on MinAtar, 5 seeds: 29% less wall time on 2 cores than one thread) and
  costs small ones (PPO on CartPole: 12-20% slower than on one thread), so the default
  stays JAX's (one thread per core).
- ``RLFOUNDRY_XLA_THREADS=multi`` leaves every XLA setting at JAX's defaults.
"""

import os


def configure_xla_cpu() -> None:
    threads = os.environ.get("RLFOUNDRY_XLA_THREADS", "").strip()
    if threads == "multi":
        return
    if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
        flags = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        os.environ["XLA_FLAGS"] = flags.strip()
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise SystemExit(
                f"RLFOUNDRY_XLA_THREADS={threads!r}: use a positive thread count or 'multi'."
            )
        os.environ.setdefault("PJRT_NPROC", threads)


configure_xla_cpu()
