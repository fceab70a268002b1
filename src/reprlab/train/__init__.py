"""The training engine and run directories."""

from .checkpoint import load_run, read_run_config
from .engine import Trainer, seed_everything

__all__ = ["Trainer", "seed_everything", "load_run", "read_run_config"]
