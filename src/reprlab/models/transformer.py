"""The Transformer encoder-decoder (Vaswani et al. 2017), written out, for grapheme-to-phoneme.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V

Multi-head attention projects queries, keys and values ``n_heads`` times into d_model / n_heads
dimensions, attends in each head, concatenates the heads and projects back. Masks are boolean
with True meaning "may not attend", as in ``torch.nn.MultiheadAttention``: a key padding mask
(B, S) hides padded letters, and the causal mask (T, T) hides later phonemes from the decoder.
Positions enter as fixed sinusoids added to the scaled embeddings.

Layers are pre-norm by default (``x + f(LayerNorm(x))``: gradients pass straight through the
residual path, so it trains without warm-up); ``norm="post"`` gives the original
``LayerNorm(x + f(x))``. ``sdpa=True`` runs the attention product through
``F.scaled_dot_product_attention`` (fused kernels) instead of the explicit softmax; both give
the same numbers, and the explicit path can return the attention weights (heat maps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check
from ..data.g2p import PAD
from ..registry import register_model
from .g2p_base import G2PModel, G2PTrainingConfig


def attention(
    q: Tensor, k: Tensor, v: Tensor, blocked: Tensor | None = None, dropout: float = 0.0
) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / √d) v with ``blocked`` (broadcast to (..., T, S), True = hidden) positions removed.

    q (..., T, d), k and v (..., S, d) -> output (..., T, d) and weights (..., T, S).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, S)
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    weights = scores.softmax(-1)
    if dropout:
        weights = F.dropout(weights, dropout)
    return weights @ v, weights


def causal_mask(t: int, device=None) -> Tensor:
    """(T, T) True above the diagonal: position i may not see positions j > i."""
    return torch.ones(t, t, dtype=torch.bool, device=device).triu(1)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate Q/K/V projections; masks follow nn.MultiheadAttention."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, sdpa: bool = False):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.h, self.dropout, self.sdpa = n_heads, dropout, sdpa
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.last_weights: Tensor | None = None  # (B, H, T, S), kept when asked for (heat maps)
        self.keep_weights = False

    def _heads(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.h, d // self.h).transpose(1, 2)  # (B, H, T, d_head)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """query (B, T, D), key/value (B, S, D); key_padding_mask (B, S) and attn_mask (T, S), True = hidden."""
        return self.attend(self._heads(self.q(query)), *self.keys_values(key, value), key_padding_mask, attn_mask)

    def keys_values(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """The projected keys and values (B, H, S, d_head): what a decoding cache keeps."""
        return self._heads(self.k(key)), self._heads(self.v(value))

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None = None, attn_mask: Tensor | None = None
    ) -> Tensor:
        """Attention of projected heads q (B, H, T, d_head) over k, v (B, H, S, d_head), then the output projection."""
        blocked = None
        if key_padding_mask is not None:
            blocked = key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
        if attn_mask is not None:
            blocked = attn_mask if blocked is None else blocked | attn_mask
        p = self.dropout if self.training else 0.0
        if self.sdpa and not self.keep_weights:
            # SDPA's boolean mask means "may attend", the opposite of ours
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if blocked is None else ~blocked, dropout_p=p)
        else:
            y, w = attention(q, k, v, blocked, p)
            if self.keep_weights:
                self.last_weights = w.detach()
        b, h, t, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))  # (B, T, D)


class SinusoidalPositions(nn.Module):
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...), added to the input."""

    def __init__(self, d_model: int, max_len: int):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pe[: x.shape[1]]  # (B, T, D)


class _Sublayer(nn.Module):
    """A residual block around ``f``, pre-norm (x + f(LN x)) or post-norm (LN(x + f(x)))."""

    def __init__(self, d_model: int, dropout: float, pre: bool):
        super().__init__()
        self.norm, self.drop, self.pre = nn.LayerNorm(d_model), nn.Dropout(dropout), pre

    def forward(self, x: Tensor, f) -> Tensor:
        if self.pre:
            return x + self.drop(f(self.norm(x)))
        return self.norm(x + self.drop(f(x)))


def _ffn(d: int, ff: int, dropout: float) -> nn.Sequential:
    inner = nn.Dropout(dropout) if dropout else nn.Identity()  # no mask drawn at 0: CPU random numbers are slow
    return nn.Sequential(nn.Linear(d, ff), nn.ReLU(), inner, nn.Linear(ff, d))


