"""Linear probes: how much label information a code holds, measured with logistic regression."""

from __future__ import annotations

import numpy as np


def linear_probe_accuracy(
    train_codes: np.ndarray,
    train_y: np.ndarray,
    test_codes: np.ndarray,
    test_y: np.ndarray,
    max_iter: int = 500,
    seed: int = 0,
) -> float:
    """Test accuracy of a standardized multinomial logistic regression fit on the training codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    clf.fit(np.asarray(train_codes), np.asarray(train_y))
    return float(clf.score(np.asarray(test_codes), np.asarray(test_y)))


__all__ = ["linear_probe_accuracy"]
