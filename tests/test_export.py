"""reprlab export: every registered model's parts, as ONNX files run in onnxruntime and as torch.export programs,
give the outputs of the model's own methods on a batch of another size than the one they were traced with;
G2P decodes the same words through its exported parts; the command refuses bad input with one line and exit 2."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from reprlab import registry
from reprlab.config import to_dict
from reprlab.data.g2p import BOS, EOS, PAD, TGT_VOCAB, encode_words, random_batch
from reprlab.export import EXAMPLE_BATCH, ExportError, export_model, parts
from reprlab.models.base import ReprModel
from reprlab.models.g2p_base import G2PModel
from reprlab.models.seq2seq_lstm import LSTMG2P
from reprlab.registry import create_model, list_models
from reprlab.train.checkpoint import CONFIG, save_weights

ATOL = 1e-5
N = 5  # the batch the exported files are run on
assert N != EXAMPLE_BATCH  # a different size than the traced one: the batch axis must be dynamic

# small settings, so that exporting all models stays quick
SMALL: dict[str, dict] = {
    "ae_mlp": {"hidden": (32,), "code_dim": 8},
    "ae_conv": {"channels": (4, 8), "code_dim": 8},
    "sae_mlp": {"hidden": (32,), "code_dim": 8},
    "dae_mlp": {"hidden": (32,), "code_dim": 8},
    "vae_mlp": {"hidden": (32,), "latent_dim": 4},
    "vae_conv": {"channels": (4, 8), "latent_dim": 4},
    "dense_ae_layer": {"hidden": 16},
    "rbm": {"hidden": 16},
    "classifier": {"width": 4},
    "stacked_classifier": {"hidden": (16, 16)},
    "dcgan": {"latent_dim": 8, "g_channels": 4, "d_channels": 4},
    "g2p_transformer": {"d_model": 16, "n_heads": 2, "enc_layers": 2, "dec_layers": 2, "ff": 32},
    "g2p_lstm": {"emb": 8, "hidden": 16, "layers": 2},
}
SMALL.update({f"da_{m}": {"channels": (4, 8), "feature_dim": 16} for m in ("source_only", "mmd", "coral", "dann")})
SMALL.update({f"da_{m}": {"channels": (4, 8), "feature_dim": 16} for m in ("pseudo_label", "target_oracle")})
SMALL["da_pseudo_label"]["num_target"] = 8
# variants whose export takes another path: a ResNet backbone, gated layers with a Gaussian decoder,
# an EMA generator, post-norm explicit attention
VARIANTS = [
    ("classifier", {"backbone": "resnet18"}),
    ("vae_mlp", {"hidden": (32,), "latent_dim": 4, "gated": True, "likelihood": "gaussian"}),
    ("dcgan", {**SMALL["dcgan"], "ema": 0.9}),
    ("g2p_transformer", {**SMALL["g2p_transformer"], "norm": "post", "sdpa": False}),
]
CASES = [(name, SMALL.get(name, {})) for name in list_models()] + VARIANTS


def _build(name: str, cfg: dict) -> nn.Module:
    """A randomly initialized model in eval mode, with statistics that are not the identity."""
    torch.manual_seed(0)
    model = create_model(name, **cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.3, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
        if hasattr(model, "feature_std"):  # the classifier's feature standardization, as a transfer run sets it
            model.feature_mean.normal_(0, 0.3, generator=g)
            model.feature_std.uniform_(0.5, 2.0, generator=g)
        if getattr(model, "g_ema", None) is not None:  # an EMA generator that differs from the trained one
            for p in model.g_ema.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _g2p_reference(model: G2PModel, part: str, g: torch.Generator):
    src = random_batch(N, g)["src"]
    memory = model.encode(src)
    lstm = isinstance(model, LSTMG2P)
    if part == "encoder":
        return (src,), ((memory[0], memory[2], memory[3]) if lstm else (memory[0],))
    prefix = torch.cat([torch.full((N, 1), BOS), torch.randint(3, len(TGT_VOCAB), (N, 3), generator=g)], 1)
    if not lstm:
        return (memory[0], src, prefix), (model.decode_logits(memory, src, prefix)[:, -1],)
    # the state after the prefix's first steps, as decoding carries it
    _, state = model.decode_step(memory, src, prefix[:, :1], None)
    _, state = model.decode_step(memory, src, prefix[:, :2], state)
    _, state = model.decode_step(memory, src, prefix[:, :3], state)
    logits, (h, c) = model.decode_step(memory, src, prefix, state)
    return (memory[0], src, prefix, *state), (logits, h, c)


@torch.no_grad()
def reference(model: nn.Module, part: str, seed: int = 2):
    """Inputs of a batch of N for ``part``, and what the model's own methods give for them."""
    g = torch.Generator().manual_seed(seed)
    if isinstance(model, G2PModel):
        return _g2p_reference(model, part, g)
    if part in ("generator", "decoder") and model.registry_name == "dcgan":
        z = torch.randn(N, model.config.latent_dim, generator=g)
        return (z,), (model(z),)  # decode, by the EMA generator when there is one
    x = torch.rand(N, *model.config.input_shape, generator=g)
    if part == "encoder":
        return (x,), (model.encode(x),)
    if part == "decoder":  # every autoencoder's forward is its decoder applied to its code
        return (model.encode(x),), (model(x),)
    return (x,), (model(x),)  # part "model": the logits