class EncoderLayer(nn.Module):
    def __init__(
        self,
        d: int,
        h: int,
        ff: int,
        dropout: float,
        pre: bool,
        sdpa: bool,
        attn_dropout: float = 0.0,
        ff_dropout: float = 0.0,
    ):
        super().__init__()
        self.attn = MultiHeadAttention(d, h, attn_dropout, sdpa)
        self.ffn = _ffn(d, ff, ff_dropout)
        self.s1, self.s2 = _Sublayer(d, dropout, pre), _Sublayer(d, dropout, pre)

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        x = self.s1(x, lambda y: self.attn(y, y, y, key_padding_mask=pad))
        return self.s2(x, self.ffn)


class DecoderLayer(nn.Module):
    def __init__(
        self,
        d: int,
        h: int,
        ff: int,
        dropout: float,
        pre: bool,
        sdpa: bool,
        attn_dropout: float = 0.0,
        ff_dropout: float = 0.0,
    ):
        super().__init__()
        self.self_attn = MultiHeadAttention(d, h, attn_dropout, sdpa)
        self.cross_attn = MultiHeadAttention(d, h, attn_dropout, sdpa)
        self.ffn = _ffn(d, ff, ff_dropout)
        self.s1, self.s2, self.s3 = (_Sublayer(d, dropout, pre) for _ in range(3))

    def forward(self, y: Tensor, memory: Tensor, src_pad: Tensor, tgt_pad: Tensor | None, causal: Tensor) -> Tensor:
        y = self.s1(y, lambda z: self.self_attn(z, z, z, key_padding_mask=tgt_pad, attn_mask=causal))
        y = self.s2(y, lambda z: self.cross_attn(z, memory, memory, key_padding_mask=src_pad))
        return self.s3(y, self.ffn)

    def step(self, y: Tensor, cache: list[Tensor], src_pad: Tensor) -> Tensor:
        """One new position y (B, 1, D). ``cache`` = [self keys, self values, memory keys, memory values]
        (B, H, ·, d_head); the new position's self keys and values are appended to it in place."""

        def self_attend(z: Tensor) -> Tensor:
            k, v = self.self_attn.keys_values(z, z)
            cache[0], cache[1] = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            return self.self_attn.attend(
                self.self_attn._heads(self.self_attn.q(z)), cache[0], cache[1]
            )  # all past: no mask

        y = self.s1(y, self_attend)
        y = self.s2(
            y,
            lambda z: self.cross_attn.attend(self.cross_attn._heads(self.cross_attn.q(z)), cache[2], cache[3], src_pad),
        )
        return self.s3(y, self.ffn)


@dataclass(frozen=True)
class TransformerG2PConfig(G2PTrainingConfig):
    # width of the model (embedding size)
    d_model: int = 128
    # attention heads
    n_heads: int = 4
    # encoder layers
    enc_layers: int = 3
    # decoder layers
    dec_layers: int = 3
    # hidden size of the feed-forward sublayers
    ff: int = 512
    # pre: LayerNorm before each sublayer; post: after it (Vaswani et al.)
    norm: Literal["pre", "post"] = "pre"
    sdpa: bool = True  # F.scaled_dot_product_attention for speed; False uses the explicit softmax
    # ``dropout`` acts where Vaswani et al. put it: on each sublayer's output and on the embedded inputs.
    # Dropout on the attention weights and inside the feed-forward block is off by default, as in fairseq;
    # on a CPU their random masks slowed a training step by about 15% at d = 64 and 128 (docs/transformer.md).
    attn_dropout: float = 0.0
    # dropout inside the feed-forward sublayers (off by default)
    ff_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("attn_dropout", "ff_dropout"):
            check(0 <= getattr(self, name) < 1, f"model.{name} must be in [0, 1), got {getattr(self, name)}")
        check(self.d_model >= 2 and self.d_model % 2 == 0, f"model.d_model must be even and >= 2, got {self.d_model}")
        check(
            self.n_heads >= 1 and self.d_model % self.n_heads == 0,
            f"model.n_heads must divide model.d_model ({self.d_model}), got {self.n_heads}",
        )
        check(self.enc_layers >= 1 and self.dec_layers >= 1, "model.enc_layers and model.dec_layers must be >= 1")
        check(self.ff >= 1, f"model.ff must be >= 1, got {self.ff}")


