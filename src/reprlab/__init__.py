"""reprlab: representation learning and generative models with one API, one engine and one CLI."""

from ._version import __version__
from .errors import ReprlabError
from .registry import create_model, list_models, register_model


def load(run):
    """The trained model saved in run directory ``run`` (eval mode)."""
    from .train.checkpoint import load_run

    return load_run(run)


def fit(name, data, *, epochs=None, out=None, val=None, resume=False, overwrite=False, workers=2, **settings):
    """Train registered model ``name`` on ``data`` and return it (in eval mode); with ``out``, also write a
    run folder there and return ``(model, Path(out))``.

    ``data``: a numpy array or tensor ``x`` (unlabelled), a pair ``(x, y)``, any map-style
    ``torch.utils.data.Dataset`` whose items are ``x``, ``(x, y)`` or ``{"x": ..., "y": ...}``, or a path or
    built-in name as ``--data`` takes (a folder of images, ``.npz``/``.npy``, ``.csv``/``.tsv``). In-memory
    data trains on every row; ``val`` (the same forms) is validated on after each epoch. x is (N, D) features,
    (N, H, W) or (N, C, H, W) images; uint8 images are scaled to [0, 1].

    A Dataset is read through a ``DataLoader`` with ``workers`` processes, in a seeded order per epoch
    (a ``DistributedSampler`` under DDP), so ``resume=True`` continues a stopped run (``max_steps``, a kill)
    bitwise. The data fixes ``input_shape`` and ``num_classes``; data outside [0, 1] gets the model's
    range settings (``loss=mse, output=identity``, ``likelihood=gaussian``, ``visible=gaussian``) unless given.

    ``settings``: any model, trainer or data setting by name (``code_dim=8, lr=3e-4, batch_size=64,
    max_steps=100, seed=1``), or whole sections as ``model={...}``, ``trainer={...}``, ``data_options={...}``.
    """
    from .recipes.training import fit_on_data

    return fit_on_data(
        name, data, epochs=epochs, out=out, val=val, resume=resume, overwrite=overwrite, workers=workers, **settings
    )


__all__ = ["__version__", "ReprlabError", "create_model", "list_models", "register_model", "load", "fit"]
