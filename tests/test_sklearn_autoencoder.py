import numpy as np
from sklearn.utils.estimator_checks import check_estimator

from reprlab.sklearn import AutoencoderTransformer


def test_passes_sklearn_estimator_checks():
    est = AutoencoderTransformer(code_dim=2, hidden=(8,), epochs=2, random_state=0)
    # every applicable check; failures raise
    check_estimator(est)


def test_codes_shape_and_reconstruction_beats_mean():
    rng = np.random.default_rng(0)
    # data on a 2-D nonlinear manifold in 10-D
    t = rng.uniform(-1, 1, size=(400, 2))
    X = np.concatenate([t, np.sin(3 * t), t**2, np.cos(2 * t), t[:, :1] * t[:, 1:], t[:, 1:] ** 3], axis=1)
    ae = AutoencoderTransformer(code_dim=2, hidden=(32,), epochs=60, random_state=0).fit(X)
    Z = ae.transform(X)
    assert Z.shape == (400, 2)
    rec = ae.inverse_transform(Z)
    err = ((rec - X) ** 2).mean()
    baseline = ((X - X.mean(0)) ** 2).mean()
    assert err < 0.3 * baseline
    assert ae.n_features_in_ == X.shape[1]


def test_same_seed_same_codes():
    X = np.random.default_rng(1).normal(size=(100, 5))
    a = AutoencoderTransformer(code_dim=2, epochs=3, random_state=7).fit_transform(X)
    b = AutoencoderTransformer(code_dim=2, epochs=3, random_state=7).fit_transform(X)
    np.testing.assert_array_equal(a, b)
