"""reprlab: representation learning and generative models with one API, one engine and one CLI."""

__version__ = "0.1.0"

from .errors import ReprlabError  # noqa: E402
from .registry import create_model, list_models, register_model  # noqa: E402


def load(run):
    """The trained model saved in run directory ``run`` (eval mode)."""
    from .train.checkpoint import load_run

    return load_run(run)


__all__ = ["__version__", "ReprlabError", "create_model", "list_models", "register_model", "load"]
