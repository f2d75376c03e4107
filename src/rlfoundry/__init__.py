"""rlfoundry: reinforcement learning on JAX, where training is a pure function of
``(config, key)`` and everything a researcher varies is a vmappable pytree."""

import rlfoundry._xla_cpu  # noqa: F401  (first: XLA CPU settings before JAX starts)
from rlfoundry.algos import (
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
