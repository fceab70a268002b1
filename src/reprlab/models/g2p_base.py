"""What the G2P sequence-to-sequence models share: the loss, greedy and beam decoding, WER/PER.

A G2P model implements ``encode(src) -> memory`` (any object) and
``decode_logits(memory, src, tgt_in) -> (B, T, V)`` logits for every prefix of ``tgt_in``
(teacher forcing, for training). Decoding goes one token at a time through
``decode_step(memory, src, ys, state) -> (logits (B, V), state)``: the default re-runs
``decode_logits`` on the whole prefix; the models override it with an incremental state (the
Transformer's key/value cache, the LSTM's (h, c)), so each step costs one position, not t.

A model's alphabets are part of its config (``graphemes``, ``phonemes``, ``lowercase``; by default the
built-in CMUdict ones: a-z and ', and the 39 ARPAbet phonemes). The embedding and output sizes follow from
them (the symbols plus the three specials), and a run's config.json carries them, so a loaded run encodes
and decodes with the vocabulary it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import check
from ..data.g2p import BOS, EOS, LETTERS, MAX_WORD, PAD, PHONEMES, SPECIALS, check_word, random_batch
from ..data.lexicon import G2PVocab
from ..errors import ConfigError, DataError
from ..metrics.edit import wer_per
from ..progress import stage
from .base import ReprModel


@dataclass(frozen=True)
class G2PTrainingConfig:
    """The config fields both G2P models share (their own fields come after these).

    ``graphemes`` holds the letters the model reads, one character each, in id order (ids start at 3,
    after ``<pad>``, ``<s>``, ``</s>``); ``phonemes`` the symbols it writes, likewise. ``lowercase``: words
    are lower-cased before they are read (they are always stripped and NFC-normalised)."""

    # dropout on sublayer outputs and embeddings
    dropout: float = 0.1
    # label smoothing of the training cross-entropy
    label_smoothing: float = 0.1
    max_len: int = 64  # longest sequence the model decodes (and the positional table covers)
    # the letters the model reads, one character each (a lexicon's training words fill it)
    graphemes: str = "".join(LETTERS)
    # the phones the model writes (a lexicon's training pronunciations fill it)
    phonemes: tuple[str, ...] = tuple(PHONEMES)
    # lower-case words before reading them
    lowercase: bool = True

    def __post_init__(self) -> None:
        check(0 <= self.dropout < 1, f"model.dropout must be in [0, 1), got {self.dropout}")
        check(0 <= self.label_smoothing < 1, f"model.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        check(
            self.max_len >= 40,
            f"model.max_len must be >= 40 (CMUdict's longest word has 28 letters), got {self.max_len}",
        )
        check(len(self.graphemes) >= 1, "model.graphemes is empty; give the letters the model reads")
        twice = sorted({c for c in self.graphemes if self.graphemes.count(c) > 1})
        check(not twice, f"model.graphemes lists {twice[0] if twice else ''!r} more than once; give each letter once")
        check(len(self.phonemes) >= 1, "model.phonemes is empty; give the phonemes the model writes")
        for ph in self.phonemes:
            check(
                bool(ph) and not any(c.isspace() for c in ph) and ph not in SPECIALS,
                f"model.phonemes holds {ph!r}; a phoneme is a non-empty symbol without blanks, not one of {SPECIALS}",
            )
        twice = sorted({ph for ph in self.phonemes if self.phonemes.count(ph) > 1})
        check(not twice, f"model.phonemes lists {twice[0] if twice else ''!r} more than once; give each phoneme once")


class G2PModel(ReprModel):
    """Base of the G2P models: teacher-forced cross-entropy with label smoothing, and decoding."""

    def __init__(self, config: G2PTrainingConfig):
        super().__init__(config)
        self.vocab = G2PVocab.from_alphabets(config.graphemes, config.phonemes, config.lowercase)
        self.src_vocab = len(self.vocab.graphemes)  # embedding rows: the letters and the specials
        self.tgt_vocab = len(self.vocab.phonemes)  # output classes: the phonemes and the specials

    def encode(self, src: Tensor) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode_logits(self, memory: Any, src: Tensor, tgt_in: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def expand_memory(self, memory: Any, k: int) -> Any:
        """Repeat each item of ``memory`` k times along the batch (for beam search)."""
        if isinstance(memory, Tensor):
            return memory.repeat_interleave(k, 0)
        return type(memory)(self.expand_memory(m, k) for m in memory)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        return self.decode_logits(self.encode(src), src, tgt_in)  # (B, T, V)

    def decode_step(self, memory: Any, src: Tensor, ys: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Logits (B, V) of the token after the prefix ``ys`` (B, t), given the ``state`` this method
        returned for ``ys[:, :-1]`` (None at the first step). Default: recompute the whole prefix."""
        return self.decode_logits(memory, src, ys)[:, -1], state

    def reorder_state(self, state: Any, rows: Tensor) -> Any:
        """The decoding state of the batch rows ``rows`` (beam search keeps the best beams)."""
        if state is None:
            return None
        if isinstance(state, Tensor):
            return state[rows]
        return type(state)(self.reorder_state(s, rows) for s in state)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        src, tgt = batch["src"], batch["tgt"]
        logits = self(src, tgt[:, :-1])
        gold = tgt[:, 1:]
        flat, flat_gold = logits.reshape(-1, logits.shape[-1]).float(), gold.reshape(-1)
        loss = F.cross_entropy(flat, flat_gold, ignore_index=PAD, label_smoothing=self.config.label_smoothing)
        with torch.no_grad():
            nll = F.cross_entropy(flat, flat_gold, ignore_index=PAD)
            mask = gold != PAD
            acc = ((logits.argmax(-1) == gold) & mask).sum() / mask.sum().clamp(min=1)
        return {"loss": loss, "nll": nll, "token_acc": acc}

    def example_batch(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        return random_batch(n, generator, self.config.graphemes, self.config.phonemes)

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def greedy(self, src: Tensor, max_len: int | None = None) -> Tensor:
        """(B, L) output ids chosen one at a time by argmax; stops at EOS or ``max_len`` phonemes."""
        max_len = max_len or self.default_max_len(src)
        memory = self.encode(src)
        ys = torch.full((len(src), 1), BOS, dtype=torch.long, device=src.device)
        done = torch.zeros(len(src), dtype=torch.bool, device=src.device)
        state = None
        for _ in range(max_len):
            logits, state = self.decode_step(memory, src, ys, state)
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            ys = torch.cat([ys, nxt[:, None]], 1)
            done |= nxt == EOS
            if done.all():
                break
        return ys[:, 1:]

    @torch.no_grad()
    def beam(self, src: Tensor, width: int = 5, max_len: int | None = None) -> Tensor:
        """(B, L) ids of the highest log-probability beam (no length normalization); width 1 is greedy."""
        if width < 1:
            raise ConfigError(f"beam width must be >= 1, got {width}")
        max_len = max_len or self.default_max_len(src)
        b, k, v = len(src), width, self.tgt_vocab
        src_k = src.repeat_interleave(k, 0)
        memory = self.expand_memory(self.encode(src), k)
        ys = torch.full((b * k, 1), BOS, dtype=torch.long, device=src.device)
        scores = torch.full((b, k), float("-inf"), device=src.device)
        scores[:, 0] = 0.0  # all beams start equal: keep one so the first step does not pick duplicates
        done = torch.zeros(b * k, dtype=torch.bool, device=src.device)
        state = None
        for _ in range(max_len):
            logits, state = self.decode_step(memory, src_k, ys, state)
            lp = logits.float().log_softmax(-1)  # (B*K, V)
            # a finished beam only extends with PAD, at no cost
            lp = torch.where(done[:, None], torch.full_like(lp, float("-inf")), lp)
            lp[:, PAD] = torch.where(done, 0.0, float("-inf"))
            cand = (scores.view(-1, 1) + lp).view(b, k * v)
            scores, flat = cand.topk(k, dim=1)  # (B, K)
            beam_of, token = flat // v, flat % v
            rows = (torch.arange(b, device=src.device)[:, None] * k + beam_of).view(-1)
            ys = torch.cat([ys[rows], token.view(-1, 1)], 1)
            state = self.reorder_state(state, rows)
            done = done[rows] | (token.view(-1) == EOS)
            if done.all():
                break
        best = scores.argmax(1)
        return ys.view(b, k, -1)[torch.arange(b), best, 1:]

    def default_max_len(self, src: Tensor) -> int:
        return min(int((src != PAD).sum(1).max()) * 2 + 5, self.config.max_len - 2)

    def decode_ids(self, src: Tensor, beam: int = 1, max_len: int | None = None) -> list[tuple[str, ...]]:
        was = self.training
        self.eval()
        try:
            ids = self.greedy(src, max_len) if beam == 1 else self.beam(src, beam, max_len)
        finally:
            self.train(was)
        return [self.vocab.decode_phones(row.tolist()) for row in ids]

    def max_word(self) -> int:
        """The longest word (in letters) :meth:`predict` accepts."""
        return max(MAX_WORD, self.config.max_len // 2)

    def check_word(self, word: str) -> str:
        """``word`` stripped, NFC-normalised and lower-cased (unless the model is case-sensitive), or a
        one-line DataError naming the word and the letters outside the model's graphemes (or its length)."""
        return check_word(word, self.vocab.graphemes.words, self.vocab.lowercase, self.max_word())

    def predict(
        self, words: Sequence[str], beam: int = 1, batch_size: int = 512, progress=None
    ) -> list[tuple[str, ...]]:
        """Pronunciations of ``words`` in the model's phonemes (ARPAbet by default); DataError naming the first
        word the model cannot read (a letter outside its graphemes, or too long). ``progress``: a
        :class:`reprlab.progress.Stage` advanced by the words of each decoded batch."""
        clean = [self.check_word(w) for w in words]
        order = sorted(range(len(clean)), key=lambda i: len(clean[i]))  # similar lengths decode together
        out: list[tuple[str, ...]] = [()] * len(clean)
        dev = next(self.parameters()).device
        for i in range(0, len(order), batch_size):
            chunk = order[i : i + batch_size]
            src = self.vocab.encode_words([clean[j] for j in chunk]).to(dev)
            for j, pron in zip(chunk, self.decode_ids(src, beam)):
                out[j] = pron
            if progress is not None:
                progress.advance(len(chunk))
        return out

    def test_metrics(self, test_source, beam: int = 1, **_) -> dict[str, float]:
        """WER and PER (fractions) of decoded test words against every reference pronunciation."""
        if not hasattr(test_source, "references"):
            raise DataError("WER/PER need a G2P test source with reference pronunciations")
        how = "greedy" if beam == 1 else f"beam {beam}"
        with stage(f"decode {len(test_source.words):,} test words ({how})", len(test_source.words), "words") as bar:
            preds = self.predict(test_source.words, beam=beam, progress=bar)
        return wer_per(preds, test_source.references)


__all__ = ["G2PModel"]
