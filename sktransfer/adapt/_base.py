"""What the adaptation estimators share: the wrapped default estimator, a fit
with sample weights, the fit of a classifier that adapts then trains a wrapped
estimator, and the fit of a transformer on source and target rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    TransformerMixin,
    clone,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from sktransfer._utils.params import fill_doc, validate_params
from sktransfer.adapt._docs import DOCS
from sktransfer.adapt._utils import (
    check_domains,
    estimator_has,
    labelled_classes,
    target_mask,
    validate_data,
)
from sktransfer.exceptions import ParameterTypeError

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from typing_extensions import Self

__all__ = ["DEFAULT_ESTIMATOR", "AdaptingClassifier", "DomainTransformer",
           "fit_weighted"]

#: What ``estimator=None`` trains.
DEFAULT_ESTIMATOR = LogisticRegression(max_iter=1000)


def fit_weighted(estimator, X, y, sample_weight):
    """Fit ``estimator`` with ``sample_weight``; a clear error if it cannot take it."""
    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        key, accepts = (
            f"{name}__sample_weight",
            has_fit_parameter(last, "sample_weight"),
        )
    else:
        key, accepts = "sample_weight", has_fit_parameter(estimator, "sample_weight")
    if not accepts:
        raise ParameterTypeError(
            f"{type(estimator).__name__}.fit does not accept sample_weight, which "
            "re-weighting (importance weights, KMM, TrAdaBoost) needs; use an "
            "estimator whose fit takes "
            "sample_weight (e.g. LogisticRegression, SVC, RandomForestClassifier)."
        )
    return estimator.fit(X, y, **{key: sample_weight})


class AdaptingClassifier(ClassifierMixin, BaseEstimator):
    """Adapt to the target rows, then fit ``estimator`` on the labelled rows.

    Subclasses implement ``_adapt(X, source, target) -> (X_train, weights)``:
    the rows to train on (source rows mapped, or ``X`` itself) and the row
    weights (``None``: unweighted). Predictions come from the fitted
    ``estimator_`` on the rows as given (expected from the target domain).
    """

    @fill_doc(**DOCS)
    def fit(self, X: Any, y: Any, sample_domain: Any | None = None) -> Self:
        """Adapt to the target rows and fit the estimator on the labelled rows.

        %(classifier_fit)s

        Returns
        -------
        self : object
            The fitted classifier.
        """
        validate_params(self)
        X, y = validate_data(self, X, y)
        source, target, labelled, self.classes_ = labelled_classes(y, sample_domain)
        X_train, weights = self._adapt(X, source, target)
        base = clone(DEFAULT_ESTIMATOR if self.estimator is None else self.estimator)
        X_train, y_train = X_train[labelled], y[labelled]
        if weights is None:
            self.estimator_ = base.fit(X_train, y_train)
        else:
            self.weights_ = weights[labelled]
            self.estimator_ = fit_weighted(base, X_train, y_train, self.weights_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict classes of (target-domain) rows with the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.predict(validate_data(self, X, reset=False))

    @available_if(estimator_has("predict_proba", DEFAULT_ESTIMATOR))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from the wrapped estimator (if it has them)."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(validate_data(self, X, reset=False))

    @available_if(estimator_has("decision_function", DEFAULT_ESTIMATOR))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision scores from the wrapped estimator (if it has them)."""
        check_is_fitted(self)
        return self.estimator_.decision_function(validate_data(self, X, reset=False))


class DomainTransformer(TransformerMixin, BaseEstimator):
    """An adaptation transformer: ``fit(X, y=None, sample_domain=None)``.

    Rows are split into source and target rows (``y == -1`` or
    ``sample_domain``); subclasses implement ``_fit_domains(X, target)`` on the
    validated rows and the "is target" mask, and ``transform`` on
    ``self._rows(X)``.
    """

    def _rows(self, X):
        """``X`` validated for a fitted transformer."""
        check_is_fitted(self)
        return validate_data(self, X, reset=False)

    def _split(self, X, y, sample_domain):
        X = validate_data(self, X)
        target = target_mask(y, sample_domain, X.shape[0])
        check_domains(~target, target)
        return X, target

    @fill_doc(**DOCS)
    def fit(self, X: Any, y: Any | None = None,
            sample_domain: Any | None = None) -> Self:
        """Learn the map from the source and target rows.

        %(transformer_fit)s

        Returns
        -------
        self : object
            The fitted transformer.
        """
        validate_params(self)
        self._fit_domains(*self._split(X, y, sample_domain))
        return self
