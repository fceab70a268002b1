"""``AutoencoderTransformer``: an MLP autoencoder as a scikit-learn transformer."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import validate_data

from ._training import ScaledCodeMixin, fit_registered_model, standardization


class AutoencoderTransformer(ScaledCodeMixin, TransformerMixin, BaseEstimator):
    """Learn a ``code_dim``-dimensional code of tabular data with an MLP autoencoder.

    ``fit`` standardizes the features and trains the autoencoder (MSE); ``transform`` returns
    the codes; ``inverse_transform`` decodes codes back to the original feature space.
    """

    def __init__(
        self,
        code_dim: int = 8,
        hidden: tuple[int, ...] = (64,),
        epochs: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        random_state: int | None = None,
    ):
        self.code_dim = code_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float32)
        self.mean_, self.scale_ = standardization(X)
        xt = torch.from_numpy(self._scale(X))
        self.model_ = fit_registered_model(
            self,
            "ae_mlp",
            xt,
            input_shape=(X.shape[1],),
            code_dim=self.code_dim,
            hidden=tuple(self.hidden),
            output="identity",
        )
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


__all__ = ["AutoencoderTransformer"]
