"""G2P ensembles: the mean of the members' log-probabilities, decoded with each member's own incremental state."""

import pytest
import torch

from reprlab import create_model
from reprlab.data.g2p import random_batch
from reprlab.errors import ConfigError
from reprlab.models.g2p_base import G2PModel
from reprlab.models.g2p_ensemble import G2PEnsemble


def _members():
    torch.manual_seed(0)
    tf = create_model("g2p_transformer", d_model=32, ff=64, enc_layers=1, dec_layers=2).eval()
    lstm = create_model("g2p_lstm", emb=16, hidden=32, layers=2).eval()
    return tf, lstm


def _src(n=12, seed=3):
    return random_batch(n, torch.Generator().manual_seed(seed))["src"]


def test_step_log_probs_are_the_members_mean():
    tf, lstm = _members()
    ens = G2PEnsemble([tf, lstm]).eval()
    b = random_batch(6, torch.Generator().manual_seed(5))
    src, tgt_in = b["src"], b["tgt"][:, :-1]
    with torch.no_grad():
        want = (tf(src, tgt_in).log_softmax(-1) + lstm(src, tgt_in).log_softmax(-1)) / 2
        assert torch.allclose(ens(src, tgt_in), want, atol=1e-6)
        # one incremental step after a 3-token prefix agrees with the full recomputation
        mem, state = ens.encode(src), None
        for t in range(1, 4):
            step, state = ens.decode_step(mem, src, tgt_in[:, :t], state)
        assert torch.allclose(step, want[:, 2], atol=1e-5)


def test_ensemble_of_one_or_of_copies_decodes_like_the_model():
    tf, _ = _members()
    src = _src()
    assert torch.equal(G2PEnsemble([tf]).greedy(src), tf.greedy(src))
    assert torch.equal(G2PEnsemble([tf, tf]).beam(src, width=3), tf.beam(src, width=3))


def test_beam_with_incremental_states_equals_recomputing_every_prefix():
    """Beam search reorders each member's own state (a KV cache, an LSTM (h, c)); recomputing
    the whole prefix at every step needs no state, so the two must pick the same beams."""
    tf, lstm = _members()
    ens = G2PEnsemble([tf, lstm]).eval()
    src = _src(32, seed=7)
    fast = ens.beam(src, width=3)  # at these sizes a state left unreordered changes the result (mutation-checked)
    ens.decode_step = lambda memory, s, ys, state: (G2PModel.decode_step(ens, memory, s, ys, state)[0], None)
    assert torch.equal(fast, ens.beam(src, width=3))
    assert not torch.equal(fast, tf.beam(src, width=3))  # the LSTM member changes the result


def test_bad_members_and_training_are_refused():
    with pytest.raises(ConfigError, match="at least one"):
        G2PEnsemble([])
    with pytest.raises(ConfigError, match="G2P model"):
        G2PEnsemble([create_model("ae_mlp")])
    tf, _ = _members()
    with pytest.raises(ConfigError, match="only decodes"):
        G2PEnsemble([tf]).loss(random_batch(2))
