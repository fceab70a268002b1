"""reprlab fd RUN: score a generative run's samples by FD-classifier, KID and class coverage."""

from __future__ import annotations

import argparse

from ._common import add_data_dir, add_no_progress, positive_int, seed_value


def register(sub) -> None:
    p = sub.add_parser(
        "fd",
        help="score a generative run's samples: FD-classifier, KID, class coverage (and Inception FID)",
        description=(
            "Samples N images from a GAN or VAE run and compares them with the test images of its data in the "
            "features of a classifier trained once on that data's training images (FD-classifier, not FID), by KID "
            "in the same features, and by class coverage. Fashion-MNIST uses reprlab's cached Fashion-MNIST "
            "classifier; any other labelled image data (--data: a folder with class sub-folders, an .npz with x "
            "and y, a built-in name; default: the run's own data) gets its own classifier, cached by the data's "
            "content fingerprint. Unlabelled data is scored in Inception features (--inception-weights). --floor "
            "also scores real training images, the best reachable value."
        ),
        epilog="example: reprlab fd runs/dcgan -n 10000 --floor; reprlab fd runs/vae-faces --data faces/",
    )
    p.add_argument("run", help="run directory of a generative model (GAN, VAE)")
    p.add_argument("-n", type=positive_int, default=10000, help="number of samples (> 0; default 10000)")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
    p.add_argument(
        "--data",
        help="the real images to compare with: a built-in name, an image folder or .npz/.npy "
        "(default: the data the run was trained on)",
    )
    add_data_dir(p, "folder with a built-in dataset's files (Fashion-MNIST's)")
    p.add_argument("--floor", action="store_true", help="also score N real training images against the test set")
    p.add_argument("--kid-subsets", type=positive_int, default=100, help="random subsets for KID (default 100)")
    p.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="also compute real Inception FID from this local weights file (needs the torch-fidelity package); "
        "the only score for unlabelled data",
    )
    add_no_progress(p, "hide the progress of the classifier's training")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from ..errors import ConfigError
    from ..metrics.classifier_features import class_coverage, classifier_features
    from ..metrics.frechet import check_inception_fid, frechet_distance, inception_fid, kernel_distance
    from ..recipes.fd import HOW_UNLABELLED, fd_reference
    from ..train.checkpoint import load_run, read_run_config

    if args.inception_weights:
        check_inception_fid(args.inception_weights)  # the package and the file, before any expensive work
    model = load_run(args.run)
    if not getattr(model, "can_sample", False):
        raise ConfigError(
            f"model {getattr(model, 'registry_name', '?')!r} cannot sample; fd scores generative models (VAE, GAN)"
        )
    saved = read_run_config(args.run)
    data = args.data or (saved.get("data") or {}).get("name") or "fashion-mnist"
    ref = fd_reference(data, saved, args.data_dir, bool(args.inception_weights))  # DataError: data fd cannot use
    shape = tuple(getattr(model.config, "input_shape", ()))
    if shape != tuple(ref.test.shape[1:]):
        raise ConfigError(
            f"{args.run} makes images of shape {shape}; {ref.describe} holds images of shape "
            f"{tuple(ref.test.shape[1:])} (pass --data with the images the run was trained on)"
        )
    if ref.labels is None and not args.inception_weights:
        raise ConfigError(
            f"{ref.describe} has no labels, so fd cannot train its feature classifier on it; {HOW_UNLABELLED}"
        )
    real = ref.test[: min(args.n, len(ref.test))]
    with torch.no_grad():
        fake = model.sample(args.n, generator=torch.Generator().manual_seed(args.seed))
    out = {"run": str(args.run), "data": ref.describe, "n": args.n, "samples": {}}
    if ref.labels is not None:
        clf, info = ref.classifier(progress=not args.no_progress)
        ref_f = classifier_features(clf, real)

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

        acc = info.get("test_accuracy")
        out["classifier_test_accuracy"] = None if acc is None else round(acc, 4)
        out["classes"] = list(ref.classes)
        out["samples"] = score(fake)
        if args.floor:
            idx = torch.randperm(len(ref.train), generator=torch.Generator().manual_seed(args.seed))[: args.n]
            out["real_floor"] = score(ref.train[idx])
    if args.inception_weights:
        out["samples"]["inception_fid"] = inception_fid(real, fake, args.inception_weights)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0
