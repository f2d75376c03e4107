"""Policy surrogate objectives: what a policy-gradient learner maximises per sample.

An objective is a pytree (a config node) with ``surrogate(ratio, log_ratio, advantage,
progress) -> per-sample value`` to be maximised. Mirror-learning objectives write it as
``ratio * advantage - drift(ratio, advantage)`` with ``drift >= 0``; PPO's clip is one
such drift. Because an objective's numbers are pytree leaves, they vmap and evolve like
any hyperparameter, and a learned objective is just one with network weights as leaves.
The learner applies per-sample weights/masks outside the objective (a weighted mean).
"""

from rlfoundry.objectives.base import Objective, PPOClip, ppo_drift
from rlfoundry.objectives.learned import DPO, LPO, TALPO, lpo_features

OBJECTIVES = {cls.kind: cls for cls in (PPOClip, DPO, LPO, TALPO)}

__all__ = [
    "DPO", "LPO", "OBJECTIVES", "TALPO", "Objective", "PPOClip", "lpo_features", "ppo_drift",
]
