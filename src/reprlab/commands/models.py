"""reprlab models: list the registered models."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list the registered models", description="List every registered model with its data task.")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..registry import get_spec, list_models

    for name in list_models():
        s = get_spec(name)
        print(f"{name:<22} {s.task:<10} {s.description}")
    return 0
