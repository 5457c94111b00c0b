"""numpydoc text the adaptation estimators share, written once.

Each docstring names what it takes on a line of its own (``%(classifier_fit)s``)
and its class is decorated with ``declare(..., fragments=DOCS)``, a function
with ``fill_doc(**DOCS)`` (``sktransfer._utils.params``). Parameters of the
estimators are in the package's parameter table, not here.
"""

__all__ = ["DOCS"]

_X = """
X : array-like of shape (n_samples, n_features)
    Source and target rows.
"""

DOCS = {
    "transformer_fit": "Parameters\n----------" + _X + """\
y : array-like of shape (n_samples,), default=None
    ``-1`` marks target rows; other values (or ``None``) are source rows.
sample_domain : array-like of shape (n_samples,), default=None
    > 0 (``"source"``) or < 0 (``"target"``) per row, as in skada; overrides
    ``y``.
""",
    "classifier_fit": "Parameters\n----------" + _X + """\
y : array-like of shape (n_samples,)
    Source labels; ``-1`` marks unlabelled target rows.
sample_domain : array-like of shape (n_samples,), default=None
    > 0 (``"source"``) or < 0 (``"target"``) per row, as in skada; needed only
    to pass labelled target rows. Routed by metadata routing.
""",
    "classifier_attributes": """
classes_ : ndarray of shape (n_classes,)
    Class labels.
n_features_in_ : int
    Number of features seen during ``fit``.
""",
    # labelled source rows, then unlabelled target rows shifted by 1
    "shifted_rows": """
>>> import numpy as np
>>> rng = np.random.RandomState(0)
>>> X = np.r_[rng.normal(0, 1, (40, 2)), rng.normal(1, 1, (20, 2))]
>>> y = np.r_[(X[:40, 0] > 0).astype(int), -np.ones(20, dtype=int)]
""",
    # 50 source rows, then 50 target rows shifted by 3, in 5 dimensions
    "two_blobs": """
>>> import numpy as np
>>> rng = np.random.RandomState(0)
>>> X = np.r_[rng.normal(size=(50, 5)), rng.normal(size=(50, 5)) + 3]
>>> y = np.r_[np.zeros(50, dtype=int), -np.ones(50, dtype=int)]
""",
    # 40 source rows, then 20 labelled target rows (skada's domains 1 / -2)
    "labelled_target_rows": """
>>> import numpy as np
>>> rng = np.random.RandomState(0)
>>> X = rng.normal(size=(60, 2))
>>> domain = np.r_[np.ones(40), -2 * np.ones(20)]
""",
    "boosting_attributes": """
estimators_ : list of estimators
    The fitted learner of every round.
estimator_weights_ : ndarray of shape (n_rounds,)
    ``ln(1 / beta_t)`` per round; only the second half votes.
estimator_errors_ : ndarray of shape (n_rounds,)
    Clipped weighted target error ``eps_t`` per round (of the adjusted error,
    for a regressor).
""",
    "source_target_rows": """
X_source : ndarray of shape (n_source, n_features)
    Source rows.
X_target : ndarray of shape (n_target, n_features)
    Target rows.
""",
    "importance_scoring": """
domain_classifier : classifier with ``predict_proba``, default=None
    ``None`` uses ``LogisticRegression(max_iter=1000)``.
clip : float, default=10.0
    Largest density ratio kept before normalisation.
score_func : callable, default=accuracy_score
    ``score_func(y_true, y_pred, sample_weight=...)``; greater is better.
""",
}
