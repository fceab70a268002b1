import numpy as np
from sklearn.utils.estimator_checks import check_estimator

from reprlab.sklearn import VAETransformer


def test_passes_sklearn_estimator_checks():
    check_estimator(VAETransformer(latent_dim=2, hidden=(8,), epochs=2, random_state=0))


def test_codes_samples_and_decoding():
    rng = np.random.default_rng(0)
    # two well-separated clusters in 6-D: the 2-D posterior means must separate them too
    X = np.concatenate([rng.normal(-2, 0.3, size=(200, 6)), rng.normal(2, 0.3, size=(200, 6))])
    vae = VAETransformer(latent_dim=2, hidden=(32,), epochs=40, random_state=0).fit(X)
    Z = vae.transform(X)
    assert Z.shape == (400, 2)
    from sklearn.linear_model import LogisticRegression

    labels = np.repeat([0, 1], 200)
    assert LogisticRegression().fit(Z, labels).score(Z, labels) > 0.95
    S = vae.sample(500, random_state=0)
    assert S.shape == (500, 6)
    # samples land near the data: their mean is near the data mean, their spread is of the same order
    assert np.abs(S.mean(0) - X.mean(0)).max() < 0.6
    assert 0.5 < S.std(0).mean() / X.std(0).mean() < 1.5
    np.testing.assert_array_equal(S, vae.sample(500, random_state=0))
    assert vae.inverse_transform(Z).shape == X.shape
