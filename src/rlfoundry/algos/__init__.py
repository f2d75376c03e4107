"""Learners. Each module reads like its paper's pseudo-code; shared pieces live in
:mod:`rollout`, :mod:`advantages` and :mod:`minibatch`."""

from rlfoundry.algos.a2c import A2C, A2CConfig
from rlfoundry.algos.base import Algorithm
from rlfoundry.algos.pg import PG, PGConfig
from rlfoundry.algos.ppo import PPO, PPOConfig
from rlfoundry.algos.ppo_kl import PPO_KL, PPOKLConfig
from rlfoundry.algos.trpo import TRPO, TRPOConfig

ALGORITHMS: dict[str, Algorithm] = {"ppo": PPO}
ALGORITHMS.update({"a2c": A2C, "pg": PG, "ppo_kl": PPO_KL, "trpo": TRPO})

__all__ = [
    "A2C",
    "A2CConfig",
    "ALGORITHMS",
    "PG",
    "PGConfig",
    "PPO",
    "PPO_KL",
    "PPOConfig",
    "PPOKLConfig",
    "TRPO",
    "TRPOConfig",
    "Algorithm",
]
