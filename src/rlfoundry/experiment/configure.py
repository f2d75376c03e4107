"""Where a run's settings come from, and in which order they win.

Sources, lowest to highest precedence: the learner's defaults, a shipped preset
(``--preset``), a config file (``--config``, YAML or JSON), typed flags (``--lr``,
``--num-envs``, ...) and ``--set path=value`` overrides. Each source is checked on its
own first, so an error names the file or flag it came from; every failure is a one-line
:class:`~rlfoundry.errors.ConfigError` (the fuzz test in ``tests/test_experiment_config.py``
holds this for arbitrary YAML).

A config file is either a flat mapping of settings (``{env: ..., lr: ...}``, optionally
with ``algo``), or a document with ``algo`` and a ``config`` mapping plus run settings
(``seeds``, ``chunk_updates``, ...), which is what presets and a run's ``config.json``
look like, so ``--config runs/x/config.json`` reproduces run x.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rlfoundry.errors import ConfigError, RLFoundryError, suggest

#: Top-level keys a structured config document may have besides ``config``.
RUN_KEYS = ("seeds", "chunk_updates", "checkpoint_every", "keep_checkpoints")
_DOC_KEYS = {"algo", "config", "description", "format", "rlfoundry_version", "batched",
             "created", "command", *RUN_KEYS}

#: Typed command-line flags and the config setting each one sets.
TYPED_FLAGS = {
    "env": "env",
    "total_steps": "total_steps",
    "num_envs": "num_envs",
    "num_steps": "num_steps",
    "lr": "lr",
    "gamma": "gamma",
    "network": "network",
    "objective": "objective",
    "curriculum": "curriculum",
    "reward_code": "reward.code",
    "bc_data": "imitation.data",
}


def reward_code_setting(path: str) -> str:
    """``--reward-code FILE``: the file's text, its AST checked here so a refusal names
    the file and line (it is checked again on sample transitions with the config)."""
    from rlfoundry.rewards.code import check_source

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--reward-code file {path!r} not found; check the path.")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read --reward-code file {path!r}: {err}.") from None
    check_source(text, "reward", where=str(p))
    return text


def objective_setting(value: str) -> Any:
    """``--objective``: a built-in objective's kind (ppo_clip, dpo, lpo, ta_lpo) or the
    folder / objective.json of a discovery run, whose learned weights are loaded."""
    from rlfoundry.objectives import OBJECTIVES

    if value in OBJECTIVES:
        return value
    path = Path(value)
    if path.exists():
        from rlfoundry.config import to_dict
        from rlfoundry.discovery.run import load_objective

        return to_dict(load_objective(path))
    raise ConfigError(
        f"--objective {value!r} is neither a built-in objective "
        f"({', '.join(OBJECTIVES)}) nor an existing discovery run folder."
        f"{suggest(value, OBJECTIVES)}"
    )


@dataclasses.dataclass
class Resolved:
    """The outcome of merging every source: the learner, its config and run settings."""

    algo: str
    config: Any
    run: dict[str, Any]
    description: str = ""


def _algorithm(name: Any, where: str) -> Any:
    from rlfoundry.algos import ALGORITHMS

    if not isinstance(name, str) or name not in ALGORITHMS:
        raise ConfigError(
            f"{where}: unknown algorithm {name!r}.{suggest(str(name), ALGORITHMS)} "
            "Run `rlfoundry list algos`."
        )
    return ALGORITHMS[name]


def _guard(where: str, fn: Any, *args: Any) -> Any:
    """Run a config step, turning any failure into a one-line ConfigError naming ``where``.

    ``from_dict`` raises ConfigError for what it anticipates; anything else it trips on
    (an unhashable ``kind``, a constructor rejecting a value) is still the user's input
    being wrong, so it is reported the same way instead of as a traceback.
    """
    try:
        return fn(*args)
    except RLFoundryError as err:
        msg = str(err)
        raise type(err)(msg if msg.startswith(where) else f"{where}: {msg}") from None
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, IndexError) as err:
        raise ConfigError(f"{where}: invalid value ({type(err).__name__}: {err}).") from None


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge; a nested mapping with a different ``kind`` replaces the old one."""
    out = dict(base)
    for k, v in update.items():
        old = out.get(k)
        if isinstance(old, dict) and isinstance(v, dict) and v.get("kind", old.get("kind")) == \
                old.get("kind"):
            out[k] = merge(old, v)
        else:
            out[k] = v
    return out


def build_config(
    algo: str,
    sources: list[tuple[str, Any]],
    overrides: list[tuple[str, str, Any]] = (),
) -> Any:
    """The config of learner ``algo`` from mappings (``(where, data)``, later wins) and
    dotted overrides (``(where, path, value)``), validated."""
    from rlfoundry.config import from_dict, set_path

    learner = _algorithm(algo, "algo")
    merged: dict[str, Any] = {}
    for where, data in sources:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: settings must be a mapping of name: value, got "
                              f"{type(data).__name__}.")
        _guard(where, from_dict, learner.config_cls, data)  # blame the right source
        merged = merge(merged, data)
    config = _guard(sources[-1][0] if sources else "config", from_dict, learner.config_cls,
                    merged)
    for where, path, value in overrides:
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{where}: empty setting name.")
        config = _guard(where, set_path, config, path, value)
    try:
        config.validate()
    except RLFoundryError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, IndexError) as err:
        raise ConfigError(f"invalid settings ({type(err).__name__}: {err}).") from None
    return config


