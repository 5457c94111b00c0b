"""``FineTunedTextRegressor``: fine-tune a pretrained encoder (text × regressor)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sktransfer._utils.params import PARAMETERS, declare, store_parameters
from sktransfer.backbones import BUNDLED_TEXT
from sktransfer.finetune._attributes import ATTRIBUTES
from sktransfer.finetune._tasks import (
    REGRESSION_ATTRIBUTES,
    RegressorTask,
)
from sktransfer.finetune._text import TextFineTuning

if TYPE_CHECKING:  # names used in annotations only
    import os
    from collections.abc import Callable
    from typing import Any

    import numpy as np
    import torch

__all__ = ["FineTunedTextRegressor"]

_EDA = PARAMETERS[("augment", "text")]
_AUGMENT = _EDA.replace(doc=_EDA.doc + " EDA deletes and inserts words: do not use "
                        "it when the target depends on the words' count or order.")


@declare("finetune", "text", augment=_AUGMENT, attributes=[
    *REGRESSION_ATTRIBUTES,
    ("max_length_", "int", "The token limit applied (``max_length`` capped by "
     "the encoder)."),
    *ATTRIBUTES,
])
class FineTunedTextRegressor(RegressorTask, TextFineTuning):
    """Fine-tune a pretrained transformer encoder with a linear regression head.

    The same core, blocks and options as ``FineTunedTextClassifier``; the head
    has one output per target column, trained with ``loss`` on standardised
    targets. ``predict`` returns the original units and ``score`` is R².

    See Also
    --------
    sktransfer.FineTunedTextClassifier : the same for class labels.

    Examples
    --------
    >>> from sktransfer import FineTunedTextRegressor
    >>> reg = FineTunedTextRegressor(freeze_depth=-2, max_length=64,
    ...                              random_state=0)
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = BUNDLED_TEXT,
        loss: str = "mse",
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
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.0,
        lora_targets: str | list[str] = "auto",
    ):
        store_parameters(self, locals())
