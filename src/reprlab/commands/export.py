"""reprlab export RUN --format onnx|pt2 -o FILE [--part NAME]: a finished run's encoder, decoder, classifier,
generator or G2P step as an ONNX file or a torch.export program."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a finished run's model (or its encoder / decoder) to ONNX or torch.export (.pt2)",
        description=(
            "Export what a run is used for. Parts, the first being the default: autoencoders and VAEs "
            "encoder|decoder; classifiers model; dcgan generator (alias decoder); G2P encoder|decoder "
            "(one decoding step). The batch axis is dynamic (and the sequence lengths of G2P)."
        ),
        epilog="example: reprlab export runs/ae32 --format onnx -o enc.onnx --part encoder",
    )
    p.add_argument("run", help="a finished run directory")
    p.add_argument("--format", required=True, choices=["onnx", "pt2"], help="onnx, or pt2 (torch.export.save)")
    p.add_argument("-o", "--output", required=True, help="file to write")
    p.add_argument("--part", help="which part to export (default: the model's first part, see above)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import check_finished, export_model
    from ..io import make_parent, output_path
    from ..train.checkpoint import load_run

    out = output_path(args.output, args.overwrite, "export")
    model = load_run(args.run)
    check_finished(args.run)
    part = export_model(model, args.format, make_parent(out), args.part)
    print(f"wrote {out} (the {part} of {model.registry_name}, {args.format})")
    return 0
