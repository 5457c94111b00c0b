"""Domain adaptation: instance-, feature- and parameter-based transfer."""

from sktransfer.adapt._coral import CORAL, CORALClassifier
from sktransfer.adapt._importance import (
    ImportanceWeightedClassifier,
    importance_weights,
)
from sktransfer.adapt._utils import NoTargetSamplesWarning

__all__ = [
    "CORAL",
    "CORALClassifier",
    "ImportanceWeightedClassifier",
    "NoTargetSamplesWarning",
    "importance_weights",
]
