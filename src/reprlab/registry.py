"""The model registry: ``@register_model`` / ``create_model`` / ``list_models``."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from .config import BOUNDED_SETTINGS as _BOUNDED
from .config import RANGE_SETTINGS, build
from .plugins import load_plugins  # noqa: F401  (re-exported: reprlab.registry.load_plugins)
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
MODEL_PLUGINS = "reprlab.models"  # entry-point group of outside packages' models


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
    """Import every module in reprlab.models so their @register_model calls run, then outside packages'
    models (entry points of group ``reprlab.models``)."""
    global _LOADED
    if _LOADED:
        return
    from . import models

    for mod in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{mod.name}")
    _LOADED = True  # before the plugins: a plugin that imports reprlab.registry must not recurse
    try:
        load_plugins(MODEL_PLUGINS)
    except ConfigError:
        _LOADED = False  # try again (and say it again) next time
        raise


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


def needs_labels(name: str) -> bool:
    """Whether model ``name`` trains on labels: its class says so (``needs_labels = True``), or its config
    has ``num_classes`` (classifiers)."""
    spec = get_spec(name)
    flag = getattr(spec.cls, "needs_labels", None)
    if flag is not None:
        return bool(flag)
    return "num_classes" in spec.config_cls.__dataclass_fields__


def bounded_settings(config: Any) -> list[str]:
    """The ``model.KEY=VALUE`` range settings of ``config`` that need data in [0, 1] (a sigmoid output, a
    BCE loss, a Bernoulli likelihood or visible layer)."""
    return [f"model.{k}={getattr(config, k)}" for k, v in _BOUNDED.items() if getattr(config, k, None) == v]


def check_data_range(name: str, config: Any, unit_interval: bool, data: str = "") -> None:
    """ConfigError (one line, naming the settings to use) when data outside [0, 1] meets settings of model
    ``name`` that need [0, 1]; before anything is built or written, not in the first training step."""
    bounded = bounded_settings(config)
    if unit_interval or not bounded:
        return
    fields = get_spec(name).config_cls.__dataclass_fields__
    fix = " ".join(f"--model.{k}={v}" for k, v in RANGE_SETTINGS.items() if k in fields)
    of = f" {data}" if data else " the data"
    raise ConfigError(
        f"{', '.join(bounded)} needs data in [0, 1], but{of} holds values outside it "
        f"(a standardised table or real-valued arrays); set {fix}"
    )


def build_config_for_data(name: str, values: dict[str, Any], data_defaults: dict[str, Any], data: str = "") -> Any:
    """Model ``name``'s config for training on data whose task gives ``data_defaults`` (input_shape,
    num_classes, ...): the user's ``values``, with the data's settings filled in where the user gave none.

    The range settings (:data:`RANGE_SETTINGS`: loss, output, likelihood, visible) are filled together:
    only when the user set none of those the model has, so a forced ``--model.loss=bce`` is not paired with
    an output it cannot take.

    A setting that contradicts the data (an ``input_shape`` other than the images', fewer ``num_classes``
    than the labels have) is a ConfigError before anything is built or written, instead of a shape error in
    the first training step. ``data`` names the dataset in the message."""
    spec = get_spec(name)
    fields = spec.config_cls.__dataclass_fields__
    merged = dict(values)
    user_range = any(k in values for k in RANGE_SETTINGS if k in fields)
    for k, v in data_defaults.items():
        if k in RANGE_SETTINGS and user_range:
            continue
        if k in fields and k not in merged:
            merged[k] = v
    config = build_config(name, merged)
    of = f" of {data}" if data else ""
    shape = data_defaults.get("input_shape")
    if shape is not None and "input_shape" in fields and tuple(config.input_shape) != tuple(shape):
        raise ConfigError(
            f"model.input_shape={tuple(config.input_shape)} does not match the images{of}, which are {tuple(shape)}; "
            "drop --model.input_shape (it is taken from the data)"
        )
    classes = data_defaults.get("num_classes")
    if classes is not None and "num_classes" in fields and config.num_classes < classes:
        raise ConfigError(
            f"model.num_classes={config.num_classes} is fewer than the {classes} classes{of}; "
            "drop --model.num_classes (it is taken from the data)"
        )
    return config


def _changed_settings(config: Any) -> str:
    """The settings of a model config that differ from its defaults, as ``model.key=value`` text."""
    import dataclasses

    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        if value != default:
            out.append(f"model.{f.name}={value}")
    return ", ".join(out) or "the default settings"


def build_model(name: str, config: Any) -> Any:
    """Construct registered model ``name`` from its built ``config``.

    A model that cannot be built for these settings (a layer that shrinks an image below one pixel, a
    size torch refuses) fails inside its constructor with a ValueError or RuntimeError; that becomes a
    ConfigError naming the model and its settings. Only construction is wrapped, so a bug elsewhere still
    shows its traceback; running out of memory is left to the CLI, which says so in one line."""
    from .io import is_out_of_memory

    spec = get_spec(name)
    try:
        return spec.cls(config)
    except (ValueError, RuntimeError) as e:
        if is_out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or [e.__class__.__name__])[0]
        raise ConfigError(
            f"model {name!r} cannot be built with {_changed_settings(config)}: {first[:200]}; "
            "change those --model.* settings"
        ) from None


def create_model(name: str, **cfg: Any) -> Any:
    """Build a registered model: ``create_model("ae_mlp", code_dim=32)``."""
    return build_model(name, build_config(name, cfg))
