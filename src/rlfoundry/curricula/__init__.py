"""Curricula: which levels (environment params) an agent trains on.

A level is an environment's params; a curriculum chooses them per reset from state kept
inside the compiled training step. :mod:`level_buffer` is Prioritized Level Replay's
buffer; :mod:`scores` are the regret estimates that rank its levels.
"""

from rlfoundry.algos import ALGORITHMS
from rlfoundry.curricula.level_buffer import LevelBuffer, level_hash
from rlfoundry.curricula.levels import LevelSpace, level_space, register_level_space
from rlfoundry.curricula.scores import max_mc, positive_value_loss
from rlfoundry.curricula.ued import UED, UEDConfig

ALGORITHMS.setdefault(UED.name, UED)

__all__ = [
    "UED", "LevelBuffer", "LevelSpace", "UEDConfig", "level_hash", "level_space", "max_mc",
    "positive_value_loss", "register_level_space",
]
