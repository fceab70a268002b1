"""Figures for the CLI, the studies, the engine's callbacks and the report; all off-screen (Agg), to PNG.

A module of its own beside metrics, so that anything above it draws without importing the report.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from .errors import ConfigError  # noqa: E402
from .io import atomic_write_with  # noqa: E402

DEFAULT_FORMAT = "png"


def _formats() -> set[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return set(FigureCanvasAgg.get_supported_filetypes())


def figure_path(path: str | Path) -> Path:
    """The file a figure for ``path`` is written to: ``path`` itself, with ``.png`` added when it has no suffix
    (as matplotlib would). A suffix matplotlib cannot write is a ConfigError, raised before any work."""
    p = Path(path)
    if p.is_dir():  # left as it is, for the output check to refuse by its name
        return p
    if not p.suffix:
        return p.with_name(p.name + "." + DEFAULT_FORMAT)
    fmt = p.suffix[1:].lower()
    if fmt not in _formats():
        raise ConfigError(f"cannot write a figure as {p}: give a .png file (or .pdf, .svg, .jpg)")
    return p


def save_figure(fig, path: str | Path, **savefig_kw) -> Path:
    """Write ``fig`` to ``path`` atomically (temp file, then rename: a reader never sees half a PNG), close it,
    and return the path written (see :func:`figure_path`)."""
    p = figure_path(path)
    fmt = p.suffix[1:].lower()
    try:
        atomic_write_with(p, lambda tmp: fig.savefig(tmp, format=fmt, **savefig_kw))
    finally:
        plt.close(fig)
    return p


def _to_hwc(img: Tensor) -> np.ndarray:
    img = img.detach().float().clamp(0, 1).cpu()
    if img.dim() == 1:
        side = int(round(img.numel() ** 0.5))
        img = img.view(1, side, side)
    return img.permute(1, 2, 0).numpy().squeeze(-1) if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()


def grid_array(images: Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one (H', W', 3) array with ``nrow`` columns.

    One channel is shown in grey, three as RGB. Any other count (2, 4, ...) shows each channel as a grey
    image of its own, the C channels of an image side by side (``nrow`` then counts images, not tiles)."""
    from torchvision.utils import make_grid

    images = images.detach().float().clamp(0, 1).cpu()
    if images.dim() != 4:
        raise ConfigError(f"an image grid needs images (N, C, H, W), got a tensor of shape {tuple(images.shape)}")
    n, c = images.shape[:2]
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    if c not in (1, 3):
        images = images.reshape(n * c, 1, *images.shape[2:])
        n, nrow = n * c, nrow * c
    g = make_grid(images, nrow=nrow, padding=pad, pad_value=1.0)
    return g.permute(1, 2, 0).numpy()


def image_grid(images: Tensor, path: str | Path, nrow: int | None = None, title: str | None = None) -> Path:
    """Tile images (N, C, H, W) in [0, 1] into one figure at ``path``; returns the path written."""
    arr = grid_array(images, nrow)
    fig, ax = plt.subplots(figsize=(max(3, arr.shape[1] / 40), max(3, arr.shape[0] / 40)))
    ax.imshow(arr, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return save_figure(fig, path, bbox_inches="tight", dpi=100)


def reconstruction_grid(
    x: Tensor, x_hat: Tensor, path: str | Path, title: str = "top: input, bottom: reconstruction"
) -> Path:
    n = min(len(x), 16)
    both = torch.cat([x[:n], x_hat[:n].view_as(x[:n])])
    return image_grid(both, path, nrow=n, title=title)


def line_plot(
    xs,
    series: dict[str, tuple[list, list]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
) -> Path:
    """``series`` maps a label to (means, stds) over ``xs``; stds may be None."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, (means, stds) in series.items():
        ax.plot(xs, means, marker="o", label=label)
        if stds is not None:
            m, s = np.asarray(means, float), np.asarray(stds, float)
            ax.fill_between(xs, m - s, m + s, alpha=0.2)
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def scatter_2d(points: np.ndarray, labels: np.ndarray, path: str | Path, title: str = "", class_names=None) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
    if class_names is not None:
        handles = [
            plt.Line2D([], [], marker="o", ls="", color=sc.cmap(sc.norm(i)), label=str(n))
            for i, n in enumerate(class_names)
        ]
        ax.legend(handles=handles, fontsize=6, loc="best", markerscale=0.8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
