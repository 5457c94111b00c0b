"""Tests for sktransfer.adapt: API conformance, edge cases and real transfer gains.

Shifts used (load_digits, fixed seeds):
- "blur": source = original digits, target = the other digits blurred with
  ``scipy.ndimage.gaussian_filter(sigma=1)``.
- "ink bias": selection-bias covariate shift; a digit enters the source with
  probability ``sigmoid(-0.4 * (ink - median ink))`` (thin strokes), the rest
  (mostly thick strokes) is the target.
"""

import pickle

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import sktransfer.adapt as adapt
from sktransfer.adapt import (
    CORAL,
    CORALClassifier,
    ImportanceWeightedClassifier,
    NoTargetSamplesWarning,
    RegularizedTransferClassifier,
    RegularizedTransferRegressor,
    make_importance_weighted_scorer,
)

_MINUS_ONE = (
    "-1 marks unlabelled target rows (scikit-learn's semi-supervised convention), "
    "so it cannot be a class; check_estimator skips this check by name for "
    "SelfTrainingClassifier and LabelSpreading."
)
ESTIMATORS = [
    CORAL(),
    CORALClassifier(),
    ImportanceWeightedClassifier(),
    RegularizedTransferClassifier(),
    RegularizedTransferRegressor(),
]


def _expected_failed(estimator):
    if isinstance(
        estimator,
        CORALClassifier | ImportanceWeightedClassifier | RegularizedTransferClassifier,
    ):
        return {"check_classifiers_classes": _MINUS_ONE}
    return {}


@pytest.mark.filterwarnings("ignore::sktransfer.adapt.NoTargetSamplesWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_all_is_sorted_and_complete():
    assert adapt.__all__ == sorted(adapt.__all__)
    for name in adapt.__all__:
        assert getattr(adapt, name) is not None


# ----------------------------------------------------------------- data sets


@pytest.fixture(scope="module")
def ink_bias():
    """Selection-bias covariate shift: thin-stroke digits are the source."""
    digits = load_digits()
    X, y = digits.data / 16, digits.target
    ink = X.sum(axis=1)
    p_source = 1 / (1 + np.exp(0.4 * (ink - np.median(ink))))
    is_source = np.random.RandomState(0).rand(len(y)) < p_source
    return X[is_source], y[is_source], X[~is_source], y[~is_source]


def _combine(Xs, ys, Xt):
    return np.r_[Xs, Xt], np.r_[ys, -np.ones(len(Xt), dtype=int)]


def _source_only(Xs, ys, Xt, yt, C=1.0):
    return LogisticRegression(C=C, max_iter=1000).fit(Xs, ys).score(Xt, yt)


# ------------------------------------------------------ transfer really helps


def test_coral_improves_blurred_target(blur):
    Xs, ys, Xt, yt = blur
    X, y = _combine(Xs, ys, Xt)
    source_only = _source_only(Xs, ys, Xt, yt)
    coral = CORALClassifier(eps=0.1).fit(X, y).score(Xt, yt)
    assert coral > source_only + 0.05


def test_importance_weights_track_true_density_ratio(ink_bias):
    """The selection probability is known, so the true ratio p_T/p_S is too."""
    Xs, ys, Xt, yt = ink_bias
    iw = ImportanceWeightedClassifier().fit(*_combine(Xs, ys, Xt))
    ink = Xs.sum(axis=1) * 16 / 16
    p_source = 1 / (1 + np.exp(0.4 * (ink - np.median(np.r_[Xs, Xt].sum(axis=1)))))
    true_ratio = (1 - p_source) / p_source
    assert spearmanr(iw.weights_, true_ratio).statistic > 0.7
    assert iw.weights_.mean() == pytest.approx(1.0)
    assert iw.weights_.min() >= 0


def test_importance_weighting_on_ink_bias_is_within_noise(ink_bias):
    """Documented: on digits the accuracy gain is small (see docs/adapt.md)."""
    Xs, ys, Xt, yt = ink_bias
    base = LogisticRegression(C=0.01, max_iter=1000)
    iw = ImportanceWeightedClassifier(base).fit(*_combine(Xs, ys, Xt))
    assert iw.score(Xt, yt) > _source_only(Xs, ys, Xt, yt, C=0.01) - 0.03


def test_importance_weight_clip_bounds_the_weights_on_blur(blur):
    """Blur barely overlaps, so the weights concentrate (docs/adapt.md: accuracy
    0.807 -> 0.697 with clip=10); ``clip`` is the knob that bounds that: a
    smaller clip gives a larger effective sample size and, at the limit, the
    source-only model."""
    Xs, ys, Xt, yt = blur
    X, y = _combine(Xs, ys, Xt)

    def ess(w):
        return w.sum() ** 2 / (w**2).sum() / len(w)

    clips = (1e-7, 2.0, 10.0)  # ratios are >= 1e-6: clip=1e-7 makes them equal
    fits = {c: ImportanceWeightedClassifier(clip=c).fit(X, y) for c in clips}
    sizes = [ess(fits[c].weights_) for c in clips]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-1] < 0.5  # concentrated weights: the limitation, measured
    np.testing.assert_allclose(fits[1e-7].weights_, 1.0)
    source_only = _source_only(Xs, ys, Xt, yt)
    assert fits[1e-7].score(Xt, yt) == pytest.approx(source_only)


