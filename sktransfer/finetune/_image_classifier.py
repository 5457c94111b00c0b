"""``FineTunedClassifier``: fine-tune an image network (image × classifier)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sktransfer._utils.params import declare, store_parameters
from sktransfer.backbones import BUNDLED_IMAGE
from sktransfer.finetune._attributes import ATTRIBUTES
from sktransfer.finetune._image import ImageFineTuning
from sktransfer.finetune._tasks import ClassifierTask

if TYPE_CHECKING:  # names used in annotations only
    import os
    from collections.abc import Callable
    from typing import Any

    import numpy as np
    import torch
    from torch import nn

__all__ = ["FineTunedClassifier"]


@declare("finetune", "image", attributes=[
    ("classes_", "ndarray of shape (n_classes,)", "Class labels (multi-label: "
     "the label names, in the order of ``predict``'s columns)."),
    ("thresholds_", "ndarray of shape (n_labels,)", "Multi-label only: the "
     "probability at which each label is predicted (see ``threshold``)."),
    *ATTRIBUTES,
])
class FineTunedClassifier(ClassifierTask, ImageFineTuning):
    """Fine-tune a pretrained image network with a new linear head.

    Training is done by skorch; the backbone is cut into blocks (ResNet: stem,
    layer1..layer4; EfficientNet: stem, blocks.0..N, head; ...) and
    ``freeze_depth`` decides how many of them train.

    See Also
    --------
    sktransfer.PretrainedImageFeatures : frozen features for any sklearn model.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sktransfer import FineTunedClassifier
    >>> clf = FineTunedClassifier("efficientnet_lite0", image_size=128,
    ...                           max_epochs=3, random_state=0)
    >>> search = GridSearchCV(clf, {"freeze_depth": ["all", -2, 0]}, cv=3)
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module = BUNDLED_IMAGE,
        weights: str | os.PathLike[str] | None = "DEFAULT",
        freeze_depth: int | str = 0,
        max_epochs: int = 10,
        lr: float = 1e-3,
        backbone_lr: float | None = None,
        batch_size: int = 32,
        augment: str | Callable[..., Any] | None = "default",
        head_epochs: int = 0,
        l2sp: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        image_size: int | None = None,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        progress: bool = False,
        num_workers: int = 0,
        batch_losses: bool = False,
        cache: bool | str | os.PathLike[str] | None = True,
        fast_decode: bool = True,
        adapt: str | None = None,
        adapt_weight: float = 1.0,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.0,
        lora_targets: str | list[str] = "auto",
        threshold: str | float = "auto",
    ):
        store_parameters(self, locals())
