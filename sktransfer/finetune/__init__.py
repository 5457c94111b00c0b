"""Fine-tuning pretrained networks with skorch, the scikit-learn way."""

from sktransfer.finetune._core import BaseFineTuned
from sktransfer.finetune._image import FineTunedClassifier
from sktransfer.finetune._text import FineTunedTextClassifier

__all__ = ["BaseFineTuned", "FineTunedClassifier", "FineTunedTextClassifier"]
