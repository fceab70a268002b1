"""Image folders through reprlab's decode-once cache, against torchvision's ImageFolder, in the same run.

1. Speed: ``ae_conv`` trained for 3 epochs on a PNG folder of 60,000 images (Fashion-MNIST when installed,
   else random digits-like images), (a) by reprlab itself, as ``reprlab train ae_conv --data FOLDER`` does
   (:func:`reprlab.recipes.training.train_model`: the images task opens the folder through its memory-mapped
   uint8 cache, counting the cache's first build, and the engine trains), against (b)
   ``torchvision.datasets.ImageFolder`` + ``DataLoader(num_workers=2)`` in a plain loop (model.loss, backward,
   Adam step) with the same model, optimizer, learning rate and batch size. Target: (a) >= 2x the images/s
   of (b). The loaders alone (no model) are timed too: the bound a fast accelerator would leave.
2. Streaming: a generated JPEG folder whose decoded cache is >= 2 GiB is built and trained on for one
   epoch by the engine (a small ``ae_conv``) in a fresh process; its peak resident memory must stay under
   1.5 GiB. That counts about 1 GiB that importing torch (a CUDA build) and Lightning costs before any data,
   printed beside it. The folder and cache live in a temp folder that is deleted afterwards.

``--quick`` runs a small version (5,000 images, a 0.25 GiB stream) to check that the script works.

    python benchmarks/bench_data.py [--quick] [--n 60000] [--stream-gb 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402

from reprlab.data.folders import open_folder, write_image_folder  # noqa: E402

STREAM_SIDE = 224  # 3 x 224 x 224 uint8 = 147 KiB per image


def peak_rss_mb() -> float:
    """Peak resident set of this process in MiB, from resource.getrusage (ru_maxrss: KiB on Linux, bytes
    on macOS). On Linux it starts from the parent's resident set at fork, so the parent spawns the
    streaming check before it trains anything; :func:`hwm_mb` is the peak of this program alone."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1 << 20) if sys.platform == "darwin" else r / 1024


