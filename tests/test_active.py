"""Active learning: which unlabelled rows ``suggest_labels`` picks, on real data."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer.active import STRATEGIES, suggest_labels
from sktransfer.exceptions import InvalidInputError, ParameterError


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def linear():
    return LogisticRegression(max_iter=1000)


@pytest.mark.parametrize("strategy", ["auto", "margin", "entropy", "diverse",
                                      "representative", "random"])
def test_suggest_labels_distinct_and_in_range(digits, strategy):
    X, y = digits
    model = linear().fit(X[:50], y[:50])
    picked = suggest_labels(model, X[50:], 25, strategy=strategy, random_state=0)
    assert picked.shape == (25,) and len(set(picked.tolist())) == 25
    assert picked.min() >= 0 and picked.max() < len(X) - 50
    assert len(suggest_labels(model, X[50:60], 10, strategy=strategy)) == 10


def test_suggest_labels_bad_input(digits):
    X, y = digits
    with pytest.raises(NotFittedError, match="not fitted"):
        suggest_labels(linear(), X, 5)
    with pytest.raises(NotFittedError, match="LogisticRegression is not fitted"):
        suggest_labels(make_pipeline(StandardScaler(), linear()), X, 5)
    model = linear().fit(X, y)
    with pytest.raises(ParameterError, match="n=11 is larger than the pool"):
        suggest_labels(model, X[:10], 11)
    with pytest.raises(ParameterError, match="positive int"):
        suggest_labels(model, X, 0)
    with pytest.raises(ParameterError, match="strategy must be one of"):
        suggest_labels(model, X, 3, strategy="smart")


def active_accuracy(X, y, strategy, draw):
    rng = np.random.default_rng(draw)
    order = rng.permutation(len(y))
    pool, test = order[:700], order[700:]
    labelled = [rng.choice(pool[y[pool] == c]) for c in np.unique(y)]
    scores = []
    for _ in range(5):
        model = linear().fit(X[labelled], y[labelled])
        left = np.setdiff1d(pool, labelled)
        labelled += list(left[suggest_labels(model, X[left], 10, strategy=strategy,
                                             random_state=draw)])
        scores.append(linear().fit(X[labelled], y[labelled]).score(X[test], y[test]))
    return np.mean(scores)


def test_default_beats_random_on_digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    diverse = np.mean([active_accuracy(X, y, "auto", d) for d in range(3)])
    random = np.mean([active_accuracy(X, y, "random", d) for d in range(3)])
    assert diverse >= random + 0.02, (diverse, random)


def test_diverse_batch_spans_more_classes_than_margin():
    """Uncertainty alone piles a batch on one confusion (say 1 vs 8); the
    default spreads it over the uncertain regions."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    spans = {"auto": [], "margin": []}
    for draw in range(3):
        rng = np.random.default_rng(draw)
        labelled = np.concatenate([rng.choice(np.flatnonzero(y == c), 2,
                                              replace=False) for c in range(10)])
        pool = np.setdiff1d(np.arange(len(y)), labelled)
        model = linear().fit(X[labelled], y[labelled])
        for strategy in spans:
            picked = suggest_labels(model, X[pool], 20, strategy=strategy,
                                    random_state=draw)
            spans[strategy].append(len(np.unique(y[pool[picked]])))
    assert np.mean(spans["auto"]) > np.mean(spans["margin"]), spans


def test_representative_picks_rows_near_their_cluster_centre(digits):
    X, y = digits
    model = linear().fit(X[:40], y[:40])
    pool = X[40:]
    central = suggest_labels(model, pool, 8, strategy="representative",
                             random_state=0)
    least = suggest_labels(model, pool, 8, strategy="diverse", random_state=0)
    # same shortlist and clusters: the central picks sit nearer the shortlist's
    # other rows than the least certain ones do
    def spread(rows):
        others = np.union1d(central, least)
        distances = np.linalg.norm(pool[rows][:, None] - pool[others][None], axis=2)
        return np.median(distances)

    assert set(central.tolist()) != set(least.tolist())
    assert spread(central) <= spread(least)


def test_strategies_are_listed_and_pool_checked(digits):
    X, y = digits
    assert STRATEGIES[0] == "auto" and "representative" in STRATEGIES
    model = linear().fit(X, y)
    with pytest.raises(InvalidInputError, match="X_pool is empty"):
        suggest_labels(model, X[:0], 1)
