"""Curricula: which levels (environment params) an agent trains on.

A level is an environment's params; a curriculum chooses them per reset from state kept
inside the compiled training step. :mod:`level_buffer` is Prioritized Level Replay's
buffer; :mod:`scores` are the regret estimates that rank its levels.
"""

from rlfoundry.curricula.level_buffer import LevelBuffer, level_hash
from rlfoundry.curricula.scores import max_mc, positive_value_loss

__all__ = ["LevelBuffer", "level_hash", "max_mc", "positive_value_loss"]
