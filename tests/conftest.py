"""Shared test settings: JAX on CPU (rlfoundry itself makes XLA's matrix kernels
single-threaded). Each compiled program keeps XLA's default thread pool, with which the
learning tests' thresholds were set: the thread count changes how XLA compiles a program
and so the last bits of its results (README, Known issues). Set before JAX initialises;
child processes (CLI runs, Ray workers) inherit it.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

# Files whose tests take longest (a serial run's --durations, heaviest first). ``make test``
# hands whole files to two workers (--dist loadfile) in collection order, so these go
# first: a long file started last would leave one worker idle while the other finishes it.
HEAVY_FIRST = ("test_onpolicy.py", "test_offpolicy.py", "test_groove.py", "test_ppo.py",
               "test_ued.py", "test_envs.py", "test_discovery.py", "test_language.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: keeps the rest
