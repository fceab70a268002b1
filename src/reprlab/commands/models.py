"""reprlab models: list the registered models."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the registered models",
        description="List every registered model with its data task and the file that holds it.",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from ..registry import get_spec, list_models

    for name in list_models():
        s = get_spec(name)
        where = "models/" + s.cls.__module__.rsplit(".", 1)[-1] + ".py"
        print(f"{name:<20} {s.task:<8} {where:<26} {s.description}")
    return 0