def _max_diff(got, want) -> float:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert tuple(a.shape) == tuple(b.shape)
    return max(float(np.abs(np.asarray(a) - b.numpy()).max()) for a, b in zip(got, want))


def _run_onnx(path, names, inputs):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {n: t.numpy() for n, t in zip(names, inputs)})


def _ort_greedy(enc, dec, src: np.ndarray, lstm: bool, max_len: int) -> np.ndarray:
    """Greedy decoding with the exported encoder and decoder step, as a user of the ONNX files would write it."""
    memory, *state = enc.run(None, {"src": src})
    ys = np.full((len(src), 1), BOS, dtype=np.int64)
    done = np.zeros(len(src), dtype=bool)
    for _ in range(max_len):
        feeds = {"memory": memory, "src": src, "prefix": ys}
        if lstm:
            feeds.update(h=state[0], c=state[1])
        logits, *state = dec.run(None, feeds)
        nxt = np.where(done, PAD, logits.argmax(-1))
        ys = np.concatenate([ys, nxt[:, None]], 1)
        done |= nxt == EOS
        if done.all():
            break
    return ys[:, 1:]


def _check_greedy_decoding(model: G2PModel, encoder_path, decoder_path) -> None:
    """The exported encoder and decoder step, looped in onnxruntime, decode words as the model does."""
    import onnxruntime as ort

    enc, dec = (ort.InferenceSession(str(p)) for p in (encoder_path, decoder_path))
    src = encode_words(["a", "onnx", "export", "pronunciation", "of"])  # one to 13 letters, padded
    want = model.greedy(src)
    got = _ort_greedy(enc, dec, src.numpy(), isinstance(model, LSTMG2P), model.default_max_len(src))
    assert want.shape[1] > 5  # random weights rarely stop early: many steps were compared
    np.testing.assert_array_equal(got, want.numpy())