def test_regularized_toward_source_beats_target_only(blur):
    Xs, ys, Xt, yt = blur
    source = LogisticRegression(max_iter=1000).fit(Xs, ys)
    rng = np.random.RandomState(0)
    train = rng.choice(400, 60, replace=False)
    X_few, y_few, X_test, y_test = Xt[train], yt[train], Xt[400:], yt[400:]
    search = GridSearchCV(
        RegularizedTransferClassifier(source_estimator=FrozenEstimator(source)),
        {"alpha": [0.1, 1.0, 10.0, 100.0]},
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X_few, y_few)
    transfer = search.score(X_test, y_test)
    for C in (0.1, 1.0, 10.0, 100.0):
        target_only = LogisticRegression(C=C, max_iter=1000).fit(X_few, y_few)
        assert transfer > target_only.score(X_test, y_test) + 0.02
    assert transfer > source.score(X_test, y_test)


def test_iwcv_scorer_in_grid_search(blur):
    Xs, ys, Xt, yt = blur
    X, y = _combine(Xs[:300], ys[:300], Xt[:300])
    search = GridSearchCV(
        CORALClassifier(),
        {"eps": [0.01, 1.0]},
        scoring=make_importance_weighted_scorer(),
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    assert 0.0 < search.best_score_ <= 1.0
    assert search.best_params_["eps"] in (0.01, 1.0)


# ------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("Est", [CORALClassifier, ImportanceWeightedClassifier])
def test_errors_and_no_target_warning(Est):
    X = np.random.RandomState(0).normal(size=(20, 3))
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    with pytest.raises(ValueError, match="No labelled source rows"):
        Est().fit(X, -np.ones(20, int))
    with pytest.raises(ValueError, match="Only one class"):
        Est().fit(X, np.r_[np.zeros(10, int), -np.ones(10, int)])
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Est().fit(X_nan, y)
    with pytest.raises(ValueError, match="sample_domain\\[0\\] = 'x'"):
        Est().fit(X, y, sample_domain=["x"] * 20)
    with pytest.warns(NoTargetSamplesWarning, match="No target rows"):
        model = Est().fit(X, y)
    plain = LogisticRegression(max_iter=1000).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), plain.predict_proba(X))


def test_importance_weighting_needs_sample_weight(ink_bias):
    X, y = _combine(ink_bias[0][:50], ink_bias[1][:50], ink_bias[2][:50])
    with pytest.raises(TypeError, match="does not accept sample_weight"):
        ImportanceWeightedClassifier(KNeighborsClassifier()).fit(X, y)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    assert ImportanceWeightedClassifier(pipe).fit(X, y).score(X[:50], y[:50]) > 0.5