@register_model("g2p_transformer", config=TransformerG2PConfig, task="g2p")
class TransformerG2P(G2PModel):
    """Transformer encoder-decoder for grapheme-to-phoneme (own multi-head attention, sinusoidal positions)."""

    def __init__(self, config: TransformerG2PConfig):
        super().__init__(config)
        d, pre = config.d_model, config.norm == "pre"
        self.src_emb = nn.Embedding(self.src_vocab, d, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(self.tgt_vocab, d, padding_idx=PAD)
        self.pos = SinusoidalPositions(d, config.max_len)
        self.drop = nn.Dropout(config.dropout)
        args = (d, config.n_heads, config.ff, config.dropout, pre, config.sdpa, config.attn_dropout, config.ff_dropout)
        self.encoder = nn.ModuleList(EncoderLayer(*args) for _ in range(config.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(*args) for _ in range(config.dec_layers))
        # pre-norm stacks end with a LayerNorm (their residual stream is never normalized otherwise)
        self.enc_norm = nn.LayerNorm(d) if pre else nn.Identity()
        self.dec_norm = nn.LayerNorm(d) if pre else nn.Identity()
        self.head = nn.Linear(d, self.tgt_vocab)
        # embeddings start at std d^-1/2, so after the sqrt(d) scaling they are unit-sized like the
        # positions; torch's N(0, 1) default would make them sqrt(d) times larger and drown the positions
        for emb in (self.src_emb, self.tgt_emb):
            nn.init.normal_(emb.weight, std=d**-0.5)
            emb.weight.data[PAD].zero_()

    def _embed(self, emb: nn.Embedding, ids: Tensor) -> Tensor:
        return self.drop(self.pos(emb(ids) * math.sqrt(self.config.d_model)))

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """src (B, S) -> memory (B, S, D) and its padding mask (B, S)."""
        pad = src == PAD
        x = self._embed(self.src_emb, src)
        for layer in self.encoder:
            x = layer(x, pad)
        return self.enc_norm(x), pad

    def decode_logits(self, memory: tuple[Tensor, Tensor], src: Tensor, tgt_in: Tensor) -> Tensor:
        mem, src_pad = memory
        t = tgt_in.shape[1]
        causal = causal_mask(t, tgt_in.device)
        # a padded target position only attends to earlier tokens, which the causal mask already limits
        y = self._embed(self.tgt_emb, tgt_in)
        for layer in self.decoder:
            y = layer(y, mem, src_pad, None, causal)
        return self.head(self.dec_norm(y))  # (B, T, V)

    def decode_step(self, memory: tuple[Tensor, Tensor], src: Tensor, ys: Tensor, state):
        """Incremental decoding with a key/value cache: only the newest position ``ys[:, -1]`` is computed.
        The state is one [self K, self V, memory K, memory V] list per decoder layer."""
        mem, src_pad = memory
        if state is None:
            empty = mem.new_zeros(len(mem), self.config.n_heads, 0, self.config.d_model // self.config.n_heads)
            state = [[empty, empty, *layer.cross_attn.keys_values(mem, mem)] for layer in self.decoder]
        t = ys.shape[1] - 1
        y = self.drop(self.tgt_emb(ys[:, -1:]) * math.sqrt(self.config.d_model) + self.pos.pe[t])  # (B, 1, D)
        for layer, cache in zip(self.decoder, state):
            y = layer.step(y, cache, src_pad)
        return self.head(self.dec_norm(y))[:, 0], state

    def reorder_state(self, state, rows: Tensor):
        return [[c[rows] for c in cache] for cache in state]

    def cross_attention(self, src: Tensor, tgt_in: Tensor, layer: int = -1) -> Tensor:
        """(B, T, S) cross-attention weights of one decoder layer, averaged over heads (for heat maps)."""
        attn = self.decoder[layer].cross_attn
        was, attn.keep_weights = attn.keep_weights, True
        try:
            with torch.no_grad():
                self.eval()
                self(src, tgt_in)
        finally:
            attn.keep_weights = was
        return attn.last_weights.mean(1)


__all__ = [
    "attention",
    "causal_mask",
    "MultiHeadAttention",
    "SinusoidalPositions",
    "TransformerG2P",
    "TransformerG2PConfig",
]