@pytest.mark.slow
@pytest.mark.parametrize("name,cfg", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_every_part_exports_and_matches_pytorch(name, cfg, fmt, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    model = _build(name, cfg)
    found = parts(model)
    if not found:
        with pytest.raises(ExportError, match="cannot be exported"):
            export_model(model, fmt, tmp_path / "m", None)
        return
    for part in found:
        path = tmp_path / f"{part}.{fmt}"
        try:
            export_model(model, fmt, path, part)
        except ExportError as e:  # only the LSTM encoder has no torch.export form (it packs sequences)
            assert (name, part, fmt) == ("g2p_lstm", "encoder", "pt2"), str(e)
            assert not path.exists()
            continue
        inputs, want = reference(model, part)
        names = found[part].input_names
        if fmt == "onnx":
            got = _run_onnx(path, names, inputs)
        else:
            with torch.no_grad():
                got = torch.export.load(str(path)).module()(*inputs)
            got = [t.numpy() for t in (got if isinstance(got, tuple) else (got,))]
        diff = _max_diff(got, want)
        print(f"{name} {cfg} {part} {fmt}: max |diff| = {diff:.2e} on a batch of {N}")
        assert diff <= ATOL, f"{name} {part} {fmt}: max |diff| {diff:.3g}"
    if isinstance(model, G2PModel) and fmt == "onnx":
        _check_greedy_decoding(model, tmp_path / "encoder.onnx", tmp_path / "decoder.onnx")


def test_default_parts():
    defaults = {name: next(iter(parts(_build(name, cfg))), None) for name, cfg in SMALL.items()}
    assert defaults["ae_mlp"] == defaults["vae_conv"] == defaults["rbm"] == "encoder"
    assert defaults["classifier"] == defaults["da_dann"] == defaults["stacked_classifier"] == "model"
    assert defaults["dcgan"] == "generator"
    assert list(parts(_build("g2p_lstm", SMALL["g2p_lstm"]))) == ["encoder", "decoder"]


# ---------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A finished ae_mlp run on digits (8x8 images), trained for a few steps through the CLI."""
    from reprlab.cli import main

    run = tmp_path_factory.mktemp("export") / "ae"
    args = ["train", "ae_mlp", "--data", "digits", "--limit", "128", "--epochs", "1", "--batch-size", "32"]
    args += ["--no-progress", "--trainer.tensorboard=false", "--model.hidden=[32]", "--model.code_dim=4"]
    assert main([*args, "--out", str(run)]) == 0
    return run


def _one_line_error(rc, out, err, *words):
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("reprlab"), err
    for w in words:
        assert w in err, err


def test_cli_exports_the_default_part_to_onnx(cli, ae_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from reprlab.train.checkpoint import load_run

    out = tmp_path / "sub" / "enc.onnx"
    rc, stdout, err = cli("export", ae_run, "--format", "onnx", "-o", out)
    assert rc == 0, err
    assert str(out) in stdout and "encoder" in stdout
    model = load_run(ae_run)
    x = torch.rand(7, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    (got,) = ort.InferenceSession(str(out)).run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = model.encode(x)
    assert got.shape == (7, 4)
    np.testing.assert_allclose(got, want.numpy(), atol=ATOL, rtol=0)


def test_cli_exports_the_decoder_to_pt2(cli, ae_run, tmp_path):
    from reprlab.train.checkpoint import load_run

    out = tmp_path / "dec.pt2"
    rc, stdout, err = cli("export", ae_run, "--format", "pt2", "-o", out, "--part", "decoder")
    assert rc == 0, err
    assert str(out) in stdout
    model = load_run(ae_run)
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        got = torch.export.load(str(out)).module()(model.encode(x))
        torch.testing.assert_close(got, model(x), atol=ATOL, rtol=0)


def test_cli_refuses_an_existing_file_without_overwrite(cli, ae_run, tmp_path):
    out = tmp_path / "enc.pt2"
    out.write_bytes(b"the user's file")
    rc, stdout, err = cli("export", ae_run, "--format", "pt2", "-o", out)
    _one_line_error(rc, stdout, err, str(out), "--overwrite")
    assert out.read_bytes() == b"the user's file"
    rc, stdout, err = cli("export", ae_run, "--format", "pt2", "-o", out, "--overwrite")
    assert rc == 0, err
    assert torch.export.load(str(out)) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["enc.pt2"]  # no temp file left behind


def test_cli_refuses_an_unknown_part_and_lists_the_valid_ones(cli, ae_run, tmp_path):
    rc, stdout, err = cli("export", ae_run, "--format", "pt2", "-o", tmp_path / "m.pt2", "--part", "generator")
    _one_line_error(rc, stdout, err, "'generator'", "encoder, decoder")
    assert not any(tmp_path.iterdir())


def test_cli_refuses_an_unknown_format(cli, ae_run, tmp_path):
    rc, stdout, err = cli("export", ae_run, "--format", "tflite", "-o", tmp_path / "m.tflite")
    _one_line_error(rc, stdout, err, "tflite", "onnx", "pt2")
    with pytest.raises(Exception, match="unknown export format 'tflite'"):
        export_model(create_model("ae_mlp"), "tflite", tmp_path / "m.tflite")


def test_cli_refuses_an_unfinished_run(cli, ae_run, tmp_path):
    # a run stopped before its end has checkpoints but no final_metrics.json
    run = tmp_path / "stopped"
    shutil.copytree(ae_run, run)
    (run / "final_metrics.json").unlink()
    rc, stdout, err = cli("export", run, "--format", "pt2", "-o", tmp_path / "m.pt2")
    _one_line_error(rc, stdout, err, "not finished", "--resume")
    assert not (tmp_path / "m.pt2").exists()


def test_cli_refuses_a_finished_run_resumed_and_stopped_again(cli, ae_run, tmp_path):
    # `train --resume` on a finished run leaves its old final_metrics.json until it finishes again:
    # the weights then come from a later step than the final metrics
    run = tmp_path / "resumed"
    shutil.copytree(ae_run, run)
    final = json.loads((run / "final_metrics.json").read_text())
    (run / "final_metrics.json").write_text(json.dumps({**final, "step": final["step"] - 1}))
    rc, stdout, err = cli("export", run, "--format", "pt2", "-o", tmp_path / "m.pt2")
    _one_line_error(rc, stdout, err, "not finished", f"step {final['step']}")


def test_cli_refuses_a_missing_run_and_a_folder_as_output(cli, ae_run, tmp_path):
    rc, stdout, err = cli("export", tmp_path / "nope", "--format", "pt2", "-o", tmp_path / "m.pt2")
    _one_line_error(rc, stdout, err, "does not exist")
    rc, stdout, err = cli("export", ae_run, "--format", "pt2", "-o", tmp_path)
    _one_line_error(rc, stdout, err, "is a directory")


@dataclass(frozen=True)
class _PlainConfig:
    size: int = 3


class _Plain(ReprModel):
    """A model with no part that export knows (no encoder, no classifier head)."""

    registry_name = "plain_for_export_test"

    def __init__(self, config: _PlainConfig):
        super().__init__(config)
        self.w = nn.Parameter(torch.ones(config.size))


def _save_run(run, name: str, model: nn.Module) -> None:
    run.mkdir()
    (run / CONFIG).write_text(json.dumps({"model": name, "model_config": to_dict(model.config)}))
    save_weights(run / "model.safetensors", model)
    (run / "final_metrics.json").write_text("{}")


def test_cli_says_when_a_model_cannot_be_exported(cli, tmp_path, monkeypatch):
    spec = registry.ModelSpec(_Plain.registry_name, _Plain, _PlainConfig, "images", "")
    registry.list_models()  # load the real ones first, so the patch is undone against the full registry
    monkeypatch.setitem(registry._MODELS, spec.name, spec)
    _save_run(tmp_path / "plain", spec.name, _Plain(_PlainConfig()))
    rc, stdout, err = cli("export", tmp_path / "plain", "--format", "pt2", "-o", tmp_path / "m.pt2")
    _one_line_error(rc, stdout, err, "'plain_for_export_test' cannot be exported")


def test_cli_says_that_the_lstm_encoder_has_no_pt2_form(cli, tmp_path):
    model = _build("g2p_lstm", SMALL["g2p_lstm"])
    _save_run(tmp_path / "lstm", "g2p_lstm", model)
    rc, stdout, err = cli("export", tmp_path / "lstm", "--format", "pt2", "-o", tmp_path / "enc.pt2")
    _one_line_error(rc, stdout, err, "encoder of 'g2p_lstm' cannot be exported to pt2", "--format onnx")
    assert not (tmp_path / "enc.pt2").exists()
    rc, stdout, err = cli(
        "export", tmp_path / "lstm", "--format", "pt2", "-o", tmp_path / "dec.pt2", "--part", "decoder"
    )
    assert rc == 0, err
