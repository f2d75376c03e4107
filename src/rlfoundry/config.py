"""Configs are pytrees: numeric hyperparameters are leaves, structure is static.

A learner's config is a frozen dataclass whose numeric fields (learning rate, discount,
coefficients, an objective's parameters) are pytree leaves, so ``jax.vmap`` maps over
them like over seeds; fields that change the compiled program's shape (sizes, flags,
names) are static. :func:`batch_axes` builds the ``in_axes`` for a vmap over chosen
fields; :func:`to_dict`/:func:`from_dict` make the JSON a run folder stores.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

import jax
import numpy as np
from flax import struct

from rlfoundry.errors import ConfigError, suggest

C = TypeVar("C")

# Registry of config node classes by their ``kind`` name, for from_dict.
_NODE_CLASSES: dict[str, type] = {}


def static(default: Any) -> Any:
    """A field that is part of the compiled program's structure (not vmappable)."""
    return struct.field(pytree_node=False, default=default)


def leaf(default: Any) -> Any:
    """A numeric field: a pytree leaf that jit traces and vmap can batch."""
    return struct.field(pytree_node=True, default=default)


def node(default_factory: Any) -> Any:
    """A nested config (e.g. an objective) whose own leaves are vmappable."""
    return struct.field(pytree_node=True, default_factory=default_factory)


def register_node(cls: type) -> type:
    """Class decorator: lets :func:`from_dict` rebuild nested configs by their ``kind``."""
    _NODE_CLASSES[cls.kind] = cls
    return cls


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (nested configs carry their ``kind``)."""
    out: dict[str, Any] = {}
    if hasattr(cfg, "kind"):
        out["kind"] = cfg.kind
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        elif isinstance(v, (np.ndarray, jax.Array)):
            out[f.name] = np.asarray(v).tolist()
        else:
            out[f.name] = v
    return out


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of ``default``, or raise a one-line ConfigError."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{name} must be true or false, got {value!r}.")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an integer, got {value!r}.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {value!r}.") from None
            if math.isfinite(f) and f.is_integer():
                return int(f)
        raise ConfigError(f"{name} must be an integer, got {value!r}.")
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}.")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {value!r}.") from None
        if isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            return np.asarray(value, np.float32)  # a batch of values for vmap
        raise ConfigError(f"{name} must be a number, got {value!r}.")
    if default is None or isinstance(default, (np.ndarray, jax.Array)):
        if isinstance(value, (list, tuple, np.ndarray)):
            try:
                return np.asarray(value, np.float32)  # e.g. a learned objective's weights
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be a list of numbers.") from None
        return value
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name} must be a string, got {value!r}.")
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}.")
        if default and isinstance(default[0], int):
            return tuple(_coerce(f"{name}[{i}]", v, 0) for i, v in enumerate(value))
        return tuple(value)
    return value


def from_dict(cls: type[C], data: dict[str, Any], where: str = "") -> C:
    """Build a config of class ``cls`` from a (possibly partial) dict, checking names and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__} must be a mapping, got {data!r}.")
    defaults = cls()
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "kind":
            continue
        if key not in names:
            raise ConfigError(
                f"unknown setting {where + key!r}.{suggest(key, names)}"
            )
        default = getattr(defaults, key)
        if dataclasses.is_dataclass(default):
            kind = value.get("kind", default.kind) if isinstance(value, dict) else value
            if kind not in _NODE_CLASSES:
                raise ConfigError(
                    f"unknown {key} {kind!r}.{suggest(str(kind), _NODE_CLASSES)}"
                )
            node_cls = _NODE_CLASSES[kind]
            base = {} if not isinstance(value, dict) else value
            if node_cls is type(default) and isinstance(value, dict):
                base = {**to_dict(default), **value}
            kwargs[key] = from_dict(node_cls, base, where=f"{where}{key}.")
        else:
            kwargs[key] = _coerce(where + key, value, default)
    cfg = cls(**kwargs)
    return cfg


def set_path(cfg: C, path: str, value: Any) -> C:
    """Return ``cfg`` with the dotted field ``path`` (e.g. ``objective.clip_eps``) set."""
    head, _, rest = path.partition(".")
    data = to_dict(cfg)
    if rest:
        if head not in data or not isinstance(data[head], dict):
            names = [f.name for f in dataclasses.fields(cfg)]
            raise ConfigError(f"unknown setting {path!r}.{suggest(head, names)}")
        child = set_path(getattr(cfg, head), rest, value)
        return dataclasses.replace(cfg, **{head: child})
    return from_dict(type(cfg), {**{k: v for k, v in data.items()}, head: value})


def batch_axes(cfg: Any, fields: tuple[str, ...] = ()) -> Any:
    """``in_axes`` for ``jax.vmap`` over ``cfg``: axis 0 for the dotted ``fields``, else None."""
    def axes_for(obj: Any, prefix: str) -> Any:
        updates = {}
        for f in dataclasses.fields(obj):
            if not f.metadata.get("pytree_node", True):
                continue
            path = prefix + f.name
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                if path in fields:
                    updates[f.name] = jax.tree.map(lambda _: 0, v)
                else:
                    updates[f.name] = axes_for(v, path + ".")
            else:
                updates[f.name] = 0 if path in fields else None
        return obj.replace(**updates)

    known = _leaf_paths(cfg)
    for f in fields:
        if f not in known:
            raise ConfigError(f"cannot vmap over {f!r}: not a numeric setting.{suggest(f, known)}")
    return axes_for(cfg, "")


def _leaf_paths(cfg: Any, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cfg):
        if not f.metadata.get("pytree_node", True):
            continue
        v = getattr(cfg, f.name)
        out.append(prefix + f.name)
        if dataclasses.is_dataclass(v):
            out.extend(_leaf_paths(v, prefix + f.name + "."))
    return out


def check_positive_ints(cfg: Any, names: tuple[str, ...]) -> None:
    for n in names:
        v = getattr(cfg, n)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"{n} must be a positive integer, got {v!r}.")


def check_range(cfg: Any, name: str, low: float, high: float, *, low_open: bool = False) -> None:
    """Check a numeric leaf (scalar or batch of values) lies in [low, high] (or (low, high])."""
    v = getattr(cfg, name)
    if not _is_concrete(v):
        return
    arr = np.asarray(v, dtype=np.float64)
    ok = np.all(np.isfinite(arr)) and np.all(arr <= high) and (
        np.all(arr > low) if low_open else np.all(arr >= low)
    )
    if not ok:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{name} must be in {bracket}{low}, {high}], got {v!r}.")
