"""``FineTunedRegressor``: fine-tune a pretrained image network (image × regressor)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sktransfer._utils.params import PARAMETERS, declare, store_parameters
from sktransfer.backbones import BUNDLED_IMAGE
from sktransfer.finetune._attributes import ATTRIBUTES
from sktransfer.finetune._image import ImageFineTuning
from sktransfer.finetune._tasks import (
    REGRESSION_ATTRIBUTES,
    RegressorTask,
)

if TYPE_CHECKING:  # names used in annotations only
    import os
    from collections.abc import Callable
    from typing import Any

    import numpy as np
    import torch
    from torch import nn

__all__ = ["FineTunedRegressor"]

_AUGMENT = PARAMETERS[("augment", "image")].replace(doc=(
    "Training-time augmentation, off by default because most image transforms "
    "change some target: random crops change scale, position and counts; flips "
    "the sign of an angle and left/right; rotation (in \"default\" and "
    "\"strong\") an angle; colour jitter (in \"default\" and \"strong\") "
    "brightness and colour. Turn on a preset, or pass a callable on PIL images, "
    "only when it leaves your target unchanged (\"light\" is crop 0.8-1 and "
    "horizontal flip, without rotation or colour changes)."))


@declare("finetune", "image", attributes=[*REGRESSION_ATTRIBUTES, *ATTRIBUTES],
         augment=_AUGMENT)
class FineTunedRegressor(RegressorTask, ImageFineTuning):
    """Fine-tune a pretrained image network with a new linear regression head.

    The same core, blocks and options as ``FineTunedClassifier``; the head has
    one output per target column and is trained with ``loss`` on standardised
    targets (see ``target_mean_``). ``predict`` returns the original units and
    ``score`` is R².

    See Also
    --------
    sktransfer.FineTunedClassifier : the same for class labels.

    Examples
    --------
    >>> from sktransfer import FineTunedRegressor
    >>> reg = FineTunedRegressor("efficientnet_lite0", freeze_depth=-2,
    ...                          image_size=96, loss="huber", random_state=0)
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module = BUNDLED_IMAGE,
        weights: str | os.PathLike[str] | None = "DEFAULT",
        loss: str = "mse",
        freeze_depth: int | str = 0,
        max_epochs: int = 10,
        lr: float = 1e-3,
        backbone_lr: float | None = None,
        batch_size: int = 32,
        augment: str | Callable[..., Any] | None = None,
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
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.0,
        lora_targets: str | list[str] = "auto",
    ):
        store_parameters(self, locals())
