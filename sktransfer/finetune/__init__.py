"""Fine-tuning pretrained networks with skorch, the scikit-learn way."""

from sktransfer.finetune._core import BaseFineTuned
from sktransfer.finetune._image import FineTunedClassifier
from sktransfer.finetune._regressor import FineTunedRegressor, FineTunedTextRegressor
from sktransfer.finetune._text import FineTunedTextClassifier

__all__ = [
    "BaseFineTuned",
    "FineTunedClassifier",
    "FineTunedRegressor",
    "FineTunedTextClassifier",
    "FineTunedTextRegressor",
]
