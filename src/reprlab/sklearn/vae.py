"""``VAETransformer``: an MLP variational autoencoder as a scikit-learn transformer that can sample."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._training import ScaledCodeMixin, fit_registered_model, standardization


class VAETransformer(ScaledCodeMixin, TransformerMixin, BaseEstimator):
    """Fit a VAE to tabular data; ``transform`` returns the posterior means μ(x).

    With ``likelihood="gaussian"`` (the default) the features are standardized and decoded by a
    Gaussian with learned per-feature variance; with ``"bernoulli"`` the data must lie in [0, 1]
    (e.g. pixel intensities) and are used as they are. ``sample(n)`` draws new rows from the
    prior and the decoder's mean; ``inverse_transform`` decodes codes back to feature space.
    """

    def __init__(
        self,
        latent_dim: int = 2,
        hidden: tuple[int, ...] = (64,),
        likelihood: str = "gaussian",
        beta: float = 1.0,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        random_state: int | None = None,
    ):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.likelihood = likelihood
        self.beta = beta
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float32)
        if self.likelihood == "bernoulli":
            self.mean_, self.scale_ = np.zeros(X.shape[1], np.float32), np.ones(X.shape[1], np.float32)
        else:
            self.mean_, self.scale_ = standardization(X)
        self.model_ = fit_registered_model(
            self,
            "vae_mlp",
            torch.from_numpy(self._scale(X)),
            input_shape=(X.shape[1],),
            latent_dim=self.latent_dim,
            hidden=tuple(self.hidden),
            likelihood=self.likelihood,
            beta=self.beta,
        )
        return self

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """``n_samples`` rows decoded from z ~ N(0, I), in the original feature space."""
        check_is_fitted(self, "model_")
        seed = int(check_random_state(random_state).randint(2**31 - 1))
        with torch.no_grad():
            return self._unscale(self.model_.sample(int(n_samples), torch.Generator().manual_seed(seed)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


__all__ = ["VAETransformer"]
