"""reprlab datasets: where each dataset was found, its sizes, or how to get it."""

from __future__ import annotations

from ._common import add_data_dir


def register(sub) -> None:
    p = sub.add_parser("datasets", help="list datasets, where they were found, or how to get them")
    add_data_dir(p, "also look in this folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data import dataset_names, get_dataset

    for name in dataset_names():
        info = get_dataset(name).describe(args.data_dir)
        if info["found"]:
            print(f"{name:<16} found    {info['where']}  ({info['sizes']})")
        else:
            print(f"{name:<16} MISSING  {info['how']}")
    return 0
