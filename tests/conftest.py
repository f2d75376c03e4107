"""Shared test settings: JAX on CPU, single-threaded XLA CPU kernels.

jaxlib 0.10.2's multi-threaded CPU runtime sometimes deadlocks inside compiled programs
(every thread idle, the host waiting on a buffer); with single-threaded Eigen and one
intra-op thread the same programs run (and, on 2 cores shared by 2 pytest workers, no
slower). Set before JAX initialises; child processes inherit it.
"""

import os

_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_SINGLE_THREAD}".strip()
