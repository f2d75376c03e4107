"""Presets: tuned settings shipped with the package, one YAML file per learner and task.

Like the RL Zoo's hyperparameter files, a preset is a starting point someone measured;
``--set`` and typed flags still override it. Files live in ``rlfoundry/presets/`` and have
the structured config-document shape (``algo``, ``description``, ``config``).
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any

from rlfoundry.errors import ConfigError, suggest


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    algo: str
    description: str
    config: dict[str, Any]


def preset_names() -> list[str]:
    folder = resources.files("rlfoundry") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> Preset:
    """The preset called ``name``, or a ConfigError suggesting close names."""
    from rlfoundry.experiment.configure import parse_text, split_document

    names = preset_names()
    if name not in names:
        raise ConfigError(
            f"unknown preset {name!r}.{suggest(name, names)} "
            "Run `rlfoundry list presets` to see them all."
        )
    where = f"preset {name!r}"
    text = (resources.files("rlfoundry") / "presets" / f"{name}.yaml").read_text("utf-8")
    algo, settings, _, description = split_document(parse_text(text, where), where)
    if algo is None:
        raise ConfigError(f"{where} names no algo; the preset file is broken.")
    return Preset(name, algo, description, settings)
