"""Export the parts of a trained model that a run is used for, to ONNX or to a ``torch.export`` program (.pt2).

A *part* is one function of the model, wrapped in a small ``nn.Module`` whose ``forward`` takes and returns
tensors only, as both exporters need. A model's family says which parts it has; the first is the default.

* autoencoders, VAEs, AE layers, RBMs: ``encoder``, x (B, C, H, W) -> code (B, K) (a VAE's posterior mean),
  and ``decoder``, code (B, K) -> x_hat (B, C, H, W) (the decoder's mean);
* classifiers and domain adaptation models: ``model``, x (B, C, H, W) -> logits (B, classes);
* DCGAN: ``generator`` (alias ``decoder``), z (B, latent) -> images (B, C, H, W) in [0, 1], by the EMA
  generator when the run kept one;
* G2P: ``encoder``, src (B, S) letter ids -> memory (B, S, D), for the LSTM also the decoder's first state
  h, c (layers, B, H); and ``decoder``, one decoding step: memory, src, prefix (B, T) phoneme ids starting with
  BOS (LSTM: and h, c) -> logits (B, V) of the next phoneme (LSTM: and the next h, c). The Transformer re-reads
  the whole prefix; the LSTM reads only the prefix's last id and carries its state.

The batch axis is dynamic everywhere, and so are the letter and phoneme lengths of G2P (up to the model's
``max_len``). ONNX files come from the ``torch.export``-based exporter (``dynamo=True``). The one part that
``torch.export`` cannot trace, the LSTM encoder (it packs variable-length sequences), goes through the
TorchScript-based exporter instead, and has no .pt2 form.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn
from torch.export import Dim
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .data.g2p import BOS, PAD
from .errors import CheckpointError, ConfigError, ReprlabError
from .io import atomic_write_with, describe_os_error
from .models.adaptation import DomainAdaptationModel
from .models.classifier import Classifier
from .models.g2p_base import G2PModel
from .models.gan import DCGAN
from .models.pretraining import StackedClassifier
from .models.seq2seq_lstm import LSTMG2P
from .train.checkpoint import WEIGHTS

FORMATS = ("onnx", "pt2")
FINAL = "final_metrics.json"  # written by every training command once the run is complete
LAYER_DONE = "done.json"  # written by greedy pre-training once a layer run is complete
EXAMPLE_BATCH = 2  # the batch the graph is traced with; 0 and 1 would be taken for constants
BATCH = Dim("batch")  # the dynamic batch axis of every input


class ExportError(ReprlabError):
    """A model, or one of its parts, that cannot be exported in the asked format."""


# ---------------------------------------------------------------- the parts, as modules of tensors
class _Wrapper(nn.Module):
    """A part of ``model``; holding the model as a submodule lets the exporters find its weights."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


class Encoder(_Wrapper):
    """x (B, C, H, W) -> code (B, K): ``model.encode`` (a VAE's posterior mean, an RBM's p(h|v))."""

    def forward(self, x: Tensor) -> Tensor:
        return self.model.encode(x)


class Decoder(_Wrapper):
    """code (B, K) -> x_hat (B, C, H, W): the decoder's mean (a GAN's images in [0, 1])."""

    def forward(self, z: Tensor) -> Tensor:
        return self.model.decode(z)


class Logits(_Wrapper):
    """x (B, C, H, W) -> logits (B, classes): the classifier's forward."""

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class TransformerEncoder(_Wrapper):
    """src (B, S) -> memory (B, S, D); the decoder finds the padding again in src."""

    def forward(self, src: Tensor) -> Tensor:
        return self.model.encode(src)[0]


class TransformerStep(_Wrapper):
    """memory (B, S, D), src (B, S), prefix (B, T) -> logits (B, V) of the phoneme after the prefix."""

    def forward(self, memory: Tensor, src: Tensor, prefix: Tensor) -> Tensor:
        return self.model.decode_logits((memory, src == PAD), src, prefix)[:, -1]


