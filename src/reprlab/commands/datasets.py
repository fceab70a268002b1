"""reprlab datasets: where each built-in dataset was found, its sizes, or how to get it; and the forms of your
own data that ``--data PATH`` takes."""

from __future__ import annotations

from ._common import add_data_dir

# one example per form of your own data: (form, example --data, what it holds)
OWN_DATA_EXAMPLES = (
    ("folder", "./photos", "PNG/JPEG images; class sub-folders give labels; train/ and test/ sub-folders the split"),
    ("arrays", "./data.npz", "x: (N, D) features or (N, H, W) / (N, C, H, W) images, optional y; .npy holds x only"),
    ("table", "./data.csv", "numeric columns (.csv/.tsv), standardised on the training rows; --data.label=COLUMN"),
    ("lexicon", "./words.dict", "g2p models only: CMUdict lines or word<TAB>phone phone ..., UTF-8"),
)
OPTION_KEYS = {"seed": "split_seed"}  # a reader's option -> its --data.KEY


def register(sub) -> None:
    p = sub.add_parser(
        "datasets",
        help="list datasets, where they were found, or how to get them, and the forms of your own data",
        description="List the built-in datasets and explain the forms of your own data that --data PATH takes.",
    )
    add_data_dir(p, "also look in this folder")
    p.set_defaults(func=run)


def own_data_help() -> list[str]:
    """The lines that explain ``--data PATH``: the forms, one example each, and each reader's settings."""
    from ..data.spec import FORMS, OPTIONS

    lines = [f"your own data: --data takes {FORMS}"]
    for form, example, what in OWN_DATA_EXAMPLES:
        keys = [f"--data.{OPTION_KEYS.get(k, k)}" for k in OPTIONS[form] if k not in ("workers", "progress")]
        lines.append(f"  {form:<8} --data {example:<14} {what}")
        lines.append(f"  {'':<8} {'':<21} settings: {', '.join(keys)}")
    lines.append("  e.g.     reprlab train ae_conv --data ./photos --data.size=64 --data.channels=3 --out runs/photos")
    return lines


def run(args) -> int:
    from ..data import dataset_names, get_dataset

    print("built-in datasets (--data NAME):")
    for name in dataset_names():
        info = get_dataset(name).describe(args.data_dir)
        if info["found"]:
            print(f"  {name:<18} found    {info['where']}  ({info['sizes']})")
        else:
            print(f"  {name:<18} MISSING  {info['how']}")
    print()
    print("\n".join(own_data_help()))
    return 0
