"""Learners. Each module reads like its paper's pseudo-code; shared pieces live in
:mod:`rollout`, :mod:`advantages` and :mod:`minibatch`."""

from rlfoundry.algos.base import Algorithm
from rlfoundry.algos.ppo import PPO, PPOConfig

ALGORITHMS: dict[str, Algorithm] = {"ppo": PPO}

__all__ = ["ALGORITHMS", "PPO", "Algorithm", "PPOConfig"]