class LSTMEncoder(_Wrapper):
    """src (B, S) -> memory (B, S, H) and the decoder's first state h, c (layers, B, H).

    ``LSTMG2P.encode`` written out again: it reshapes the final states with ``len(src)``, which the
    TorchScript tracer would freeze to the example's batch size. Dropout is left out (eval mode).
    """

    def forward(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        packed = pack_padded_sequence(m.src_emb(src), (src != PAD).sum(1), batch_first=True, enforce_sorted=False)
        out, (h, c) = m.enc(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, H)
        n = m.config.layers
        # (2L, B, H/2) -> (L, B, H): join the forward and backward states of each layer
        h = h.view(n, 2, -1, h.shape[-1]).permute(0, 2, 1, 3).flatten(2)
        c = c.view(n, 2, -1, c.shape[-1]).permute(0, 2, 1, 3).flatten(2)
        return out, torch.tanh(m.bridge_h(h)), m.bridge_c(c)


class LSTMStep(_Wrapper):
    """memory (B, S, H), src (B, S), prefix (B, T), h and c (layers, B, H) -> logits (B, V), next h, next c.

    Only the prefix's last id is read; start with the encoder's h and c and feed back the returned ones."""

    def forward(self, memory: Tensor, src: Tensor, prefix: Tensor, h: Tensor, c: Tensor):
        logits, (h, c) = self.model.decode_step((memory, src == PAD, h, c), src, prefix, (h, c))
        return logits, h, c


@dataclass
class Part:
    """One exportable function: ``module(*inputs(n))`` for a batch of n, its names and dynamic axes."""

    module: nn.Module
    inputs: Callable[[int, torch.Generator], tuple[Tensor, ...]]  # (n, generator) -> example inputs
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic: tuple[dict[int, Dim], ...]  # per input: axis -> Dim
    traceable: bool = True  # torch.export can trace it (else ONNX only, through the TorchScript exporter)


# ---------------------------------------------------------------- what each family exports
def parts(model: nn.Module) -> dict[str, Part]:
    """The parts of ``model`` that can be exported, by name; the first is the default. Empty: none."""
    if isinstance(model, G2PModel):
        return _g2p_parts(model)
    if isinstance(model, DCGAN):
        generator = _generator(model)
        return {"generator": generator, "decoder": generator}
    if isinstance(model, (Classifier, StackedClassifier, DomainAdaptationModel)):
        return {"model": _image_part(model, Logits(model), "logits")}
    if hasattr(model, "encode") and hasattr(model, "decode"):
        return {"encoder": _image_part(model, Encoder(model), "code"), "decoder": _decoder(model)}
    return {}


def _images(model: nn.Module) -> Callable[[int, torch.Generator], tuple[Tensor]]:
    shape = tuple(model.config.input_shape)
    return lambda n, g: (torch.rand(n, *shape, generator=g),)


def _image_part(model: nn.Module, module: nn.Module, output: str) -> Part:
    return Part(module, _images(model), ("x",), (output,), ({0: BATCH},))


def _decoder(model: nn.Module) -> Part:
    images = _images(model)

    def codes(n: int, g: torch.Generator) -> tuple[Tensor]:
        with torch.no_grad():
            return (model.encode(*images(n, g)),)  # codes where the decoder meets them

    return Part(Decoder(model), codes, ("code",), ("x_hat",), ({0: BATCH},))


def _generator(model: DCGAN) -> Part:
    k = model.config.latent_dim
    return Part(Decoder(model), lambda n, g: (torch.randn(n, k, generator=g),), ("z",), ("images",), ({0: BATCH},))


def _g2p_parts(model: G2PModel) -> dict[str, Part]:
    src_len = Dim("src_len", max=model.config.max_len)
    tgt_len = Dim("tgt_len", max=model.config.max_len)
    lstm = isinstance(model, LSTMG2P)

    def src(n: int, g: torch.Generator) -> tuple[Tensor]:
        return (model.example_batch(n, g)["src"],)

    def step_inputs(n: int, g: torch.Generator) -> tuple[Tensor, ...]:
        (s,) = src(n, g)
        with torch.no_grad():
            memory = model.encode(s)
        t = int(torch.randint(2, 6, (), generator=g))
        prefix = torch.cat([torch.full((n, 1), BOS), torch.randint(3, model.tgt_vocab, (n, t - 1), generator=g)], 1)
        return (memory[0], s, prefix, memory[2], memory[3]) if lstm else (memory[0], s, prefix)

    step_names = ("memory", "src", "prefix")
    step_dynamic = ({0: BATCH, 1: src_len}, {0: BATCH, 1: src_len}, {0: BATCH, 1: tgt_len})
    if lstm:
        encoder = Part(
            LSTMEncoder(model), src, ("src",), ("memory", "h", "c"), ({0: BATCH, 1: src_len},), traceable=False
        )
        decoder = Part(
            LSTMStep(model),
            step_inputs,
            (*step_names, "h", "c"),
            ("logits", "h_next", "c_next"),
            (*step_dynamic, {1: BATCH}, {1: BATCH}),
        )
    else:
        encoder = Part(TransformerEncoder(model), src, ("src",), ("memory",), ({0: BATCH, 1: src_len},))
        decoder = Part(TransformerStep(model), step_inputs, step_names, ("logits",), step_dynamic)
    return {"encoder": encoder, "decoder": decoder}


def get_part(model: nn.Module, part: str | None) -> tuple[str, Part]:
    """The part named ``part`` of ``model`` (None: its default), in eval mode, and its name."""
    name = getattr(model, "registry_name", "") or type(model).__name__
    found = parts(model)
    if not found:
        raise ExportError(
            f"model {name!r} cannot be exported: export knows autoencoders, VAEs, classifiers, DCGAN and G2P models"
        )
    part = part or next(iter(found))
    if part not in found:
        raise ConfigError(f"model {name!r} has no part {part!r}; choose one of: {', '.join(found)}")
    found[part].module.eval()
    return part, found[part]


# ---------------------------------------------------------------- the two formats
def _first_line(e: BaseException) -> str:
    """The first line of the error at the root of ``e`` (the exporters wrap it in pages of advice)."""
    while e.__cause__ is not None:
        e = e.__cause__
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(e).splitlines()]
    return f"{type(e).__name__}: {next((line for line in lines if line), '')}"


