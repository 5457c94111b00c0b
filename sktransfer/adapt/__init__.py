"""Domain adaptation: instance-, feature- and parameter-based transfer.

Data convention (scikit-learn's semi-supervised one): pass labelled source rows and
unlabelled target rows together to ``fit(X, y)``, target rows marked ``y == -1``.
Optionally ``sample_domain`` (as in skada: > 0 or ``"source"`` for source rows, < 0 or
``"target"`` for target rows, e.g. skada's 1 / -2) marks domains explicitly, which
allows labelled target rows.

One convention: every classifier here reads ``-1`` as unlabelled, never as a
class, and never predicts it.
"""

from sktransfer.adapt._coral import CORAL, CORALClassifier
from sktransfer.adapt._importance import (
    ImportanceWeightedClassifier,
    importance_weights,
)
from sktransfer.adapt._kmm import KernelMeanMatchingClassifier, kernel_mean_matching
from sktransfer.adapt._regularized import (
    RegularizedTransferClassifier,
    RegularizedTransferRegressor,
)
from sktransfer.adapt._scoring import (
    deep_embedded_validation_score,
    importance_weighted_score,
    make_adaptation_scorer,
    make_importance_weighted_scorer,
    prediction_entropy_score,
    soft_neighborhood_density_score,
)
from sktransfer.adapt._subspace import SubspaceAlignment, TransferComponentAnalysis
from sktransfer.adapt._tradaboost import TrAdaBoostClassifier, TrAdaBoostR2Regressor
from sktransfer.adapt._utils import NoTargetSamplesWarning

__all__ = [
    "CORAL",
    "CORALClassifier",
    "ImportanceWeightedClassifier",
    "KernelMeanMatchingClassifier",
    "NoTargetSamplesWarning",
    "RegularizedTransferClassifier",
    "RegularizedTransferRegressor",
    "SubspaceAlignment",
    "TrAdaBoostClassifier",
    "TrAdaBoostR2Regressor",
    "TransferComponentAnalysis",
    "deep_embedded_validation_score",
    "importance_weighted_score",
    "importance_weights",
    "kernel_mean_matching",
    "make_adaptation_scorer",
    "make_importance_weighted_scorer",
    "prediction_entropy_score",
    "soft_neighborhood_density_score",
]
