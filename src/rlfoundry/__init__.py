"""rlfoundry: reinforcement learning on JAX, where training is a pure function of
``(config, key)`` and everything a researcher varies is a vmappable pytree."""

import os as _os

# jaxlib 0.10.2's multi-threaded XLA CPU runtime sometimes deadlocks inside compiled
# programs; single-threaded kernels avoid it and are as fast for RL-sized networks. Takes
# effect if JAX's CPU backend has not started yet; RLFOUNDRY_XLA_THREADS=multi opts out.
if _os.environ.get("RLFOUNDRY_XLA_THREADS") != "multi" and "xla_cpu_multi_thread_eigen" not in (
    _os.environ.get("XLA_FLAGS", "")
):
    _os.environ["XLA_FLAGS"] = (
        _os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    ).strip()

from rlfoundry.algos import (  # noqa: E402
    ALGORITHMS,
    A2CConfig,
    DDPGConfig,
    DQNConfig,
    PGConfig,
    PPOConfig,
    PPOKLConfig,
    SACConfig,
    TD3Config,
    TRPOConfig,
)
from rlfoundry.curricula import UEDConfig
from rlfoundry.engine import Trainer, seed_keys, train
from rlfoundry.envs import make, register
from rlfoundry.errors import ConfigError, RLFoundryError

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "A2CConfig",
    "DDPGConfig",
    "DQNConfig",
    "PGConfig",
    "PPOKLConfig",
    "SACConfig",
    "TD3Config",
    "TRPOConfig",
    "ConfigError",
    "PPOConfig",
    "RLFoundryError",
    "Trainer",
    "UEDConfig",
    "make",
    "register",
    "seed_keys",
    "train",
]
