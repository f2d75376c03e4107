"""One name space for every environment: ``make("CartPole-v1") -> (env, params)``.

Seeded with every gymnax environment under its usual name; rlfoundry's own environments
and user environments join through :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gymnax import registration as _gymnax_registration

from rlfoundry.envs.core import Environment
from rlfoundry.errors import ConfigError, suggest


@dataclass(frozen=True)
class EnvSpec:
    """How to build an environment, and what to know before building it."""

    name: str
    factory: Callable[..., Environment]
    family: str
    needs_download: bool = False


_REGISTRY: dict[str, EnvSpec] = {}


def register(
    name: str,
    factory: Callable[..., Environment],
    family: str = "user",
    needs_download: bool = False,
) -> None:
    """Make ``make(name)`` build ``factory(**kwargs)``; names are unique."""
    if name in _REGISTRY:
        raise ConfigError(f"environment {name!r} is already registered; pick another name.")
    _REGISTRY[name] = EnvSpec(name, factory, family, needs_download)


def _family(gymnax_id: str) -> str:
    if "-" in gymnax_id and not gymnax_id.split("-")[-1].startswith("v"):
        return gymnax_id.rsplit("-", 1)[-1].lower()
    return "classic_control"


for _env_id in _gymnax_registration.registered_envs:
    register(
        _env_id,
        _gymnax_registration._registry[_env_id],
        family=_family(_env_id),
        needs_download=_env_id == "MNISTBandit-bsuite",
    )


def env_names(family: str | None = None) -> list[str]:
    """Registered names, optionally only one family (classic_control, minatar, bsuite, ...)."""
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def env_spec(name: str) -> EnvSpec:
    """The spec of a registered environment, or a ConfigError suggesting close names."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ConfigError(
            f"unknown environment {name!r}.{suggest(str(name), _REGISTRY)} "
            "Run `rlfoundry list envs` to see every name."
        )
    return _REGISTRY[name]


def make(name: str, **kwargs: Any) -> tuple[Environment, Any]:
    """Build a registered environment; returns ``(env, default_params)``."""
    spec = env_spec(name)
    try:
        env = spec.factory(**kwargs)
    except TypeError as err:
        raise ConfigError(f"environment {name!r} does not accept {kwargs}: {err}") from None
    return env, env.default_params
