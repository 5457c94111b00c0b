"""Domain adaptation: instance-, feature- and parameter-based transfer.

Data convention (scikit-learn's semi-supervised one): pass labelled source rows
and unlabelled target rows together to ``fit(X, y)``, target rows marked
``y == -1``. Optionally ``sample_domain`` (``0``/``"source"``, ``1``/``"target"``
per row) marks domains explicitly, which allows labelled target rows.
"""

from sktransfer.adapt._coral import CORAL, CORALClassifier
from sktransfer.adapt._importance import (
    ImportanceWeightedClassifier,
    importance_weights,
)
from sktransfer.adapt._regularized import (
    RegularizedTransferClassifier,
    RegularizedTransferRegressor,
)
from sktransfer.adapt._scoring import (
    importance_weighted_score,
    make_importance_weighted_scorer,
)
from sktransfer.adapt._utils import NoTargetSamplesWarning

__all__ = [
    "CORAL",
    "CORALClassifier",
    "ImportanceWeightedClassifier",
    "NoTargetSamplesWarning",
    "RegularizedTransferClassifier",
    "RegularizedTransferRegressor",
    "importance_weighted_score",
    "importance_weights",
    "make_importance_weighted_scorer",
]
