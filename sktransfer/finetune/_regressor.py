"""``FineTunedRegressor`` / ``FineTunedTextRegressor``: the fine-tuning core with
a regression head (``RegressorTask``) on the image and text modalities."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sktransfer.backbones import BUNDLED_IMAGE, BUNDLED_TEXT
from sktransfer.finetune._image import ImageFineTuning
from sktransfer.finetune._tasks import REGRESSION_CONSTRAINTS, RegressorTask
from sktransfer.finetune._text import TextFineTuning

if TYPE_CHECKING:  # names used in annotations only
    import os
    from collections.abc import Callable
    from typing import Any

    import numpy as np
    import torch
    from torch import nn

__all__ = ["FineTunedRegressor", "FineTunedTextRegressor"]


class FineTunedRegressor(RegressorTask, ImageFineTuning):
    """Fine-tune a pretrained image network with a new linear regression head.

    The same core, blocks and options as ``FineTunedClassifier``; the head has
    one output per target column and is trained with ``loss`` on standardised
    targets (see ``target_mean_``). ``predict`` returns the original units and
    ``score`` is R².

    Parameters
    ----------
    model : str, path or nn.Module, default="efficientnet_lite0"
        As for ``FineTunedClassifier`` (``"efficientnet_lite0"`` is offline).
    weights : str, path or None, default="DEFAULT"
        ``"DEFAULT"``, a weights enum name, a file, or None (from scratch).
    loss : {"mse", "huber"}, default="mse"
        Squared error, or Huber loss with threshold 1 (one standard deviation
        of the target): quadratic near the truth, linear for outliers.
    freeze_depth : int or "all", default=0
        ``k >= 0`` freezes the first ``k`` blocks, ``-k`` all but the last
        ``k``, ``"all"`` the whole backbone (features computed once per fit,
        without augmentation; only the head trains).
    max_epochs : int, default=10
        Fine-tuning epochs (after the ``head_epochs``).
    lr : float, default=1e-3
        Adam learning rate of the new head.
    backbone_lr : float, default=None
        Learning rate of the unfrozen backbone blocks; None means ``lr / 10``.
    batch_size : int, default=32
        Images per step (and per prediction batch).
    augment : {"default", "light", "strong"}, callable or None, default=None
        Training-time augmentation, off by default because most image
        transforms change some target: random crops change scale, position and
        counts; flips the sign of an angle and left/right; rotation (in
        "default" and "strong") an angle; colour jitter (in "default" and
        "strong") brightness and colour. Turn on a preset, or pass a callable on
        PIL images, only when it leaves your target unchanged ("light" is crop
        0.8-1 and horizontal flip, without rotation or colour changes).
    head_epochs : int, default=0
        Epochs training the head alone before the ``max_epochs``.
    l2sp : float, default=0.0
        Weight λ of the penalty λ‖w − w₀‖² toward the pretrained weights w₀.
    early_stopping : bool, default=False
        Hold out a random ``validation_fraction`` of the rows, stop after 5
        epochs without a lower validation loss and restore the best weights.
    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping`` is True.
    image_size : int, default=None
        Input resolution; None uses the backbone's.
    device : str, default="auto"
        ``"auto"`` uses CUDA when present.
    random_state : int, RandomState or None, default=None
        Seeds the head, the shuffling, the augmentation and the split.
    progress : bool, default=False
        Print skorch's per-epoch table.
    num_workers : int, default=0
        DataLoader processes decoding (and augmenting) images.
    fast_decode : bool, default=True
        Decode JPEG files at the smallest DCT scale that leaves what the
        transform needs (see ``FineTunedClassifier``); False decodes in full.

    Attributes
    ----------
    n_outputs_ : int
        Number of target columns (1 for a 1-D ``y``).
    target_mean_, target_scale_ : ndarray of shape (n_outputs_,)
        Mean and standard deviation of each target column: the network learns
        ``(y - target_mean_) / target_scale_``, ``predict`` undoes it.
    net_ : FineTuneNet
        The fitted skorch net; ``net_.module_`` is the fine-tuned network.
    history_ : skorch.History
        Per-epoch ``train_loss`` (and ``valid_loss``), in standardised units.
    backbone_ : Backbone
        The fine-tuned backbone.
    n_blocks_, n_frozen_ : int
        Number of blocks of the backbone, and of leading blocks frozen.
    validation_indices_ : ndarray or None
        Rows held out (at random) for early stopping.
    device_ : str
        The device the network runs on.

    See Also
    --------
    sktransfer.FineTunedClassifier : the same for class labels.

    Examples
    --------
    >>> from sktransfer import FineTunedRegressor
    >>> reg = FineTunedRegressor("efficientnet_lite0", freeze_depth=-2,
    ...                          image_size=96, loss="huber", random_state=0)
    """

    _parameter_constraints = {
        **ImageFineTuning._parameter_constraints,
        **REGRESSION_CONSTRAINTS,
    }

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
        fast_decode: bool = True,
    ):
        self.model = model
        self.weights = weights
        self.loss = loss
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


class FineTunedTextRegressor(RegressorTask, TextFineTuning):
    """Fine-tune a pretrained transformer encoder with a linear regression head.

    The same core, blocks and options as ``FineTunedTextClassifier``; the head
    has one output per target column, trained with ``loss`` on standardised
    targets. ``predict`` returns the original units and ``score`` is R².

    Parameters
    ----------
    model : str or path, default="all-MiniLM-L6-v2"
        A sentence-transformers name or folder, or ``"hf/<name or folder>"``.
    loss : {"mse", "huber"}, default="mse"
        Squared error, or Huber loss with threshold 1 standard deviation.
    freeze_depth : int or "all", default=0
        ``k >= 0`` freezes the first ``k`` blocks (embeddings, then each
        encoder layer), ``-k`` all but the last ``k``, ``"all"`` the whole
        encoder (texts embedded once per fit; only the head trains).
    max_epochs : int, default=5
        Fine-tuning epochs (after the ``head_epochs``).
    lr : float, default=1e-3
        Adam learning rate of the new head.
    backbone_lr : float, default=3e-5
        Learning rate of the unfrozen encoder blocks; None means ``lr / 10``.
    max_length : int, default=128
        Texts are truncated to this many tokens.
    batch_size : int, default=32
        Texts per step (and per prediction batch).
    augment : "eda", callable or None, default=None
        Training-time augmentation (see ``FineTunedTextClassifier``). EDA
        deletes and inserts words: do not use it when the target depends on
        the words' count or order.
    head_epochs : int, default=0
        Epochs training the head alone before the ``max_epochs``.
    l2sp : float, default=0.0
        Weight λ of the penalty λ‖w − w₀‖² toward the pretrained weights w₀.
    early_stopping : bool, default=False
        Hold out a random ``validation_fraction`` of the rows, stop after 5
        epochs without a lower validation loss and restore the best weights.
    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping`` is True.
    device : str, default="auto"
        ``"auto"`` uses CUDA when present.
    random_state : int, RandomState or None, default=None
        Seeds the head, the shuffling, the augmentation and the split.
    progress : bool, default=False
        Print skorch's per-epoch table.
    num_workers : int, default=0
        DataLoader processes.

    Attributes
    ----------
    n_outputs_ : int
        Number of target columns (1 for a 1-D ``y``).
    target_mean_, target_scale_ : ndarray of shape (n_outputs_,)
        Mean and standard deviation of each target column: the network learns
        ``(y - target_mean_) / target_scale_``, ``predict`` undoes it.
    net_ : FineTuneNet
        The fitted skorch net; ``net_.module_`` is the fine-tuned network.
    history_ : skorch.History
        Per-epoch ``train_loss`` (and ``valid_loss``), in standardised units.
    backbone_ : Backbone
        The fine-tuned backbone.
    n_blocks_, n_frozen_ : int
        Number of blocks of the backbone, and of leading blocks frozen.
    validation_indices_ : ndarray or None
        Rows held out (at random) for early stopping.
    device_ : str
        The device the network runs on.

    See Also
    --------
    sktransfer.FineTunedTextClassifier : the same for class labels.

    Examples
    --------
    >>> from sktransfer import FineTunedTextRegressor
    >>> reg = FineTunedTextRegressor(freeze_depth=-2, max_length=64,
    ...                              random_state=0)
    """

    _parameter_constraints = {
        **TextFineTuning._parameter_constraints,
        **REGRESSION_CONSTRAINTS,
    }

    def __init__(
        self,
        model: str | os.PathLike[str] = BUNDLED_TEXT,
        loss: str = "mse",
        freeze_depth: int | str = 0,
        max_epochs: int = 5,
        lr: float = 1e-3,
        backbone_lr: float | None = 3e-5,
        max_length: int | None = 128,
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
    ):
        self.model = model
        self.loss = loss
        self.freeze_depth = freeze_depth
        self.max_epochs = max_epochs
        self.lr = lr
        self.backbone_lr = backbone_lr
        self.max_length = max_length
        self.batch_size = batch_size
        self.augment = augment
        self.head_epochs = head_epochs
        self.l2sp = l2sp
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self.num_workers = num_workers
