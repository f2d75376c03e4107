"""Learners. Each module reads like its paper's pseudo-code; shared pieces live in
:mod:`rollout`, :mod:`advantages` and :mod:`minibatch` (on-policy), :mod:`offpolicy`
and :mod:`replay` (off-policy)."""

from rlfoundry.algos.a2c import A2C, A2CConfig
from rlfoundry.algos.base import Algorithm
from rlfoundry.algos.dqn import DQN, DQNConfig
from rlfoundry.algos.pg import PG, PGConfig
from rlfoundry.algos.ppo import PPO, PPOConfig
from rlfoundry.algos.ppo_kl import PPO_KL, PPOKLConfig
from rlfoundry.algos.sac import SAC, SACConfig
from rlfoundry.algos.sac_discrete import SAC_DISCRETE, SACDiscreteConfig
from rlfoundry.algos.td3 import DDPG, TD3, DDPGConfig, TD3Config
from rlfoundry.algos.trpo import TRPO, TRPOConfig

ALGORITHMS: dict[str, Algorithm] = {"ppo": PPO}
ALGORITHMS.update({"a2c": A2C, "pg": PG, "ppo_kl": PPO_KL, "trpo": TRPO})
ALGORITHMS.update({"dqn": DQN, "sac": SAC, "sac_discrete": SAC_DISCRETE, "td3": TD3, "ddpg": DDPG})

# Language agents (text environments); imported last: they build on the modules above.
from rlfoundry.language.learners import LANGUAGE_ALGORITHMS  # noqa: E402

ALGORITHMS.update(LANGUAGE_ALGORITHMS)

__all__ = [
    "DDPG",
    "DQN",
    "SAC",
    "SAC_DISCRETE",
    "SACDiscreteConfig",
    "TD3",
    "DDPGConfig",
    "DQNConfig",
    "SACConfig",
    "TD3Config",
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