def hwm_mb() -> float | None:
    """VmHWM: the peak resident set since this program started (Linux), or None."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return None


def source_images(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """n uint8 28x28 images and labels: Fashion-MNIST's first n when installed, else upsampled digits."""
    try:
        from reprlab.data.images import load_fashion_mnist

        x, y = load_fashion_mnist("train")
        if n <= len(x):
            return (x[:n, 0] * 255).round().to(torch.uint8).numpy(), y[:n].numpy(), "Fashion-MNIST"
    except Exception:  # noqa: BLE001 - not installed: fall back to digits
        pass
    from sklearn.datasets import load_digits

    d = load_digits()
    img = torch.from_numpy(d.images.astype(np.float32) / 16).unsqueeze(1)
    img = torch.nn.functional.interpolate(img, size=(28, 28), mode="bilinear", align_corners=False)
    reps = -(-n // len(img))
    u = (img.repeat(reps, 1, 1, 1)[:n, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    noise = np.random.default_rng(0).integers(0, 8, u.shape, dtype=np.uint8)  # so no two files are equal
    return np.clip(u.astype(np.int16) + noise, 0, 255).astype(np.uint8), np.tile(d.target, reps)[:n], "digits 28px"


def new_model(device: str):
    from reprlab.registry import create_model

    torch.manual_seed(0)
    model = create_model("ae_conv", input_shape=(1, 28, 28)).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def train_steps(model, opt, batches, device: str) -> int:
    """Train on every batch (``model=None``: only move the batches to the device) and count the images."""
    n = 0
    for b in batches:
        if model is None:
            n += len(b["x"].to(device, non_blocking=True))
            continue
        x = b["x"].to(device, non_blocking=True)
        loss = model.loss({"x": x})["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(x)
    return n


def engine_tree(folder: Path, epochs: int, batch: int, device: str, model: dict | None = None) -> dict:
    """The config of ``reprlab train ae_conv --data FOLDER`` with every image in the training part."""
    return {
        "model": dict(model or {}),
        "trainer": {
            "epochs": epochs,
            "batch_size": batch,
            "lr": 1e-3,
            "optimizer": "adam",
            "seed": 0,
            "progress": False,
            "loggers": "none",
            "accelerator": "auto" if device == "cuda" else "cpu",
        },
        "data": {"name": str(folder), "test_fraction": 0.0, "val_fraction": 0.0},
    }


def train_with_engine(folder: Path, cache: Path, epochs: int, batch: int, device: str, model: dict | None = None):
    """Train ae_conv on ``folder`` as the CLI does (no run folder); returns (task data, seconds, cache build s)."""
    from reprlab.recipes.training import train_model

    os.environ["REPRLAB_CACHE"] = str(cache)  # the images task builds its cache there
    t0 = time.perf_counter()
    _, trainer, task, _ = train_model("ae_conv", engine_tree(folder, epochs, batch, device, model), None, quiet=True)
    trainer.close()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    reader = task.extras["reader"]
    build = json.loads((reader.cache / "meta.json").read_text())["seconds"]
    return task, seconds, build


def run_ours(folder: Path, cache: Path, epochs: int, batch: int, device: str, train: bool = True) -> dict:
    if train:
        task, seconds, build = train_with_engine(folder, cache / "engine", epochs, batch, device)
        seen = epochs * len(task.train)
        return {"images": seen, "seconds": seconds, "build_s": build, "ips": seen / seconds}
    t0 = time.perf_counter()
    data = open_folder(folder, test_fraction=0.0, val_fraction=0.0, progress=False, cache_root=cache)
    build = time.perf_counter() - t0
    src = data.batches("train", batch, seed=0)
    seen = sum(train_steps(None, None, src.epoch(e), device) for e in range(epochs))
    if device == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    return {"images": seen, "seconds": total, "build_s": build, "ips": seen / total}


def _gray_loader(path: str):
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("L")


def run_torchvision(folder: Path, epochs: int, batch: int, device: str, workers: int, train: bool = True) -> dict:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    model, opt = new_model(device) if train else (None, None)
    t0 = time.perf_counter()
    ds = datasets.ImageFolder(str(folder), transform=transforms.ToTensor(), loader=_gray_loader)
    loader = DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device == "cuda",
        generator=torch.Generator().manual_seed(0),
    )
    seen = 0
    for _ in range(epochs):
        seen += train_steps(model, opt, ({"x": x} for x, _ in loader), device)
    if device == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    return {"images": seen, "seconds": total, "ips": seen / total}


def speed(args, tmp: Path) -> dict:
    u, y, name = source_images(args.n)
    folder = tmp / "pngs"
    t = time.perf_counter()
    write_image_folder(folder, u, y)
    print(f"wrote {args.n} PNGs of {name} in {time.perf_counter() - t:.1f}s (not timed below)", flush=True)
    theirs = run_torchvision(folder, args.epochs, args.batch_size, args.device, args.loader_workers)
    print(f"torchvision ImageFolder: {theirs['ips']:.0f} images/s", flush=True)
    ours = run_ours(folder, tmp / "cache", args.epochs, args.batch_size, args.device)
    print(f"reprlab cache: {ours['ips']:.0f} images/s (first build {ours['build_s']:.1f}s)", flush=True)
    ratio = ours["ips"] / theirs["ips"]
    # the loaders alone (no model): what a fast accelerator would leave as the bound
    theirs_io = run_torchvision(folder, args.epochs, args.batch_size, args.device, args.loader_workers, train=False)
    ours_io = run_ours(folder, tmp / "cache-io", args.epochs, args.batch_size, args.device, train=False)
    print_table(
        f"ae_conv, {args.epochs} epochs on a PNG folder of {args.n} images ({name}), batch {args.batch_size}, "
        f"{args.device}, {torch.get_num_threads()} threads",
        ["loop", "images/s", "seconds", "of which cache build (s)"],
        [
            [
                "reprlab train ae_conv --data FOLDER (first build counted)",
                ours["ips"],
                ours["seconds"],
                ours["build_s"],
            ],
            [f"ImageFolder + DataLoader(num_workers={args.loader_workers})", theirs["ips"], theirs["seconds"], "-"],
            [
                "loading only: reprlab folder cache (first build counted)",
                ours_io["ips"],
                ours_io["seconds"],
                ours_io["build_s"],
            ],
            ["loading only: ImageFolder + DataLoader", theirs_io["ips"], theirs_io["seconds"], "-"],
        ],
    )
    io_ratio = ours_io["ips"] / theirs_io["ips"]
    print(f"ratio reprlab / torchvision, training ae_conv: {ratio:.2f}x (target >= 2x)")
    print(f"ratio reprlab / torchvision, loading only: {io_ratio:.2f}x")
    return {
        "ours": ours,
        "torchvision": theirs,
        "ratio": ratio,
        "ours_loading": ours_io,
        "torchvision_loading": theirs_io,
        "loading_ratio": io_ratio,
        "n": args.n,
        "data": name,
    }


def write_stream_folder(folder: Path, n: int) -> None:
    """n smooth random colour JPEGs of STREAM_SIDE px (compress like photos, decode like photos)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    width = len(str(n))
    for i in range(n):
        low = rng.integers(0, 256, (3, 14, 14), dtype=np.uint8)
        img = Image.fromarray(low.transpose(1, 2, 0)).resize((STREAM_SIDE, STREAM_SIDE), Image.Resampling.BICUBIC)
        img.save(folder / f"{i:0{width}d}.jpg", quality=90)


def stream_child(folder: str, cache: str, batch: int, map_limit: int) -> None:
    """Train a small ae_conv for one epoch through the engine (building the cache first); print sizes and peak
    RSS as JSON. ``map_limit``: caches larger than this are read with file reads (the default is 512 MiB; the
    --quick cache is smaller, so the child lowers it to stream that cache as a 2 GiB one is streamed)."""
    import reprlab.data.arraybatches as arraybatches

    arraybatches.MAP_LIMIT = map_limit
    import lightning  # noqa: F401 - the engine's import, counted in the baseline below

    baseline = hwm_mb() or peak_rss_mb()
    t0 = time.perf_counter()
    task, seconds, build = train_with_engine(
        Path(folder), Path(cache), 1, batch, "cpu", model={"channels": [4], "code_dim": 8}
    )
    reader = task.extras["reader"]
    out = {
        "images": len(task.train),
        "cache_gib": reader.x.nbytes / 2**30,
        "streams": task.train.streams(),
        "build_s": build,
        "train_s": time.perf_counter() - t0 - build,
        "baseline_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
        "vm_hwm_mb": hwm_mb(),
        "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    print(json.dumps(out))


def streaming(args, tmp: Path) -> dict | None:
    per_image = 3 * STREAM_SIDE * STREAM_SIDE
    n = int(np.ceil(args.stream_gb * 2**30 / per_image))
    free, need = shutil.disk_usage(tmp).free, 1.6 * n * per_image
    if free < need:
        print(f"streaming check skipped: {free / 2**30:.1f} GiB free in {tmp}, it needs about {need / 2**30:.1f}")
        return None
    folder = tmp / "stream"
    t = time.perf_counter()
    write_stream_folder(folder, n)
    print(f"wrote {n} JPEGs ({STREAM_SIDE}px) in {time.perf_counter() - t:.1f}s (not timed below)", flush=True)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    r = subprocess.run(
        [
            sys.executable,
            __file__,
            "--stream-child",
            str(folder),
            str(tmp / "stream-cache"),
            str(args.stream_batch),
            str(0 if args.quick else 512 << 20),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if r.returncode != 0:
        raise SystemExit(f"streaming child failed:\n{r.stderr}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    ok = res["peak_rss_mb"] < 1536  # MiB
    print_table(
        f"streaming: {res['images']} images, decoded cache {res['cache_gib']:.2f} GiB, one epoch of ae_conv through "
        "the engine, fresh process",
        [
            "cache GiB",
            "build s",
            "epoch s",
            "streamed by file reads",
            "RSS of torch + lightning imports MiB",
            "peak RSS MiB",
            "VmHWM MiB",
            "under 1.5 GiB",
        ],
        [
            [
                res["cache_gib"],
                res["build_s"],
                res["train_s"],
                "yes" if res["streams"] else "no (mapped)",
                res["baseline_mb"],
                res["peak_rss_mb"],
                res["vm_hwm_mb"] if res["vm_hwm_mb"] is not None else "-",
                "yes" if ok else "NO",
            ]
        ],
    )
    res["under_limit"] = ok
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60000, help="images in the PNG folder of the speed test")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--loader-workers", type=int, default=2, help="DataLoader workers of the torchvision loop")
    p.add_argument("--stream-gb", type=float, default=2.0, help="decoded size of the streaming folder, GiB")
    p.add_argument("--stream-batch", type=int, default=32)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="5,000 images and a 0.25 GiB stream")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-stream", action="store_true")
    p.add_argument("--tmp", default=None, help="where to write the folders and caches (deleted afterwards)")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--stream-child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stream_child:
        stream_child(args.stream_child[0], args.stream_child[1], int(args.stream_child[2]), int(args.stream_child[3]))
        return
    if args.quick:
        args.n = min(args.n, 5000)
        args.stream_gb = min(args.stream_gb, 0.25)
    tmp = Path(tempfile.mkdtemp(prefix="reprlab-bench-data-", dir=args.tmp))
    results = {}
    try:
        # streaming first: a child's ru_maxrss starts at its parent's resident set, which training would raise
        if not args.skip_stream:
            results["stream"] = streaming(args, tmp)
        if not args.skip_speed:
            results["speed"] = speed(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
