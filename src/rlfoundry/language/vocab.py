"""Declared vocabularies: every text environment names its tokens up front.

Policies and environments exchange token ids only; a :class:`Vocab` turns ids into words
for people (transcripts) and words into ids for environment authors. Training never
decodes and re-tokenises: the ids the policy generated are the trajectory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

PAD, EOT = 0, 1
SPECIALS = ("<pad>", "<eot>")


class Vocab:
    """An ordered tuple of distinct tokens; ids 0 and 1 are ``<pad>`` and ``<eot>``."""

    def __init__(self, words: Sequence[str]):
        tokens = (*SPECIALS, *words)
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"vocabulary tokens must be distinct: {tokens}")
        self.tokens: tuple[str, ...] = tokens
        self._ids = {t: i for i, t in enumerate(tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self._ids[token]

    def ids(self, words: Iterable[str]) -> list[int]:
        return [self._ids[w] for w in words]

    def decode(self, ids: Iterable[int], *, skip_pad: bool = True) -> list[str]:
        out = []
        for i in np.asarray(list(ids)).reshape(-1).tolist():
            if skip_pad and i == PAD:
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else f"<{i}?>")
        return out

    def text(self, ids: Iterable[int]) -> str:
        """Readable words of ``ids`` (padding dropped)."""
        return " ".join(self.decode(ids))
