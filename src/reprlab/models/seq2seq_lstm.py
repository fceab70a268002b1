"""The recurrent baseline: a bidirectional LSTM encoder and an LSTM decoder with Luong attention.

The encoder reads the letters both ways (packed, so padding never enters the states); its
final states, projected, start the decoder. At every output step the decoder state h_t scores
each letter's encoding with the "general" form h_tᵀ W e_s (Luong et al. 2015), the softmax of
the scores weights the letters into a context c_t, and tanh(W_c [c_t; h_t]) predicts the phoneme.
The recurrences are sequential in time, unlike the Transformer's attention layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import check
from ..data.g2p import PAD
from ..registry import register_model
from .g2p_base import G2PModel, G2PTrainingConfig


@dataclass(frozen=True)
class LSTMG2PConfig(G2PTrainingConfig):
    # size of the letter and phoneme embeddings
    emb: int = 128
    hidden: int = 256  # decoder size; each encoder direction has hidden // 2
    # LSTM layers in the encoder and in the decoder
    layers: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.emb >= 1, f"model.emb must be >= 1, got {self.emb}")
        check(self.hidden >= 2 and self.hidden % 2 == 0, f"model.hidden must be even and >= 2, got {self.hidden}")
        check(self.layers >= 1, f"model.layers must be >= 1, got {self.layers}")


@register_model("g2p_lstm", config=LSTMG2PConfig, task="g2p")
class LSTMG2P(G2PModel):
    """BiLSTM encoder, LSTM decoder with Luong (general) attention, for grapheme-to-phoneme."""

    def __init__(self, config: LSTMG2PConfig):
        super().__init__(config)
        e, h, n, p = config.emb, config.hidden, config.layers, config.dropout
        self.src_emb = nn.Embedding(self.src_vocab, e, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(self.tgt_vocab, e, padding_idx=PAD)
        self.enc = nn.LSTM(e, h // 2, n, batch_first=True, bidirectional=True, dropout=p if n > 1 else 0.0)
        self.bridge_h = nn.Linear(h, h)
        self.bridge_c = nn.Linear(h, h)
        self.dec = nn.LSTM(e, h, n, batch_first=True, dropout=p if n > 1 else 0.0)
        self.score = nn.Linear(h, h, bias=False)  # W in h_t^T W e_s
        self.combine = nn.Linear(2 * h, h)
        self.drop = nn.Dropout(p)
        self.head = nn.Linear(h, self.tgt_vocab)
        self.last_weights: Tensor | None = None

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """src (B, S) -> encodings (B, S, H), padding mask (B, S), initial decoder h and c (L, B, H)."""
        lengths = (src != PAD).sum(1)
        x = self.drop(self.src_emb(src))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.enc(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, H)
        n, b = self.config.layers, len(src)
        # (2L, B, H/2) -> (L, B, H): join the forward and backward states of each layer
        h = h.view(n, 2, b, -1).permute(0, 2, 1, 3).reshape(n, b, -1)
        c = c.view(n, 2, b, -1).permute(0, 2, 1, 3).reshape(n, b, -1)
        return out, src == PAD, torch.tanh(self.bridge_h(h)), self.bridge_c(c)

    def expand_memory(self, memory, k: int):
        out, pad, h, c = memory
        return (
            out.repeat_interleave(k, 0),
            pad.repeat_interleave(k, 0),
            h.repeat_interleave(k, 1),
            c.repeat_interleave(k, 1),
        )

    def decode_logits(self, memory, src: Tensor, tgt_in: Tensor) -> Tensor:
        enc, pad, h0, c0 = memory
        states, _ = self.dec(self.drop(self.tgt_emb(tgt_in)), (h0.contiguous(), c0.contiguous()))  # (B, T, H)
        return self._attend_and_predict(enc, pad, states)

    def decode_step(self, memory, src: Tensor, ys: Tensor, state):
        """One LSTM step for the newest token; the state is the decoder's (h, c), each (L, B, H)."""
        enc, pad, h0, c0 = memory
        if state is None:
            state = (h0.contiguous(), c0.contiguous())
        out, state = self.dec(self.drop(self.tgt_emb(ys[:, -1:])), state)  # (B, 1, H)
        return self._attend_and_predict(enc, pad, out)[:, 0], state

    def reorder_state(self, state, rows: Tensor):
        return tuple(s[:, rows] for s in state)  # batch is dim 1 of an LSTM state

    def _attend_and_predict(self, enc: Tensor, pad: Tensor, states: Tensor) -> Tensor:
        """Luong attention of decoder states (B, T, H) over the encodings, then the output logits (B, T, V)."""
        scores = states @ self.score(enc).transpose(1, 2)  # (B, T, S)
        weights = scores.masked_fill(pad[:, None, :], float("-inf")).softmax(-1)
        self.last_weights = weights.detach()
        context = weights @ enc  # (B, T, H)
        att = torch.tanh(self.combine(torch.cat([context, states], -1)))
        return self.head(self.drop(att))  # (B, T, V)

    def cross_attention(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """(B, T, S) attention weights over the letters (for heat maps)."""
        self.eval()
        with torch.no_grad():
            self(src, tgt_in)
        return self.last_weights


__all__ = ["LSTMG2P", "LSTMG2PConfig"]
