"""Metrics (IWAE NLL, Fréchet distance, edit distances, probes, ...), one module each.

This package re-exports every name in the modules' ``__all__``.
"""

from .._reexport import reexport as _reexport

__all__ = _reexport(__name__, __path__, globals())
