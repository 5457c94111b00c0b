"""``FineTunedTextClassifier``: fine-tune a pretrained encoder (text × classifier)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sktransfer._utils.params import declare, store_parameters
from sktransfer.backbones import BUNDLED_TEXT
from sktransfer.finetune._attributes import ATTRIBUTES
from sktransfer.finetune._tasks import ClassifierTask
from sktransfer.finetune._text import TextFineTuning

if TYPE_CHECKING:  # names used in annotations only
    import os
    from collections.abc import Callable
    from typing import Any

    import numpy as np
    import torch

__all__ = ["FineTunedTextClassifier"]


@declare("finetune", "text", attributes=[
    ("classes_", "ndarray of shape (n_classes,)", "Class labels (multi-label: "
     "the label names, in the order of ``predict``'s columns)."),
    ("thresholds_", "ndarray of shape (n_labels,)", "Multi-label only: the "
     "probability at which each label is predicted (see ``threshold``)."),
    ("max_length_", "int", "The token limit applied (``max_length`` capped by "
     "the encoder)."),
    *ATTRIBUTES,
])
class FineTunedTextClassifier(ClassifierTask, TextFineTuning):
    """Fine-tune a pretrained transformer encoder with a new linear head.

    The encoder's token states are mean-pooled over the real (unpadded) tokens
    and fed to a new linear layer; skorch trains both through the same core as
    ``FineTunedClassifier``. The encoder is cut into blocks, the embeddings then
    each encoder layer (all-MiniLM-L6-v2: 1 + 6 = 7 blocks), and
    ``freeze_depth`` decides how many of them train.

    See Also
    --------
    sktransfer.PretrainedTextEmbeddings : frozen embeddings for any sklearn model.
    sktransfer.FineTunedClassifier : the same for images.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sktransfer import FineTunedTextClassifier
    >>> clf = FineTunedTextClassifier(max_length=64, random_state=0)
    >>> search = GridSearchCV(clf, {"freeze_depth": ["all", -2]}, cv=3)
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = BUNDLED_TEXT,
        freeze_depth: int | str = 0,
        max_epochs: int = 5,
        lr: float = 1e-3,
        backbone_lr: float | None = 3e-5,
        max_length: int | None = None,
        batch_size: int = 32,
        augment: str | Callable[..., Any] | None = None,
        head_epochs: int = 0,
        l2sp: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        progress: bool = False,
        num_workers: int = 0,
        batch_losses: bool = False,
        cache: bool | str | os.PathLike[str] | None = True,
        adapt: str | None = None,
        adapt_weight: float = 1.0,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.0,
        lora_targets: str | list[str] = "auto",
        threshold: str | float = "auto",
    ):
        store_parameters(self, locals())
