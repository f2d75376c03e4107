"""Policy surrogate objectives: what a policy-gradient learner maximises per sample.

An objective is a pytree (a config node) with ``surrogate(ratio, log_ratio, advantage,
progress) -> per-sample value`` to be maximised. Mirror-learning objectives write it as
``ratio * advantage - drift(ratio, advantage)`` with ``drift >= 0``; PPO's clip is one
such drift. Because an objective's numbers are pytree leaves, they vmap and evolve like
any hyperparameter, and a learned objective is just one with network weights as leaves.
"""

from rlfoundry.objectives.base import Objective, PPOClip

__all__ = ["Objective", "PPOClip"]
