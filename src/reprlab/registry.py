"""The model registry: ``@register_model`` / ``create_model`` / ``list_models``."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from .config import build
from .errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    config_cls: type
    task: str  # which data the model trains on: "images", "g2p", ...
    description: str


_MODELS: dict[str, ModelSpec] = {}
_LOADED = False


def register_model(name: str, config: type, task: str = "images") -> Callable[[type], type]:
    """Class decorator: register ``cls`` under ``name``, built from dataclass ``config``."""

    def deco(cls: type) -> type:
        if name in _MODELS and _MODELS[name].cls is not cls:
            raise ValueError(f"model {name!r} registered twice")
        doc = (cls.__doc__ or "").strip().splitlines()
        _MODELS[name] = ModelSpec(name, cls, config, task, doc[0] if doc else "")
        cls.registry_name = name
        return cls

    return deco


def _load_all() -> None:
    """Import every module in reprlab.models so their @register_model calls run."""
    global _LOADED
    if _LOADED:
        return
    from . import models

    for mod in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{mod.name}")
    _LOADED = True


def list_models() -> list[str]:
    _load_all()
    return sorted(_MODELS)


def get_spec(name: str) -> ModelSpec:
    _load_all()
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def build_config(name: str, values: dict[str, Any] | None = None) -> Any:
    """The model's frozen config built from ``values``, checked for key and type."""
    return build(get_spec(name).config_cls, values or {}, "model")


def create_model(name: str, **cfg: Any) -> Any:
    """Build a registered model: ``create_model("ae_mlp", code_dim=32)``."""
    spec = get_spec(name)
    config = build_config(name, cfg)
    return spec.cls(config)
