"""Shared test settings: JAX on CPU (rlfoundry itself makes XLA's matrix kernels
single-threaded). Each compiled program keeps XLA's default thread pool, with which the
learning tests' thresholds were set: the thread count changes how XLA compiles a program
and so the last bits of its results (README, Known issues). Set before JAX initialises;
child processes (CLI runs, Ray workers) inherit it.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
