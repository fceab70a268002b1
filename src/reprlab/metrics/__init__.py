"""Metrics (IWAE NLL, Fréchet distance, edit distances, probes, ...), one module each.

This package re-exports every name in the modules' ``__all__``.
"""
import importlib as _importlib
import pkgutil as _pkgutil

__all__: list[str] = []
for _m in _pkgutil.iter_modules(__path__):
    if _m.name.startswith("_"):
        continue
    _mod = _importlib.import_module(f"{__name__}.{_m.name}")
    for _n in getattr(_mod, "__all__", []):
        globals()[_n] = getattr(_mod, _n)
        __all__.append(_n)
