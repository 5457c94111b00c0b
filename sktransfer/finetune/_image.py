"""``FineTunedClassifier``: fine-tune a pretrained image network, skorch-backed."""

from __future__ import annotations

import os
from numbers import Integral
from typing import TYPE_CHECKING

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from sktransfer.augment import IMAGE_PRESETS, image_augmentation
from sktransfer.backbones import BUNDLED_IMAGE, make_eval_transform, resolve_backbone
from sktransfer.data import ImageDataset, as_image_list
from sktransfer.finetune._core import BaseFineTuned
from sktransfer.finetune._tasks import ClassifierTask

if TYPE_CHECKING:  # names used in annotations only
    from collections.abc import Callable
    from typing import Any

    import numpy as np
    from torch import nn

__all__ = ["FineTunedClassifier", "ImageFineTuning"]


class ImageFineTuning(BaseFineTuned):
    """The image modality of ``BaseFineTuned``: torchvision / timm / bundled
    backbones, images from paths, PIL images or arrays, ``augment`` presets."""

    _parameter_constraints = {
        **BaseFineTuned._parameter_constraints,
        "model": [str, os.PathLike, torch.nn.Module],
        "weights": [str, os.PathLike, None],
        "augment": [StrOptions(set(IMAGE_PRESETS)), callable, None],
        "image_size": [Interval(Integral, 8, None, closed="left"), None],
        "fast_decode": ["boolean"],
    }

    def _resolve_backbone(self):
        return resolve_backbone(self.model, self.weights, modality="image")

    def _coerce(self, X) -> list:
        return as_image_list(X)

    def _make_dataset(self, items, backbone, train: bool):
        config = backbone.data_config
        if train:
            transform = image_augmentation(self.augment, config, self.image_size)
        else:
            transform = make_eval_transform(config, self.image_size)
        return ImageDataset(items, transform, fast_decode=self.fast_decode)


class FineTunedClassifier(ClassifierTask, ImageFineTuning):
    """Fine-tune a pretrained image network with a new linear head.

    Training is done by skorch; the backbone is cut into blocks (ResNet: stem,
    layer1..layer4; EfficientNet: stem, blocks.0..N, head; ...) and
    ``freeze_depth`` decides how many of them train.

    Parameters
    ----------
    model : str, path or nn.Module, default="efficientnet_lite0"
        A torchvision name, ``"timm/<name>"``, the bundled offline model
        ``"efficientnet_lite0"``, a checkpoint path or an ``nn.Module``.
    weights : str, path or None, default="DEFAULT"
        ``"DEFAULT"``, a weights enum name, a weights file, or None (random
        initialisation: training from scratch).
    freeze_depth : int or "all", default=0
        ``k >= 0`` freezes the first ``k`` blocks, ``-k`` all but the last
        ``k``, ``"all"`` the whole backbone. Frozen blocks keep their weights
        and BatchNorm statistics. With ``"all"`` the features are computed
        once per fit (without augmentation) and only the head trains.
    max_epochs : int, default=10
        Fine-tuning epochs (after the ``head_epochs``).
    lr : float, default=1e-3
        Adam learning rate of the new head.
    backbone_lr : float, default=None
        Learning rate of the unfrozen backbone blocks; None means ``lr / 10``.
    batch_size : int, default=32
        Images per step (and per prediction batch).
    augment : {"default", "light", "strong"}, callable or None, default="default"
        Training-time augmentation (see ``sktransfer.augment``); a callable
        takes and returns a PIL image. Prediction never augments.
    head_epochs : int, default=0
        Epochs training the head alone (whole backbone frozen) before the
        ``max_epochs`` with ``freeze_depth`` applied. ``history_`` records the
        ``phase`` of each epoch.
    l2sp : float, default=0.0
        Weight λ of the L2-SP penalty λ‖w − w₀‖² pulling the trainable backbone
        weights toward their pretrained values w₀.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the rows, stop after 5
        epochs without a lower validation loss and restore the best epoch's
        weights. When False, every row is used for training.
    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping`` is True.
    image_size : int, default=None
        Input resolution for training and prediction; None uses the backbone's
        (224 for most). Small sizes make CPU training fast.
    device : str, default="auto"
        ``"auto"`` uses CUDA when present (bf16 autocast, channels-last).
    random_state : int, RandomState or None, default=None
        Seeds the head, the shuffling, the augmentation and the validation split:
        a fixed value gives the same model on the same machine.
    progress : bool, default=False
        Print skorch's per-epoch table.
    num_workers : int, default=0
        DataLoader processes decoding and augmenting images.
    fast_decode : bool, default=True
        Decode JPEG files in libjpeg's draft mode at the smallest DCT scale
        that still leaves what the transform needs: the resize size for
        prediction; for training, enough that the smallest crop the random
        resized crop can draw is not upsampled (``sktransfer.data.decode_size``).
        False decodes every file at full resolution. A callable ``augment``
        always gets the full image.
    adapt : {"coral", "dann", "mmd"} or None, default=None
        Deep domain adaptation to the unlabelled target rows (``y == -1`` in
        ``fit``, or ``sample_domain``): a bottleneck (linear 256 + ReLU) is
        added before the head and its output is aligned between each batch of
        labelled rows and a batch of random target rows: ``"coral"`` matches
        covariances (Deep CORAL), ``"mmd"`` minimises a multi-kernel MMD (DAN),
        ``"dann"`` trains a domain classifier through gradient reversal
        (DANN). Works with every ``freeze_depth`` (with ``"all"`` only the
        bottleneck and head train, on features computed once). None: ``-1``
        rows are ignored. See docs/adapt.md.
    adapt_weight : float, default=1.0
        Weight λ of the adaptation loss: source cross-entropy + λ · alignment.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    net_ : FineTuneNet
        The fitted skorch net; ``net_.module_`` is the fine-tuned network.
    history_ : skorch.History
        Per-epoch ``train_loss`` (and ``valid_loss``), ``phase``, timings.
    backbone_ : Backbone
        The fine-tuned backbone (``module``, ``blocks``, ``data_config``).
    n_blocks_ : int
        Number of blocks of the backbone.
    n_frozen_ : int
        Number of leading blocks frozen by ``freeze_depth``.
    validation_indices_ : ndarray or None
        Rows of ``X`` held out for early stopping (labelled rows only: with
        ``adapt``, validation is on held-out labelled source rows).
    device_ : str
        The device the network runs on.

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

    _parameter_constraints = ImageFineTuning._parameter_constraints

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
        fast_decode: bool = True,
        adapt: str | None = None,
        adapt_weight: float = 1.0,
    ):
        self.model = model
        self.weights = weights
        self.freeze_depth = freeze_depth
        self.max_epochs = max_epochs
        self.lr = lr
        self.backbone_lr = backbone_lr
        self.batch_size = batch_size
        self.augment = augment
        self.head_epochs = head_epochs
        self.l2sp = l2sp
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.image_size = image_size
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self.num_workers = num_workers
        self.fast_decode = fast_decode
        self.adapt = adapt
        self.adapt_weight = adapt_weight
