"""Learning from data: offline trajectory datasets, scripted experts and imitation."""

from rlfoundry.data.imitation import ImitationConfig, action_nll, pretrain
from rlfoundry.data.trajectories import DatasetError, Trajectories, load, record, save

__all__ = ["DatasetError", "ImitationConfig", "Trajectories", "action_nll", "load", "pretrain",
           "record", "save"]
