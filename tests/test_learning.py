"""PPO learns: CartPole-v1 (discrete) and Pendulum-v1 (continuous) at their documented budgets.

Thresholds are met with margin on every seed tried (CartPole: seeds 0-3 all reach 500;
Pendulum preset, gSDE: 10 seeds' training returns -150 to -330 at 102k steps).
"""

from __future__ import annotations

import numpy as np
import pytest
from checks import final_returns

import rlfoundry as rf
from rlfoundry.config import from_dict
from rlfoundry.experiment.presets import load_preset


@pytest.mark.slow
def test_ppo_cartpole_solves_within_500k_steps_on_4_seeds():
    cfg = rf.PPOConfig(env="CartPole-v1", total_steps=500_000)
    _, metrics = rf.Trainer(cfg, seeds=4, chunk_updates=500).run()
    returns = final_returns(metrics)
    assert np.all(returns >= 475), returns


@pytest.mark.slow
def test_ppo_pendulum_preset_learns_within_100k_steps():
    preset = load_preset("ppo-pendulum")
    cfg = from_dict(rf.PPOConfig, preset.config)
    _, metrics = rf.Trainer(cfg, seeds=2, chunk_updates=100).run()
    returns = final_returns(metrics, fraction=0.1)
    start = final_returns({k: v[:, :3] for k, v in metrics.items()}, fraction=1.0)
    assert np.all(start < -900), start  # random policy: about -1200
    assert np.all(returns >= -400), returns
