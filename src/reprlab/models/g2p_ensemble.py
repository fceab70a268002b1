"""Decoding with several trained G2P models at once (an ensemble).

At every decoding step each member gives its log-probabilities for the next phoneme, and the
ensemble scores each phoneme by their mean (the log of the geometric mean of the members'
distributions, renormalized). Greedy and beam search are those of ``G2PModel``, unchanged. Members
may be of different kinds and sizes (Transformers, LSTMs); each keeps its own memory and
incremental state. The ensemble is for decoding only: it is not trained and not registered.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .g2p_base import G2PModel


class G2PEnsemble(G2PModel):
    """The mean of the members' next-phoneme log-probabilities, decoded as one model."""

    registry_name = "g2p_ensemble"

    def __init__(self, members: Sequence[G2PModel]):
        members = list(members)
        if not members:
            raise ConfigError("an ensemble needs at least one G2P model")
        for m in members:
            if not isinstance(m, G2PModel):
                raise ConfigError(
                    f"an ensemble member must be a G2P model, got {getattr(m, 'registry_name', type(m).__name__)}"
                )
        first = members[0]
        for i, m in enumerate(members[1:], 2):
            if m.vocab != first.vocab:
                raise ConfigError(
                    f"ensemble members must share their vocabularies, but member {i} ({m.registry_name or 'G2P'}) "
                    f"differs from the first: {_vocab_difference(first.vocab, m.vocab)}; "
                    "ensemble only runs trained on the same lexicon"
                )
        super().__init__(first.config)
        self.members = nn.ModuleList(members)

    def encode(self, src: Tensor) -> tuple:
        return tuple(m.encode(src) for m in self.members)

    def expand_memory(self, memory: tuple, k: int) -> tuple:
        return tuple(m.expand_memory(mem, k) for m, mem in zip(self.members, memory))

    @staticmethod
    def _mean_log_probs(logits: list[Tensor]) -> Tensor:
        return torch.stack([lg.float().log_softmax(-1) for lg in logits]).mean(0)

    def decode_logits(self, memory: tuple, src: Tensor, tgt_in: Tensor) -> Tensor:
        return self._mean_log_probs([m.decode_logits(mem, src, tgt_in) for m, mem in zip(self.members, memory)])

    def decode_step(self, memory: tuple, src: Tensor, ys: Tensor, state: Any) -> tuple[Tensor, Any]:
        states = state if state is not None else (None,) * len(self.members)
        steps = [m.decode_step(mem, src, ys, st) for m, mem, st in zip(self.members, memory, states)]
        return self._mean_log_probs([logits for logits, _ in steps]), tuple(st for _, st in steps)

    def reorder_state(self, state: Any, rows: Tensor) -> Any:
        if state is None:
            return None
        return tuple(m.reorder_state(st, rows) for m, st in zip(self.members, state))

    def default_max_len(self, src: Tensor) -> int:
        return min(m.default_max_len(src) for m in self.members)

    def max_word(self) -> int:
        return min(m.max_word() for m in self.members)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        raise ConfigError("a G2P ensemble only decodes; train its members one at a time")


def _vocab_difference(a, b) -> str:
    """What differs between two G2PVocabs, briefly (for the error line)."""
    if a.lowercase != b.lowercase:
        return "one lower-cases words, the other does not"
    for what, x, y in (
        ("letters", a.graphemes.words, b.graphemes.words),
        ("phonemes", a.phonemes.words, b.phonemes.words),
    ):
        if x != y:
            only = [s for s in y if s not in x][:3] or [s for s in x if s not in y][:3]
            return f"their {what} differ" + (f", e.g. {' '.join(map(repr, only))}" if only else " in order")
    return "their vocabularies differ"


__all__ = ["G2PEnsemble"]
