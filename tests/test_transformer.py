"""Transformer and LSTM G2P models: attention equals torch's, masks hide what they must, decoding, overfitting."""

import math

import pytest
import torch
from torch import nn

from reprlab import create_model
from reprlab.data.g2p import EOS, PAD, make_batch, random_batch
from reprlab.models.transformer import MultiHeadAttention, SinusoidalPositions, attention, causal_mask


def _copy_into_torch(mine: MultiHeadAttention, ref: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mine.q.weight, mine.k.weight, mine.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([mine.q.bias, mine.k.bias, mine.v.bias]))
        ref.out_proj.weight.copy_(mine.out.weight)
        ref.out_proj.bias.copy_(mine.out.bias)


@pytest.mark.parametrize("sdpa", [False, True])
@pytest.mark.parametrize("masks", ["none", "padding", "causal", "both"])
def test_multihead_attention_equals_torch(sdpa, masks):
    torch.manual_seed(0)
    d, h, b, t = 32, 4, 3, 7
    mine = MultiHeadAttention(d, h, sdpa=sdpa).eval()
    ref = nn.MultiheadAttention(d, h, batch_first=True).eval()
    _copy_into_torch(mine, ref)
    q, kv = torch.randn(b, t, d), torch.randn(b, t, d)
    pad = torch.zeros(b, t, dtype=torch.bool)
    pad[0, 5:] = True
    pad[2, 3:] = True
    kpm = pad if masks in ("padding", "both") else None
    am = causal_mask(t) if masks in ("causal", "both") else None
    ours = mine(q, kv, kv, key_padding_mask=kpm, attn_mask=am)
    theirs, _ = ref(q, kv, kv, key_padding_mask=kpm, attn_mask=am, need_weights=False)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_attention_formula_by_hand():
    q = torch.tensor([[[1.0, 0.0]]])  # (1, T=1, d=2)
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    v = torch.tensor([[[10.0, 0.0], [0.0, 10.0]]])
    out, w = attention(q, k, v)
    a = math.exp(1 / math.sqrt(2)) / (math.exp(1 / math.sqrt(2)) + 1)  # softmax([1/√2, 0])
    assert torch.allclose(w, torch.tensor([[[a, 1 - a]]]))
    assert torch.allclose(out, torch.tensor([[[10 * a, 10 * (1 - a)]]]))
    out, w = attention(q, k, v, blocked=torch.tensor([[False, True]]))
    assert torch.allclose(out, torch.tensor([[[10.0, 0.0]]]))


def test_padding_mask_hides_padded_keys():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2).eval()
    q, kv = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    pad = torch.tensor([[False] * 4 + [True] * 2, [False] * 6])
    kv2 = kv.clone()
    kv2[0, 4:] = torch.randn(2, 16) * 100  # change only the padded keys of item 0
    a = mha(q, kv, kv, key_padding_mask=pad)
    b = mha(q, kv2, kv2, key_padding_mask=pad)
    assert torch.allclose(a, b, atol=1e-6)
    c = mha(q, kv2, kv2)  # without the mask the change shows
    assert (a[0] - c[0]).abs().max() > 1e-2


def test_sinusoidal_positions_values():
    pe = SinusoidalPositions(8, 16).pe
    assert pe.shape == (16, 8)
    assert torch.allclose(pe[0], torch.tensor([0.0, 1.0] * 4))
    assert math.isclose(pe[3, 0].item(), math.sin(3), abs_tol=1e-6)
    assert math.isclose(pe[3, 3].item(), math.cos(3 / 10000 ** (2 / 8)), abs_tol=1e-6)


