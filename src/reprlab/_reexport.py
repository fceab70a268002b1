"""Re-export helper for packages whose modules each add public names."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def reexport(package_name: str, path: list[str], namespace: dict[str, Any]) -> list[str]:
    """Import every public module of a package and copy the names in their ``__all__`` into it."""
    names: list[str] = []
    for m in pkgutil.iter_modules(path):
        if m.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{package_name}.{m.name}")
        for n in getattr(mod, "__all__", []):
            namespace[n] = getattr(mod, n)
            names.append(n)
    return names