def load_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file (YAML is a superset of JSON)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found; check the path.")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {str(p)!r}: {err}.") from None
    return parse_text(text, str(p))


def parse_text(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or type(err).__name__
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where} is not valid YAML/JSON: {problem}{at}.") from None
    except (ValueError, RecursionError) as err:  # e.g. huge ints or deep nesting
        raise ConfigError(f"{where} is not valid YAML/JSON: {type(err).__name__}.") from None


def split_document(data: Any, where: str) -> tuple[str | None, dict[str, Any], dict[str, Any], str]:
    """``(algo, settings, run settings, description)`` from a flat or structured document."""
    if data is None:
        return None, {}, {}, ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a mapping of settings, got {type(data).__name__}.")
    if any(not isinstance(k, str) for k in data):
        bad = next(k for k in data if not isinstance(k, str))
        raise ConfigError(f"{where}: setting names must be strings, got {bad!r}.")
    algo = data.get("algo")
    if algo is not None and not isinstance(algo, str):
        raise ConfigError(f"{where}: algo must be a name like 'ppo', got {algo!r}.")
    if "config" in data:
        unknown = [k for k in data if k not in _DOC_KEYS]
        if unknown:
            raise ConfigError(
                f"{where}: unknown top-level key {unknown[0]!r}.{suggest(unknown[0], _DOC_KEYS)}"
                " Settings go under 'config:'."
            )
        settings = data["config"] if data["config"] is not None else {}
        if not isinstance(settings, dict):
            raise ConfigError(f"{where}: 'config' must be a mapping of settings.")
        run = {k: data[k] for k in RUN_KEYS if k in data}
        desc = data.get("description", "")
        return algo, settings, run, desc if isinstance(desc, str) else ""
    settings = {k: v for k, v in data.items() if k != "algo"}
    return algo, settings, {}, ""


def parse_assignment(item: str) -> tuple[str, Any]:
    """``"objective.clip_eps=0.1"`` → ``("objective.clip_eps", "0.1")``.

    Values stay strings (the config coerces them to the setting's type) except lists and
    mappings written in YAML flow style, e.g. ``hidden_sizes=[128,128]``.
    """
    path, sep, raw = item.partition("=")
    path = path.strip()
    if not sep or not path:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. --set lr=3e-4), got {item!r}.")
    raw = raw.strip()
    if raw[:1] in ("[", "{"):
        return path, parse_text(raw, f"--set {path!r}")
    return path, raw


def resolve(
    algo: str | None = None,
    preset: str | None = None,
    config_file: str | None = None,
    flags: dict[str, Any] | None = None,
    sets: list[str] = (),
) -> Resolved:
    """Merge every source of settings (see the module docstring) into one :class:`Resolved`."""
    from rlfoundry.experiment.presets import load_preset

    sources: list[tuple[str, Any]] = []
    run: dict[str, Any] = {}
    chosen: list[tuple[str, str]] = []  # (where, algo) in precedence order
    description = ""
    if preset is not None:
        p = load_preset(preset)
        chosen.append((f"preset {preset!r}", p.algo))
        sources.append((f"preset {preset!r}", p.config))
        description = p.description
    if config_file is not None:
        doc_algo, settings, doc_run, desc = split_document(
            load_document(config_file), f"config file {config_file!r}"
        )
        if doc_algo is not None:
            chosen.append((f"config file {config_file!r}", doc_algo))
        sources.append((f"config file {config_file!r}", settings))
        run.update(doc_run)
        description = desc or description
    if algo is not None:
        for where, other in chosen:
            if other != algo:
                raise ConfigError(
                    f"--algo {algo} conflicts with {where}, which is for {other}; drop one."
                )
        chosen.append(("--algo", algo))
    name = chosen[-1][1] if chosen else "ppo"
    flags = dict(flags or {})
    if flags.get("curriculum") is not None and name == "ppo":
        name = "ued"  # PPO on a curriculum of levels
    if flags.get("objective") is not None:
        flags["objective"] = objective_setting(flags["objective"])
    if flags.get("reward_code") is not None:
        flags["reward_code"] = reward_code_setting(flags["reward_code"])
    _algorithm(name, chosen[-1][0] if chosen else "algo")
    overrides: list[tuple[str, str, Any]] = []
    for dest, value in flags.items():
        if value is not None:
            overrides.append((f"--{dest.replace('_', '-')}", TYPED_FLAGS.get(dest, dest), value))
    for item in sets:
        path, value = parse_assignment(item)
        overrides.append((f"--set {item!r}", path, value))
    config = build_config(name, sources, overrides)
    return Resolved(name, config, run, description)