def test_sample_domain_routing_and_labelled_target(blur):
    Xs, ys, Xt, yt = blur
    X = np.r_[Xs[:200], Xt[:200]]
    y = np.r_[ys[:200], yt[:20], -np.ones(180, int)]
    domain = np.r_[["source"] * 200, ["target"] * 200]
    model = ImportanceWeightedClassifier().fit(X, y, sample_domain=domain)
    assert model.weights_.shape == (220,)
    np.testing.assert_allclose(model.weights_[200:], 1.0)
    with config_context(enable_metadata_routing=True):
        est = CORALClassifier().set_fit_request(sample_domain=True)
        search = GridSearchCV(est, {"eps": [0.1, 1.0]}, cv=KFold(2, shuffle=True))
        search.fit(X, y, sample_domain=domain)
    assert search.best_estimator_.coral_.n_features_in_ == 64


def test_coral_matches_target_covariance_and_identity_without_target():
    rng = np.random.RandomState(0)
    Xs = rng.normal(size=(500, 3))
    Xt = rng.normal(size=(500, 3)) @ [[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0, 0, 0.5]]
    X, y = _combine(Xs, np.zeros(500, int), Xt)
    aligned = CORAL(eps=1e-9).fit(X, y).transform(Xs)
    np.testing.assert_allclose(np.cov(aligned.T), np.cov(Xt.T), atol=1e-6)
    with pytest.warns(NoTargetSamplesWarning):
        coral = CORAL().fit(Xs)
    np.testing.assert_allclose(coral.transform(Xs), Xs, atol=1e-10)


@pytest.mark.parametrize("Est", [CORALClassifier, ImportanceWeightedClassifier])
def test_clone_and_pickle(Est, ink_bias):
    X, y = _combine(ink_bias[0][:100], ink_bias[1][:100], ink_bias[2][:100])
    model = clone(Est()).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


# --------------------------------------------------------- parameter-based


@pytest.fixture(scope="module")
def noisy_binary():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 4))
    y = (X @ [1.0, -1.0, 0.5, 0.0] + rng.normal(scale=1.5, size=80) > 0).astype(int)
    return X, y


def test_classifier_alpha_limits(noisy_binary):
    X, y = noisy_binary
    w_s = np.array([[0.3, 0.8, -1.0, 2.0]])
    unreg = LogisticRegression(C=np.inf, max_iter=1000).fit(X, y)
    fits = {
        a: RegularizedTransferClassifier(alpha=a, source_coef=w_s).fit(X, y)
        for a in (0.0, 1.0, 10.0, 1e8)
    }
    np.testing.assert_allclose(fits[0.0].coef_, unreg.coef_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(fits[1e8].coef_, w_s, atol=1e-5)
    dist = [np.linalg.norm(fits[a].coef_ - w_s) for a in (0.0, 1.0, 10.0, 1e8)]
    assert dist == sorted(dist, reverse=True)


def test_regressor_alpha_limits(noisy_binary):
    X, _ = noisy_binary
    y = X @ [1.0, 2.0, 0.0, -1.0] + np.random.RandomState(1).normal(size=80)
    w_s = np.array([0.0, 1.0, 1.0, 1.0])
    ols = LinearRegression().fit(X, y)
    fit = {
        a: RegularizedTransferRegressor(alpha=a, source_coef=w_s).fit(X, y)
        for a in (0.0, 5.0, 50.0, 1e10)
    }
    np.testing.assert_allclose(fit[0.0].coef_, ols.coef_)
    np.testing.assert_allclose(fit[1e10].coef_, w_s, atol=1e-6)
    dist = [np.linalg.norm(fit[a].coef_ - w_s) for a in (0.0, 5.0, 50.0, 1e10)]
    assert dist == sorted(dist, reverse=True)


def test_regularized_errors(noisy_binary):
    X, y = noisy_binary
    source = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="source coefficients have shape"):
        RegularizedTransferClassifier(source_coef=np.ones(3)).fit(X, y)
    with pytest.raises(ValueError, match="not both"):
        RegularizedTransferClassifier(source_estimator=source, source_coef=[1]).fit(
            X, y
        )
    with pytest.raises(ValueError, match="classes \\[5\\]"):
        RegularizedTransferClassifier(source_estimator=source).fit(X, y + 4 * y)
    with pytest.raises(NotFittedError, match="FrozenEstimator"):
        clone(RegularizedTransferClassifier(source_estimator=source)).fit(X, y)
    with pytest.raises(ValueError, match="No labelled target rows"):
        RegularizedTransferRegressor().fit(X, y, sample_domain=np.ones(80))
