"""Bad input gets a one-line ConfigError naming the fix, raised before any JAX tracing."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

import rlfoundry as rf
from rlfoundry.algos import ALGORITHMS, PPO
from rlfoundry.config import from_dict, set_path
from rlfoundry.errors import ConfigError


def message(fn) -> str:
    with pytest.raises(ConfigError) as err:
        fn()
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_unknown_environment_suggests_close_names():
    text = message(lambda: rf.make("CartPol-v1"))
    assert "'CartPole-v1'" in text and "rlfoundry list envs" in text
    text = message(lambda: rf.PPOConfig(env="breakout-minatar").validate())
    assert "Breakout-MinAtar" in text


@pytest.mark.parametrize("field", ["num_envs", "num_steps", "total_steps", "update_epochs",
                                   "num_minibatches"])
@pytest.mark.parametrize("bad", [0, -3])
def test_non_positive_sizes(field, bad):
    text = message(lambda: rf.PPOConfig(**{field: bad}).validate())
    assert field in text and "positive" in text


def test_batch_must_divide_into_minibatches():
    text = message(lambda: rf.PPOConfig(num_envs=3, num_steps=5, num_minibatches=4).validate())
    assert "15" in text and "num_minibatches=4" in text and "divisor" in text


def test_budget_smaller_than_one_update():
    text = message(lambda: rf.PPOConfig(total_steps=100).validate())
    assert "total_steps" in text


@pytest.mark.parametrize(
    "field,value", [("lr", -1.0), ("gamma", 1.5), ("gae_lambda", float("nan"))]
)
def test_out_of_range_hyperparameters(field, value):
    assert field in message(lambda: rf.PPOConfig(**{field: value}).validate())


def test_continuous_only_algorithm_on_discrete_space():
    """The check every learner shares: an algorithm declares the action spaces it handles."""
    continuous_only = dataclasses.replace(PPO, name="ppo-continuous", action_spaces=("continuous",))
    from rlfoundry.algos.base import validate_common

    text = message(lambda: validate_common(rf.PPOConfig(env="CartPole-v1"), continuous_only))
    assert "continuous" in text and "CartPole-v1 is discrete" in text
    validate_common(rf.PPOConfig(env="Pendulum-v1"), continuous_only)  # accepted
    assert set(ALGORITHMS["ppo"].action_spaces) == {"discrete", "continuous"}


def test_config_dict_errors_are_one_line():
    assert "lrr" in message(lambda: from_dict(rf.PPOConfig, {"lrr": 0.1}))
    assert "must be a number" in message(lambda: from_dict(rf.PPOConfig, {"lr": "fast"}))
    assert "integer" in message(lambda: from_dict(rf.PPOConfig, {"num_envs": 2.5}))
    assert "clip_epsilon" in message(
        lambda: set_path(rf.PPOConfig(), "objective.clip_epsilon", "0.1")
    )
    cfg = set_path(rf.PPOConfig(), "objective.clip_eps", "0.1")
    assert cfg.objective.clip_eps == pytest.approx(0.1)


def test_environment_that_needs_a_download_is_refused():
    assert "download" in message(lambda: rf.PPOConfig(env="MNISTBandit-bsuite").validate())


def test_trainer_validates_before_compiling():
    message(lambda: rf.Trainer(rf.PPOConfig(num_envs=0)))


def _import_with(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``import rlfoundry`` in a fresh interpreter (its XLA settings act before JAX starts)."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("RLFOUNDRY_XLA_THREADS", "PJRT_NPROC", "XLA_FLAGS")}
    code = "import os, rlfoundry; print(os.environ.get('PJRT_NPROC'), os.environ['XLA_FLAGS'])"
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_xla_thread_setting_reaches_the_runtime_or_fails_in_one_line():
    out = _import_with({"RLFOUNDRY_XLA_THREADS": "2"})
    assert out.returncode == 0 and out.stdout.split() == [
        "2", "--xla_cpu_multi_thread_eigen=false"]
    default = _import_with({})
    assert default.stdout.split() == ["None", "--xla_cpu_multi_thread_eigen=false"]
    bad = _import_with({"RLFOUNDRY_XLA_THREADS": "two"})
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == (
        "RLFOUNDRY_XLA_THREADS='two': use a positive thread count or 'multi'.")
