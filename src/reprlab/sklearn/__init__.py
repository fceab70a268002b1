"""scikit-learn estimators over reprlab models (``AutoencoderTransformer``, ``VAETransformer``, ...).

Each family adds a module here; this package re-exports every name in their ``__all__``.
"""

from .._reexport import reexport as _reexport

__all__ = _reexport(__name__, __path__, globals())
