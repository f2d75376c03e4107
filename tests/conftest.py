"""Shared test settings: JAX on CPU, XLA's CPU kernels and each compiled program on one
thread (``RLFOUNDRY_XLA_THREADS=1``): the suite runs as 2 pytest workers on 2 cores, and
its programs are small, where a second thread per program only adds hand-offs. Set before
JAX initialises; child processes (CLI runs, Ray workers) inherit it.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("RLFOUNDRY_XLA_THREADS", "1")
