"""reprlab fd RUN: score a generative run's samples by FD-classifier, KID and class coverage."""

from __future__ import annotations

import argparse

from ._common import add_data_dir, positive_int, seed_value


def register(sub) -> None:
    p = sub.add_parser(
        "fd",
        help="score a generative run's samples: FD-classifier, KID, class coverage (and Inception FID)",
        description=(
            "Samples N images from a GAN or VAE run and compares them with the Fashion-MNIST test set in the "
            "features of reprlab's cached Fashion-MNIST classifier (FD-classifier, not FID), by KID in the same "
            "features, and by class coverage. --floor also scores real training images, the best reachable value."
        ),
        epilog="example: reprlab fd runs/dcgan -n 10000 --floor",
    )
    p.add_argument("run", help="run directory of a generative model trained on 28x28 Fashion-MNIST")
    p.add_argument("-n", type=positive_int, default=10000, help="number of samples (> 0; default 10000)")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
    add_data_dir(p, "folder with the Fashion-MNIST files")
    p.add_argument("--floor", action="store_true", help="also score N real training images against the test set")
    p.add_argument("--kid-subsets", type=positive_int, default=100, help="random subsets for KID (default 100)")
    p.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="also compute real Inception FID from this local weights file (needs the torch-fidelity package)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from ..data.images import load_fashion_mnist
    from ..errors import ConfigError
    from ..metrics.classifier_features import class_coverage, classifier_features, fd_classifier
    from ..metrics.frechet import check_inception_fid, frechet_distance, inception_fid, kernel_distance
    from ..train.checkpoint import load_run

    if args.inception_weights:
        check_inception_fid(args.inception_weights)  # the package and the file, before any expensive work
    model = load_run(args.run)
    if not getattr(model, "can_sample", False):
        raise ConfigError(
            f"model {getattr(model, 'registry_name', '?')!r} cannot sample; fd scores generative models (VAE, GAN)"
        )
    x_te, _ = load_fashion_mnist("test", args.data_dir)
    shape = tuple(getattr(model.config, "input_shape", ()))
    if shape != tuple(x_te.shape[1:]):
        raise ConfigError(
            f"{args.run} makes images of shape {shape}; FD-classifier needs 28x28 Fashion-MNIST images "
            f"{tuple(x_te.shape[1:])}"
        )
    clf, info = fd_classifier(args.data_dir)
    ref = x_te[: min(args.n, len(x_te))]
    ref_f = classifier_features(clf, ref)
    with torch.no_grad():
        fake = model.sample(args.n, generator=torch.Generator().manual_seed(args.seed))

    def score(imgs):
        f = classifier_features(clf, imgs)
        kid, kid_std = kernel_distance(f, ref_f, subsets=args.kid_subsets, seed=args.seed)
        hist, covered = class_coverage(clf, imgs)
        return {
            "fd_classifier": frechet_distance(f, ref_f),
            "kid": kid,
            "kid_std": kid_std,
            "classes_covered": covered,
            "class_shares": [round(float(v), 4) for v in hist],
        }

    out = {
        "run": str(args.run),
        "n": args.n,
        "classifier_test_accuracy": round(info["test_accuracy"], 4),
        "samples": score(fake),
    }
    if args.floor:
        x_tr, _ = load_fashion_mnist("train", args.data_dir)
        idx = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(args.seed))[: args.n]
        out["real_floor"] = score(x_tr[idx])
    if args.inception_weights:
        out["samples"]["inception_fid"] = inception_fid(ref, fake, args.inception_weights)
    print(json.dumps(out, indent=2))
    return 0
