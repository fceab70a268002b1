"""reprlab: representation learning and generative models with one API, one engine and one CLI."""

from ._version import __version__
from .errors import ReprlabError
from .registry import create_model, list_models, register_model


def load(run):
    """The trained model saved in run directory ``run`` (eval mode)."""
    from .train.checkpoint import load_run

    return load_run(run)


__all__ = ["__version__", "ReprlabError", "create_model", "list_models", "register_model", "load"]
