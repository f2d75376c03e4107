"""Reward design: rewards as validated code, composable reward transforms, learned
reward blends and preference reward models."""

from rlfoundry.rewards.code import RewardCodeError, check_program, check_source

__all__ = ["RewardCodeError", "check_program", "check_source"]