@pytest.mark.parametrize("name", ["g2p_transformer", "g2p_lstm"])
def test_decoder_cannot_see_the_future(name):
    torch.manual_seed(0)
    m = create_model(
        name,
        **(
            {"d_model": 32, "ff": 64, "enc_layers": 1, "dec_layers": 2}
            if name == "g2p_transformer"
            else {"emb": 16, "hidden": 32, "layers": 1}
        ),
    ).eval()
    batch = random_batch(4, torch.Generator().manual_seed(1))
    src, tgt = batch["src"], batch["tgt"].clone()
    t = tgt.shape[1]
    a = m(src, tgt)
    tgt[:, t // 2 :] = torch.randint(3, 42, (len(tgt), t - t // 2))  # change every later input
    b = m(src, tgt)
    assert torch.allclose(a[:, : t // 2], b[:, : t // 2], atol=1e-5)
    assert (a[:, t // 2 :] - b[:, t // 2 :]).abs().max() > 1e-3  # later outputs do see their inputs


@pytest.mark.parametrize("name", ["g2p_transformer", "g2p_lstm"])
def test_source_padding_changes_nothing(name):
    torch.manual_seed(0)
    m = create_model(name).eval()
    batch = random_batch(4, torch.Generator().manual_seed(2))
    src, tgt = batch["src"], batch["tgt"]
    padded = torch.cat([src, torch.full((len(src), 5), PAD)], 1)
    assert torch.allclose(m(src, tgt), m(padded, tgt), atol=1e-5)


def test_causal_mask_shape():
    m = causal_mask(4)
    assert m.tolist() == [
        [False, True, True, True],
        [False, False, True, True],
        [False, False, False, True],
        [False] * 4,
    ]


@pytest.mark.parametrize("name", ["g2p_transformer", "g2p_lstm"])
def test_beam_width_one_equals_greedy(name):
    torch.manual_seed(0)
    m = create_model(name).eval()
    src = random_batch(16, torch.Generator().manual_seed(3))["src"]
    assert torch.equal(m.greedy(src), m.beam(src, width=1))
    wide = m.beam(src, width=4)
    assert wide.shape[0] == 16 and wide.shape[1] <= m.default_max_len(src)


def test_post_norm_and_explicit_attention_options():
    torch.manual_seed(0)
    pre = create_model("g2p_transformer", d_model=32, ff=64, enc_layers=1, dec_layers=1, sdpa=True).eval()
    torch.manual_seed(0)
    explicit = create_model("g2p_transformer", d_model=32, ff=64, enc_layers=1, dec_layers=1, sdpa=False).eval()
    torch.manual_seed(0)
    post = create_model("g2p_transformer", d_model=32, ff=64, enc_layers=1, dec_layers=1, norm="post").eval()
    b = random_batch(4, torch.Generator().manual_seed(4))
    assert torch.allclose(pre(b["src"], b["tgt"]), explicit(b["src"], b["tgt"]), atol=1e-5)
    assert not torch.allclose(pre(b["src"], b["tgt"]), post(b["src"], b["tgt"]), atol=1e-3)


WORDS = [
    "cat",
    "dog",
    "ship",
    "chip",
    "thin",
    "phone",
    "knee",
    "wrist",
    "light",
    "night",
    "queen",
    "box",
    "jump",
    "zoo",
    "shoe",
    "moon",
    "rain",
    "fish",
    "wish",
    "king",
]
PRONS = [
    ("K", "AE", "T"),
    ("D", "AO", "G"),
    ("SH", "IH", "P"),
    ("CH", "IH", "P"),
    ("TH", "IH", "N"),
    ("F", "OW", "N"),
    ("N", "IY"),
    ("R", "IH", "S", "T"),
    ("L", "AY", "T"),
    ("N", "AY", "T"),
    ("K", "W", "IY", "N"),
    ("B", "AA", "K", "S"),
    ("JH", "AH", "M", "P"),
    ("Z", "UW"),
    ("SH", "UW"),
    ("M", "UW", "N"),
    ("R", "EY", "N"),
    ("F", "IH", "SH"),
    ("W", "IH", "SH"),
    ("K", "IH", "NG"),
]


@pytest.mark.parametrize(
    "name,cfg",
    [
        ("g2p_transformer", dict(d_model=64, ff=128, enc_layers=1, dec_layers=1, dropout=0.0, label_smoothing=0.0)),
        ("g2p_lstm", dict(emb=32, hidden=64, layers=1, dropout=0.0, label_smoothing=0.0)),
    ],
)
def test_overfits_a_tiny_set(name, cfg):
    """Twenty words learned to zero WER: the loss, masks and decoding fit together."""
    from reprlab.metrics.edit import wer_per

    torch.manual_seed(0)
    m = create_model(name, **cfg)
    batch = make_batch(WORDS, PRONS)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = m.loss(batch)["loss"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
    scores = wer_per(m.predict(WORDS), [[p] for p in PRONS])
    assert scores["wer"] == 0.0 and scores["per"] == 0.0
    assert m.predict(WORDS, beam=3) == list(PRONS)


def test_greedy_stops_at_eos_and_respects_the_length_limit():
    torch.manual_seed(0)
    m = create_model("g2p_transformer", d_model=32, ff=64, enc_layers=1, dec_layers=1).eval()
    src = random_batch(3, torch.Generator().manual_seed(5))["src"]
    out = m.greedy(src, max_len=4)
    assert out.shape[1] <= 4
    with torch.no_grad():
        m.head.bias.fill_(-1e4)
        m.head.bias[EOS] = 1e4  # EOS always wins: decoding ends after one step
    assert m.greedy(src).shape[1] == 1 and m.predict(["abc"]) == [()]


@pytest.mark.parametrize(
    "name,cfg",
    [
        ("g2p_transformer", {"d_model": 32, "ff": 64, "enc_layers": 1, "dec_layers": 2}),
        ("g2p_transformer", {"d_model": 32, "ff": 64, "enc_layers": 1, "dec_layers": 1, "norm": "post", "sdpa": False}),
        ("g2p_lstm", {"emb": 16, "hidden": 32, "layers": 2}),
    ],
)
def test_incremental_decoding_equals_recomputing_the_prefix(name, cfg):
    from reprlab.models.g2p_base import G2PModel

    torch.manual_seed(0)
    m = create_model(name, **cfg).eval()
    b = random_batch(6, torch.Generator().manual_seed(1))
    src, ys = b["src"], b["tgt"][:, :-1]
    with torch.no_grad():
        memory, state = m.encode(src), None
        for t in range(1, ys.shape[1] + 1):  # the cached step's logits are those of the full prefix
            step, state = m.decode_step(memory, src, ys[:, :t], state)
            torch.testing.assert_close(step, m.decode_logits(memory, src, ys[:, :t])[:, -1], atol=1e-5, rtol=1e-5)
    cached_greedy, cached_beam = m.greedy(src), m.beam(src, width=3)
    m.decode_step = lambda *a: G2PModel.decode_step(m, *a)  # the uncached default: rerun the whole prefix
    m.reorder_state = lambda *a: G2PModel.reorder_state(m, *a)
    assert torch.equal(cached_greedy, m.greedy(src)) and torch.equal(cached_beam, m.beam(src, width=3))


@pytest.mark.parametrize("site", ["dropout", "attn_dropout", "ff_dropout"])
def test_each_dropout_site_acts_alone_and_all_off_is_deterministic(site):
    base = dict(d_model=32, ff=64, enc_layers=1, dec_layers=1, dropout=0.0, attn_dropout=0.0, ff_dropout=0.0)
    b = random_batch(8, torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    off = create_model("g2p_transformer", **base).train()
    assert torch.equal(off(b["src"], b["tgt"]), off(b["src"], b["tgt"]))  # no site on: training mode draws no masks
    assert torch.equal(off(b["src"], b["tgt"]), off.eval()(b["src"], b["tgt"]))
    torch.manual_seed(0)
    on = create_model("g2p_transformer", **dict(base, **{site: 0.5})).train()
    assert not torch.allclose(on(b["src"], b["tgt"]), on(b["src"], b["tgt"]))
    assert torch.equal(
        on.eval()(b["src"], b["tgt"]), off.eval()(b["src"], b["tgt"])
    )  # same weights, dropout off in eval


@pytest.mark.parametrize("site", ["attn_dropout", "ff_dropout"])
def test_dropout_outside_zero_one_is_a_config_error(site):
    from reprlab.errors import ConfigError

    with pytest.raises(ConfigError, match=f"model.{site} must be in"):
        create_model("g2p_transformer", **{site: 1.0})
