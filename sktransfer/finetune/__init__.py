"""Fine-tuning pretrained networks with skorch, the scikit-learn way."""

from sktransfer.finetune._core import BaseFineTuned
from sktransfer.finetune._image import FineTunedClassifier

__all__ = ["BaseFineTuned", "FineTunedClassifier"]


def __getattr__(name):
    if name == "FineTunedTextClassifier":
        raise ImportError(
            "FineTunedTextClassifier is not implemented yet in this version"
        )
    raise AttributeError(f"module 'sktransfer.finetune' has no attribute {name!r}")
