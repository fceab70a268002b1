"""``DomainAdaptationClassifier``: a domain-adapted MLP classifier as a scikit-learn estimator, and scorers
that select it without target labels (the unsupervised validators of ``reprlab.metrics.validators``).

Model selection in scikit-learn: mark the target rows in ``y`` with ``unlabelled`` (as scikit-learn's
semi-supervised estimators and skada do with -1), so that ``X`` holds both domains and every splitter
cuts both::

    y_all = np.r_[y_source, np.full(len(X_target), -1)]
    clf = DomainAdaptationClassifier(method="dann", unlabelled=-1)
    GridSearchCV(clf, {"weight": [0.3, 1.0]}, scoring=make_da_scorer("im")).fit(np.r_[X_source, X_target], y_all)

Each test fold then holds held-out labelled source rows (the source validation set) and unlabelled
target rows; a scorer reads the labels of the first and only the inputs of the second.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ..metrics.validators import VALIDATORS, ValidationOutputs, model_outputs


class DomainAdaptationClassifier(ClassifierMixin, BaseEstimator):
    """Classify target-domain data with a model trained on labelled source data.

    ``fit(X_s, y_s, X_t)`` trains an MLP on the labelled source ``(X_s, y_s)`` while aligning it
    with the unlabelled target ``X_t`` by ``method``: ``"source-only"``, ``"mmd"``, ``"coral"``,
    ``"dann"``, ``"pseudo-label"``, or ``"target-oracle"`` (which needs ``y_t`` and is a ceiling,
    not an adaptation method). Without ``X_t`` the source doubles as the target. Features are
    standardized with statistics of source and target together.

    With ``unlabelled`` set (e.g. -1), ``fit(X, y)`` takes both domains in one array: the rows whose
    label is ``unlabelled`` are the unlabelled target, the others the labelled source. That is the form
    ``cross_val_score`` and ``GridSearchCV`` need; ``score`` then is the accuracy on the labelled rows
    only (source accuracy), and :func:`make_da_scorer` gives the other validators as scorers.
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
        unlabelled=None,
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
        self.unlabelled = unlabelled
        self.random_state = random_state

    def fit(self, X, y, X_t=None, y_t=None):
        from ..config import TrainerConfig
        from ..data.domains import PairedBatches
        from ..models.adaptation import model_name
        from ..recipes.training import fit, seeded_model

        name = model_name(self.method)
        X, y = validate_data(self, X, y, dtype=np.float32)
        if self.unlabelled is not None:
            if X_t is not None:
                raise ValueError("with unlabelled set, mark the target rows in y instead of passing X_t")
            marked = self._marked(y)
            if not marked.any() or marked.all():
                raise ValueError(
                    f"y needs both labelled source rows and target rows marked {self.unlabelled!r}; "
                    f"got {int((~marked).sum())} labelled and {int(marked.sum())} marked"
                )
            X, y, X_t, y_t = X[~marked], y[~marked], X[marked], None
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
        self.model_ = seeded_model(name, seed, **kw)
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
        fit(self.model_, data, cfg)
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

    def score(self, X, y, sample_weight=None):
        """Mean accuracy; with ``unlabelled`` set, on the labelled (source) rows only."""
        if self.unlabelled is None:
            return super().score(X, y, sample_weight)
        keep = ~self._marked(np.asarray(y))
        if not keep.any():
            raise ValueError("score needs labelled rows; every row of y is marked unlabelled")
        w = None if sample_weight is None else np.asarray(sample_weight)[keep]
        return super().score(np.asarray(X)[keep], np.asarray(y)[keep], w)

    def _marked(self, y) -> np.ndarray:
        # object comparison, so a marker of another type than the labels (-1 among strings) is never an error
        return np.asarray(y, dtype=object) == self.unlabelled

    def validation_outputs(self, X, y) -> ValidationOutputs:
        """The fitted model's outputs for the unsupervised validators: the rows of ``y`` marked ``unlabelled``
        are the target (only their inputs are read), the others the labelled source validation set."""
        check_is_fitted(self, "model_")
        if self.unlabelled is None:
            raise ValueError("the domain adaptation scorers need the target rows marked: set unlabelled (e.g. -1)")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        y = np.asarray(y)
        marked = self._marked(y)
        if not marked.any() or marked.all():
            raise ValueError(
                f"a domain adaptation scorer needs labelled source rows and target rows marked {self.unlabelled!r}; "
                f"got {int((~marked).sum())} labelled and {int(marked.sum())} marked"
            )
        known = np.isin(y[~marked], self.classes_)
        if not known.all():
            raise ValueError(f"y holds labels the estimator was not fitted on: {sorted(set(y[~marked][~known]))[:5]}")
        scaled = lambda a: torch.from_numpy(((a - self.mean_) / self.scale_).astype(np.float32))  # noqa: E731
        ys = torch.from_numpy(self.label_encoder_.transform(y[~marked]).astype(np.int64))
        return model_outputs(self.model_, (scaled(X[~marked]), ys), scaled(X[marked]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class DomainAdaptationScorer:
    """A scikit-learn scorer ``scorer(estimator, X, y) -> float`` (higher is better) from one unsupervised validator.

    The rows of ``y`` marked with the estimator's ``unlabelled`` value are the target: the scorer reads
    their inputs, never a label. The other rows are held-out labelled source data.
    """

    def __init__(self, validator: str):
        if validator not in VALIDATORS:
            raise ValueError(f"unknown validator {validator!r}; choose from: {', '.join(VALIDATORS)}")
        self.validator = validator

    def __call__(self, estimator, X, y, sample_weight=None) -> float:
        if sample_weight is not None:
            raise ValueError("the domain adaptation scorers take no sample_weight")
        return float(VALIDATORS[self.validator](estimator.validation_outputs(X, y)))

    def __repr__(self) -> str:
        return f"make_da_scorer({self.validator!r})"


def make_da_scorer(validator: str) -> DomainAdaptationScorer:
    """The scorer of one validator: ``"source-acc"``, ``"entropy"``, ``"im"`` or ``"dev"``
    (see ``reprlab.metrics.validators``), for ``scoring=`` in ``GridSearchCV`` or ``cross_val_score``."""
    return DomainAdaptationScorer(validator)


def da_scorers() -> dict[str, DomainAdaptationScorer]:
    """Every validator as a scorer, by name: a multi-metric ``scoring=`` (pick one with ``refit=NAME``)."""
    return {name: DomainAdaptationScorer(name) for name in VALIDATORS}


__all__ = ["DomainAdaptationClassifier", "DomainAdaptationScorer", "make_da_scorer", "da_scorers"]
