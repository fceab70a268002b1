"""``DomainAdaptationClassifier``: a domain-adapted MLP classifier as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data


class DomainAdaptationClassifier(ClassifierMixin, BaseEstimator):
    """Classify target-domain data with a model trained on labelled source data.

    ``fit(X_s, y_s, X_t)`` trains an MLP on the labelled source ``(X_s, y_s)`` while aligning it
    with the unlabelled target ``X_t`` by ``method``: ``"source-only"``, ``"mmd"``, ``"coral"``,
    ``"dann"``, ``"pseudo-label"``, or ``"target-oracle"`` (which needs ``y_t`` and is a ceiling,
    not an adaptation method). Without ``X_t`` the source doubles as the target. Features are
    standardized with statistics of source and target together.
    """

    def __init__(
        self,
        method: str = "dann",
        hidden: tuple[int, ...] = (32, 32),
        feature_dim: int = 32,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight: float | None = None,
        threshold: float = 0.9,
        random_state: int | None = None,
    ):
        self.method = method
        self.hidden = hidden
        self.feature_dim = feature_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight = weight
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, X, y, X_t=None, y_t=None):
        from ..config import TrainerConfig
        from ..data.domains import PairedBatches
        from ..models.adaptation import model_name
        from ..registry import create_model
        from ..train.engine import Trainer, seed_everything

        name = model_name(self.method)
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.label_encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.label_encoder_.classes_
        ys = self.label_encoder_.transform(y)
        if X_t is None:
            X_t, y_t = X, (y if y_t is None else y_t)
        X_t = check_array(X_t, dtype=np.float32)
        if X_t.shape[1] != X.shape[1]:
            raise ValueError(
                f"X_t has {X_t.shape[1]} features, X has {X.shape[1]}; both domains need the same features"
            )
        if self.method == "target-oracle" and y_t is None:
            raise ValueError("method='target-oracle' trains on the target labels: pass y_t")
        yt = self.label_encoder_.transform(np.asarray(y_t)) if y_t is not None else np.zeros(len(X_t), dtype=np.int64)
        both = np.concatenate([X, X_t])
        self.mean_ = both.mean(0)
        self.scale_ = both.std(0)
        self.scale_[self.scale_ == 0] = 1.0
        kw = dict(
            input_shape=(X.shape[1],),
            num_classes=max(len(self.classes_), 2),
            hidden=tuple(self.hidden),
            feature_dim=self.feature_dim,
        )
        if self.weight is not None:
            kw["weight"] = self.weight
        if self.method == "pseudo-label":
            kw.update(threshold=self.threshold, num_target=len(X_t))
        seed = 0 if self.random_state is None else int(self.random_state)
        seed_everything(seed)
        self.model_ = create_model(name, **kw)
        tens = lambda a: torch.from_numpy(((a - self.mean_) / self.scale_).astype(np.float32))  # noqa: E731
        data = PairedBatches(
            (tens(X), torch.from_numpy(ys.astype(np.int64))),
            (tens(X_t), torch.from_numpy(yt.astype(np.int64))),
            min(self.batch_size, len(X)),
            seed=seed,
        )
        cfg = TrainerConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=seed, progress=False, tensorboard=False
        )
        Trainer(cfg).fit(self.model_, data)
        self.model_.eval()
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        p = (
            self.model_.predict_proba(torch.from_numpy(((X - self.mean_) / self.scale_).astype(np.float32)))
            .numpy()
            .astype(np.float64)
        )
        return p[:, : len(self.classes_)] / p[:, : len(self.classes_)].sum(1, keepdims=True)

    def predict(self, X):
        check_is_fitted(self, "model_")
        return self.classes_[self.predict_proba(X).argmax(1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


__all__ = ["DomainAdaptationClassifier"]
