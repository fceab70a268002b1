"""reprlab models [NAME]: list the registered models, or every setting of one of them."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the registered models, or the settings of one",
        description="Without NAME: every registered model with its data task and the file that holds it. "
        "With NAME: each of the model's settings (--model.KEY=VALUE) with its type, default and help.",
        epilog="example: reprlab models vae_mlp",
    )
    p.add_argument("name", nargs="?", help="a registered model")
    p.set_defaults(func=run)


def settings_table(name: str) -> list[str]:
    """The model's settings as aligned text lines: ``--model.KEY=TYPE  (default D)  help``."""
    from ..config import describe_fields
    from ..registry import get_spec

    rows = describe_fields(get_spec(name).config_cls, "--model.")
    width = max(len(f"{k}={t}") for k, t, _, _ in rows)
    return [f"  {f'{k}={t}':<{width}}  (default {d})  {h}".rstrip() for k, t, d, h in rows]


def run(args) -> int:
    from ..registry import get_spec, list_models

    if args.name:
        s = get_spec(args.name)  # an unknown name is a ConfigError listing the known ones
        where = "models/" + s.cls.__module__.rsplit(".", 1)[-1] + ".py"
        print(f"{s.name}: {s.description} (task {s.task}, {where})")
        print("settings (set with --model.KEY=VALUE, or under model: in a --config YAML):")
        print("\n".join(settings_table(args.name)))
        return 0
    for name in list_models():
        s = get_spec(name)
        where = "models/" + s.cls.__module__.rsplit(".", 1)[-1] + ".py"
        print(f"{name:<20} {s.task:<8} {where:<26} {s.description}")
    return 0
