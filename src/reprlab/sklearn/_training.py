"""What the scikit-learn estimators share: feature scaling and one seeded engine fit."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data


def standardization(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (constant features get scale 1)."""
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def fit_registered_model(est, name: str, xt: torch.Tensor, **model_kwargs):
    """Create registry model ``name`` and train it on ``xt`` with the estimator's
    ``epochs``, ``batch_size``, ``lr`` and ``random_state``; returns it in eval mode."""
    from ..config import TrainerConfig
    from ..data.batches import TensorBatches
    from ..recipes.training import fit, seeded_model

    seed = 0 if est.random_state is None else int(est.random_state)
    model = seeded_model(name, seed, **model_kwargs)
    cfg = TrainerConfig(
        epochs=est.epochs, batch_size=est.batch_size, lr=est.lr, seed=seed, progress=False, tensorboard=False
    )
    fit(model, TensorBatches({"x": xt}, min(est.batch_size, len(xt)), seed=seed), cfg)
    return model.eval()


class ScaledCodeMixin:
    """``transform`` and ``inverse_transform`` for estimators whose fitted ``model_`` encodes the
    scaled features ``(X - mean_) / scale_``: codes and features come back as float64."""

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) / self.scale_).astype(np.float32)

    def _unscale(self, x: torch.Tensor) -> np.ndarray:
        return (x.reshape(len(x), -1).numpy() * self.scale_ + self.mean_).astype(np.float64)

    def inverse_transform(self, Z):
        """Decode codes back to the original feature space."""
        check_is_fitted(self, "model_")
        Z = np.asarray(Z, dtype=np.float32)
        with torch.no_grad():
            return self._unscale(self.model_.decode(torch.from_numpy(Z)))

    def transform(self, X):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        with torch.no_grad():
            z = self.model_.encode(torch.from_numpy(self._scale(X)))
        return z.numpy().astype(np.float64)
