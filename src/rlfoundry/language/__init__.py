"""Language agents: multi-turn text environments and token-level policy gradients.

Text environments speak token ids over a declared vocabulary and run inside JAX, so a
whole dialogue (the policy generating each turn token by token, the environment
replying) is one compiled ``lax.scan``; learners (GRPO, RLOO, LOOP, token PPO) plug into
the engine like any other algorithm.
"""

from rlfoundry.envs.registry import register
from rlfoundry.language.calc import TextCalc
from rlfoundry.language.guess import TextGuess
from rlfoundry.language.keydoor import TextKeyDoor
from rlfoundry.language.text_env import TextEnv
from rlfoundry.language.trajectory import Layout, Trajectory, rollout
from rlfoundry.language.transformer import TransformerLM
from rlfoundry.language.vocab import Vocab

TEXT_ENVS = {"TextGuess-v0": TextGuess, "TextKeyDoor-v0": TextKeyDoor, "TextCalc-v0": TextCalc}
for _name, _cls in TEXT_ENVS.items():
    register(_name, _cls, family="text")

__all__ = ["TEXT_ENVS", "Layout", "TextCalc", "TextEnv", "TextGuess", "TextKeyDoor",
           "Trajectory", "TransformerLM", "Vocab", "rollout"]