@contextlib.contextmanager
def _quiet():
    """Keep the exporters' progress reports, warnings and C++ notes off the command's stdout and stderr."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def write_onnx(part: Part, path: Path) -> None:
    """Save ``part`` as an ONNX file at ``path`` (the caller makes the write atomic)."""
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"ONNX export needs {' and '.join(missing)}: pip install 'reprlab[export]'")
    example = part.inputs(EXAMPLE_BATCH, torch.Generator().manual_seed(0))
    kwargs = dict(input_names=list(part.input_names), output_names=list(part.output_names))
    with _quiet(), torch.no_grad():
        if part.traceable:
            torch.onnx.export(
                part.module, example, str(path), dynamic_shapes=part.dynamic, dynamo=True, external_data=False, **kwargs
            )
        else:
            axes = {n: {a: d.__name__ for a, d in dims.items()} for n, dims in zip(part.input_names, part.dynamic)}
            torch.onnx.export(part.module, example, str(path), dynamic_axes=axes, dynamo=False, **kwargs)


def write_pt2(part: Part, path: Path) -> None:
    """Save ``part`` as a ``torch.export`` program at ``path`` (load it with ``torch.export.load``)."""
    if not part.traceable:
        raise ExportError("torch.export cannot trace this part (it packs variable-length sequences); use --format onnx")
    example = part.inputs(EXAMPLE_BATCH, torch.Generator().manual_seed(0))
    with _quiet():
        program = torch.export.export(part.module, example, dynamic_shapes=part.dynamic)
        torch.export.save(program, str(path))


def export_model(model: nn.Module, fmt: str, path: str | Path, part: str | None = None) -> str:
    """Write part ``part`` (None: the default) of ``model`` to ``path`` as ``fmt`` ("onnx" or "pt2"), atomically.

    Returns the part's name. An ExportError says what cannot be exported and why."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    part, made = get_part(model, part)
    name = getattr(model, "registry_name", "") or type(model).__name__
    writer = write_onnx if fmt == "onnx" else write_pt2
    try:
        atomic_write_with(path, lambda tmp: writer(made, tmp))
    except OSError as e:
        raise ReprlabError(describe_os_error(e)) from None
    except ReprlabError as e:
        raise ExportError(f"the {part} of {name!r} cannot be exported to {fmt}: {e}") from None
    except Exception as e:  # an exporter's failure: one line, not its pages of trace
        raise ExportError(f"the {part} of {name!r} cannot be exported to {fmt}: {_first_line(e)}") from None
    return part


# ---------------------------------------------------------------- runs
def check_finished(run: str | Path) -> None:
    """Refuse a run that stopped before its end.

    A run is finished when its training command wrote ``final_metrics.json`` (or greedy pre-training wrote a
    layer's ``done.json``), and its weights are still those of that moment: a finished run continued with
    ``--resume`` and stopped again has newer weights than its final metrics."""
    run = Path(run)
    done = [p for p in (run / FINAL, run / LAYER_DONE) if p.is_file()]
    if not done:
        raise CheckpointError(
            f"{run} is not finished ({FINAL} is missing: training stopped early); "
            f"finish it with 'reprlab train --resume {run}'"
        )
    try:
        final_step = json.loads(done[0].read_text()).get("step")
        with safe_open(str(run / WEIGHTS), "pt") as f:
            weights_step = (f.metadata() or {}).get("step")
    except (OSError, ValueError, SafetensorError):
        return  # a missing or unreadable file is reported, with its own message, when the run is loaded
    if final_step is not None and weights_step is not None and int(weights_step) != int(final_step):
        raise CheckpointError(
            f"{run} is not finished: its weights are from step {weights_step}, its {done[0].name} from step "
            f"{final_step} (a resumed run stopped early); finish it with 'reprlab train --resume {run}'"
        )


__all__ = ["FORMATS", "ExportError", "Part", "parts", "get_part", "write_onnx", "write_pt2", "export_model"]
