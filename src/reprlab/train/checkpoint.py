"""Run directories: atomic writes, safetensors weights, trainer state, and loading a run back.

A run directory holds ``config.json`` (resolved config, registry name, seed, versions),
``model.safetensors`` (the weights, for users), ``trainer_state.pt`` (everything needed to
resume: weights, optimizers, RNG states, position; loaded with ``weights_only=True``) and
``metrics.jsonl`` (one JSON line per epoch).
"""

from __future__ import annotations

import io
import json
import platform
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..errors import CheckpointError
from ..io import atomic_write_bytes, atomic_write_text  # noqa: F401 - re-exported for callers of this module

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "trainer_state.pt"
PREV_STATE = "trainer_state.prev.pt"  # the checkpoint before the newest, kept for a divergence roll-back
BEST = "best.safetensors"  # the best epoch by trainer.early_stop's metric
METRICS = "metrics.jsonl"


def versions() -> dict[str, str]:
    import lightning
    import numpy
    import torchvision

    from .._version import __version__

    return {
        "reprlab": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def is_run(path: Path) -> bool:
    return any((Path(path) / f).exists() for f in (CONFIG, WEIGHTS, STATE))


def state_dict_for_save(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share memory (tied weights, views)
    return {k: v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()}


def save_weights(path: Path, module: torch.nn.Module, metadata: dict[str, str] | None = None) -> None:
    save_tensors(path, state_dict_for_save(module), metadata)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    atomic_write_bytes(Path(path), canonical_safetensors(save(tensors, metadata=metadata or {})))


def canonical_safetensors(data: bytes) -> bytes:
    """The same file with its JSON header's keys sorted: safetensors writes its metadata in hash-map
    order, which differs from process to process, so identical runs would otherwise differ in bytes."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header with spaces to a multiple of 8 bytes
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def weights_metadata(path: Path) -> dict[str, str]:
    """The metadata stored in a safetensors file (empty when there is none or it cannot be read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return {}


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the run has no saved weights")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({str(e).splitlines()[0]}); "
            "the checkpoint is corrupt or truncated"
        ) from None


def apply_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``module`` strictly, turning mismatches into one clear error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {missing[0]})")
        if extra:
            parts.append(f"unexpected {len(extra)} (e.g. {extra[0]})")
        raise CheckpointError(f"{where} does not match the model: {'; '.join(parts)}")
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CheckpointError(
                f"{where} does not match the model: {k} has shape {tuple(v.shape)}, "
                f"the model expects {tuple(own[k].shape)}"
            )
    module.load_state_dict(state, strict=True)


def save_state(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_state(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; nothing to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise CheckpointError(
            f"{path} cannot be read ({e.__class__.__name__}); the trainer state is corrupt or truncated"
        ) from None
    if not isinstance(state, dict) or "step" not in state or "model" not in state:
        raise CheckpointError(f"{path} is not a reprlab trainer state")
    missing = [k for k in _STATE_KEYS if k not in state]
    rng = state.get("rng")
    if not missing and (not isinstance(rng, dict) or any(k not in rng for k in _RNG_KEYS)):
        missing = ["rng"]
    if missing:
        raise CheckpointError(f"{path} lacks {missing[0]!r}; the trainer state is incomplete, so the run cannot resume")
    return state


_STATE_KEYS = ("model", "optimizers", "step", "epoch", "batch_in_epoch", "rng")
_RNG_KEYS = ("torch", "numpy_keys", "numpy_pos", "python")


def read_run_config(run: str | Path) -> dict[str, Any]:
    run = Path(run)
    if not run.exists():
        raise CheckpointError(f"run directory {run} does not exist")
    if not run.is_dir():
        raise CheckpointError(f"{run} is not a run directory")
    p = run / CONFIG
    if not p.is_file():
        raise CheckpointError(f"{run} is not a reprlab run: {CONFIG} is missing")
    try:
        cfg = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{p} is not valid JSON ({e}); the run is corrupt") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), str):
        raise CheckpointError(f"{p} does not name a model; the run is corrupt")
    for key in ("model_config", "trainer", "data"):
        if cfg.get(key) is not None and not isinstance(cfg[key], dict):
            raise CheckpointError(
                f"{p}: {key!r} must be a mapping of settings, got {cfg[key]!r:.40}; the run is corrupt"
            )
    return cfg


def load_run(run: str | Path) -> torch.nn.Module:
    """The trained model of run directory ``run``, in eval mode."""
    from ..registry import create_model

    cfg = read_run_config(run)
    try:
        model = create_model(cfg["model"], **cfg.get("model_config", {}))
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{Path(run) / CONFIG}: cannot rebuild model {cfg['model']!r}: {e}") from None
    weights = Path(run) / WEIGHTS
    saved_as = weights_metadata(weights).get("model")
    if saved_as and saved_as != cfg["model"]:
        raise CheckpointError(f"{weights} holds {saved_as} weights but {Path(run) / CONFIG} names {cfg['model']}")
    apply_weights(model, load_weights(weights), str(weights))
    model.eval()
    return model
