"""What a run is: an algorithm, its config, the seeds, and how the host loop runs it.

A :class:`RunSpec` is exactly what ``config.json`` in a run folder holds, so resuming,
evaluating or reproducing a run needs nothing but that file (no pickle). The config is
stored with :func:`rlfoundry.config.to_dict` and rebuilt with ``from_dict``, which checks
every name and type.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlfoundry.errors import ConfigError

FORMAT = "rlfoundry-run/1"


@dataclasses.dataclass
class RunSpec:
    """Everything needed to (re)start a run. ``config`` is the learner's config object."""

    algo: str
    config: Any
    seeds: list[int]
    chunk_updates: int
    checkpoint_every: int
    keep_checkpoints: int = 3
    batched: tuple[str, ...] = ()
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    def to_json(self) -> dict[str, Any]:
        from rlfoundry import __version__
        from rlfoundry.config import to_dict

        return {
            "format": FORMAT,
            "rlfoundry_version": __version__,
            "algo": self.algo,
            "config": to_dict(self.config),
            "seeds": list(self.seeds),
            "chunk_updates": self.chunk_updates,
            "checkpoint_every": self.checkpoint_every,
            "keep_checkpoints": self.keep_checkpoints,
            "batched": list(self.batched),
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "config.json") -> RunSpec:
        """Rebuild a spec; every problem is a one-line :class:`ConfigError` naming ``where``."""
        from rlfoundry.experiment.configure import build_config

        if not isinstance(data, dict):
            raise ConfigError(f"{where} must hold a JSON object.")
        for key in ("algo", "config", "seeds", "chunk_updates"):
            if key not in data:
                raise ConfigError(f"{where} has no {key!r} entry; it was not written by rlfoundry.")
        config = build_config(data["algo"], [(where, data["config"])])
        seeds = parse_seeds(data["seeds"], where=f"{where}: seeds")
        chunk = _positive_int(data["chunk_updates"], f"{where}: chunk_updates")
        every = _positive_int(data.get("checkpoint_every", chunk), f"{where}: checkpoint_every")
        keep = _positive_int(data.get("keep_checkpoints", 3), f"{where}: keep_checkpoints")
        batched = data.get("batched", [])
        if not isinstance(batched, list) or not all(isinstance(b, str) for b in batched):
            raise ConfigError(f"{where}: batched must be a list of setting names.")
        known = {"format", "rlfoundry_version", "algo", "config", "seeds", "chunk_updates",
                 "checkpoint_every", "keep_checkpoints", "batched"}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(data["algo"], config, seeds, chunk, every, keep, tuple(batched), extra)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return value


def parse_seeds(value: Any, where: str = "--seeds") -> list[int]:
    """Seeds from a count (``4`` → 0..3), a comma list (``"0,3,9"``) or a list of ints."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = [int(v) for v in text.split(",") if v.strip()] if "," in text else int(text)
        except ValueError:
            raise ConfigError(
                f"{where} must be a count like 4 or a list like 0,3,9, got {text!r}."
            ) from None
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ConfigError(f"{where} must be at least 1, got {value}.")
        return list(range(value))
    if isinstance(value, list) and value and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in value
    ):
        if len(set(value)) != len(value):
            raise ConfigError(f"{where} lists a seed twice: {value}.")
        return list(value)
    raise ConfigError(f"{where} must be a count or a list of non-negative integers, got {value!r}.")


def default_chunk_updates(total_updates: int, target_chunks: int = 25) -> int:
    """About ``target_chunks`` chunks per run: enough progress updates and checkpoints,
    few enough host round-trips that they cost nothing next to training."""
    return max(1, -(-total_updates // target_chunks))
