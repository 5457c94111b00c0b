"""Fine-tuning pretrained networks with skorch, the scikit-learn way.

One estimator per task × modality, each in its own module: ``_image_classifier``,
``_image_regressor``, ``_text_classifier``, ``_text_regressor``. They share the
core (``_core``), a modality (``_image``, ``_text``), a task (``_tasks``) and
the parameter documentation (``_params``).
"""

from sktransfer.finetune import _persist  # noqa: F401 - registers its save/load hook
from sktransfer.finetune._core import BaseFineTuned
from sktransfer.finetune._image_classifier import FineTunedClassifier
from sktransfer.finetune._image_regressor import FineTunedRegressor
from sktransfer.finetune._text_classifier import FineTunedTextClassifier
from sktransfer.finetune._text_regressor import FineTunedTextRegressor

__all__ = [
    "BaseFineTuned",
    "FineTunedClassifier",
    "FineTunedRegressor",
    "FineTunedTextClassifier",
    "FineTunedTextRegressor",
]
