"""``BaseFineTuned``: the modality- and task-agnostic fine-tuning estimator.

A thin scikit-learn estimator over the training engine, split as setfit
splits its trainer, arguments and model: ``fit`` validates the parameters
and the rows, seeds, resolves the device and turns the parameters into
``TrainingArguments`` (``finetune._arguments``); ``finetune._model`` builds
the network (freezing, LoRA, the head; ``finetune._prefix`` the frozen-prefix
cache) and ``finetune._trainer.Trainer`` trains it through skorch
(``finetune._net.FineTuneNet``). The estimator keeps the fitted net,
prediction, pickling and tags. An estimator is a modality × a task:
``FineTunedClassifier(ClassifierTask, ImageFineTuning)`` where
``ImageFineTuning`` subclasses ``BaseFineTuned``. A modality implements four
hooks:

``_resolve_backbone() -> Backbone``
    Resolve the spec afresh (every fit starts from the pretrained weights).
``_coerce(X) -> list``
    Validate ``X``; one item per sample, errors naming the bad item's index.
``_make_dataset(items, backbone, train) -> torch Dataset``
    ``dataset[i]`` is the model input of ``items[i]``: augmented when
    ``train`` is True, the eval preprocessing otherwise.
``_collate(samples) -> batch``
    Stack a list of ``dataset[i]`` into the input of ``backbone.module``
    (default: ``torch.utils.data.default_collate``; text: pad token ids).

A task (``sktransfer.finetune._tasks``) implements ``_encode_target(y,
n_samples) -> ndarray`` (what the criterion compares with), ``_n_outputs()``
(the head's width), ``_criterion()``, ``_stratify(y)`` (the labels the early
stopping split is stratified on, or None) and the predict methods on top of
``_forward(X)``, the head's raw outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch.utils.data import Dataset, default_collate

from sktransfer._utils import engine
from sktransfer._utils.device import resolve_device
from sktransfer._utils.params import validate_params
from sktransfer.exceptions import InvalidInputError
from sktransfer.finetune._arguments import PATIENCE, TrainingArguments
from sktransfer.finetune._model import build_model, finish_model, parameter_counts
from sktransfer.finetune._prefix import frozen_prefix
from sktransfer.finetune._trainer import (  # noqa: F401 - see below
    Trainer,
    _LabeledCollate,  # pickles made before the trainer was split out name
    _silent,  # these two here (a fitted net's collate, early stopping's sink)
    prediction_dataset,
)

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from typing_extensions import Self

__all__ = ["PATIENCE", "BaseFineTuned"]


class BaseFineTuned(BaseEstimator):
    """Base class of the fine-tuning estimators (see the module docstring)."""

    # bf16 autocast + channels-last on CUDA devices. Not a parameter: an
    # instance may set it to False to train in fp32 (the P7 benchmark does).
    _cuda_speedups = True

    # The default of a parameter added later, for estimators pickled before
    # it existed (``get_params``, ``repr`` and ``clone`` read every parameter).
    batch_losses = False

    # Set by fit (declared for the type checker; not a class attribute).
    validation_indices_: np.ndarray | None

    # --- subclass hooks -------------------------------------------------------

    def _resolve_backbone(self):
        raise NotImplementedError

    def _coerce(self, X) -> list:
        raise NotImplementedError

    def _make_dataset(self, items, backbone, train: bool) -> Dataset:
        raise NotImplementedError

    def _collate(self, samples):
        return default_collate(samples)

    # --- task hooks (``sktransfer.finetune._tasks``) ------------------------------

    def _adaptation(self):
        """``(domain adaptation loss class or None, its weight)``."""
        raise NotImplementedError

    def _probe(self, features, y):
        """``(head weight, head bias, weight decay)``: the tuned linear probe."""
        raise NotImplementedError

    def _probe_is_the_fit(self) -> bool:
        """Whether the probe minimises the training loss (no epochs needed)."""
        raise NotImplementedError

    def _is_multilabel(self) -> bool:
        """Whether ``y`` is multi-label (a task hook; the classifier's)."""
        return False

    def _fixed_norm_statistics(self) -> bool:
        """Whether BatchNorm layers keep their pretrained statistics while
        training (a task hook: multi-label classifiers do)."""
        return False

    def _head_from_probe(self) -> bool:
        """Whether the head starts from the tuned probe even without
        ``head_epochs`` (a task hook: multi-label classifiers do, LP-FT)."""
        return False

    def _probe_first(self) -> bool:
        """Whether a fit trains a probe on the training rows, in order,
        before its epochs (``head_epochs`` or ``_head_from_probe``; without
        ``adapt``)."""
        return bool(self.head_epochs) or self._head_from_probe()

    # --- fit ------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_domain: Any | None = None) -> Self:
        """Fine-tune the pretrained backbone and a new linear head on ``(X, y)``.

        Parameters
        ----------
        X : sequence of samples
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels of any type (classifiers; ``-1``, or the string
            ``"-1"`` among string labels, marks an unlabelled target row, used
            by ``adapt`` and ignored when ``adapt`` is None) or numeric targets
            (regressors, where -1 is a value like any other).
        sample_domain : array-like of shape (n_samples,), default=None
            Classifiers, as in skada: > 0 (or ``"source"``) for a source row, < 0 (or
            ``"target"``) for a target row; target rows may then carry labels (they are
            trained on, and aligned). None: the target rows are the ``y == -1`` rows.

        Returns
        -------
        self
        """
        validate_params(self)
        items = self._coerce(X)
        _check_rows(y, len(items))
        labelled, target = self._split_rows(y, sample_domain)
        y_encoded = self._encode_target(_take(y, labelled), len(labelled))
        adapter, _ = self._adaptation()
        targets = [items[i] for i in target] if adapter else None
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        device = resolve_device(self.device)
        self.device_ = str(device)
        args = TrainingArguments.from_estimator(self, seed, device)
        with engine.seeded(seed, device):
            self._fit([items[i] for i in labelled], y_encoded, args, targets)
        if self.validation_indices_ is not None:  # rows of X
            self.validation_indices_ = labelled[self.validation_indices_]
        return self

    def _fit(self, items, y, args: TrainingArguments, targets=None) -> None:
        """Build the model, train it with the trainer, keep the fitted net."""
        model = build_model(self, self._resolve_backbone(), args)
        self.n_blocks_, self.n_frozen_ = model.n_blocks, model.n_frozen
        self.lora_modules_, self.backbone_digest_ = (model.lora_modules,
                                                     model.backbone_digest)
        trainer = Trainer(self, args)
        prefix = frozen_prefix(self, model, items, args)
        stores: list = []  # decoded pixels (closed when the fit ends)
        try:
            if not model.head_only and prefix is None:  # epochs re-read samples
                items = self._decode_once(items, model.module.backbone,
                                          args.device, stores,
                                          self._first_reads(y, args.seed))
                if targets is not None:
                    targets = self._decode_once(targets, model.module.backbone,
                                                args.device, stores)
            result = trainer.train(model, items, y, targets, prefix)
        finally:
            for store in stores:
                store.close()
        net = result.net
        self.validation_indices_ = result.validation_indices
        self.head_weight_decay_ = result.head_weight_decay
        self.n_params_, self.n_trainable_params_ = parameter_counts(net.module_)
        finish_model(model, net.module_)
        trainer.clean_up(net)
        self.net_ = net

    def _decode_once(self, items, backbone, device, stores: list, order=None):
        """``items`` as the epochs should read them (a modality hook: images
        are decoded once per fit, in ``order``, ``finetune._pixels``); default
        unchanged."""
        return items

    def _first_reads(self, y, seed: int) -> np.ndarray:
        """The rows in the order the fit first reads them: the training rows
        as the first epoch's shuffle draws them (``Trainer.make_net``'s generator,
        seeded with ``seed``, gives the DataLoader its base seed, then the
        permutation) or in order where a probe is fitted first
        (``_probe_first``), then the validation rows. Decoding follows it (a
        wrong guess costs waiting, never a result: every read waits for its
        own row)."""
        train, valid = self._split(y, seed)
        if not self._probe_first():
            generator = torch.Generator().manual_seed(seed)
            torch.empty((), dtype=torch.int64).random_(generator=generator)
            train = train[torch.randperm(len(train), generator=generator).numpy()]
        return train if valid is None else np.concatenate([train, valid])

    # --- the frozen-prefix cache's modality hooks (``finetune._prefix``) ---------

    def _prefix_cacheable(self) -> bool:
        """Whether the input of the frozen blocks is the same every epoch (a
        modality hook: images without ``augment``)."""
        return False

    def _sample_key(self, item) -> str:
        """Hash of one sample's content (a modality hook)."""
        raise NotImplementedError

    def _preprocessing_identity(self, backbone) -> tuple:
        """What turns a sample into the network's input (a modality hook)."""
        return ()

    def _split(self, y, seed: int):
        """``(training rows, validation rows or None)``: the early-stopping
        split (a task may override it)."""
        indices = np.arange(len(y))
        if not self.early_stopping:
            return indices, None
        try:
            train, valid = train_test_split(
                indices,
                test_size=self.validation_fraction,
                stratify=self._stratify(y),
                random_state=seed,
            )
        except ValueError:  # a class too small to stratify: split at random
            train, valid = train_test_split(
                indices, test_size=self.validation_fraction, random_state=seed
            )
        return np.sort(train), np.sort(valid)

    def _trainer(self) -> Trainer:
        """The trainer of a fitted estimator (predict-time and model files)."""
        return Trainer(self, TrainingArguments.from_estimator(
            self, 0, torch.device(self.device_)))

    def _features(self, module, items, device) -> torch.Tensor:
        """The pooled backbone features of ``items`` (eval preprocessing)."""
        return Trainer(self, TrainingArguments.from_estimator(
            self, 0, torch.device(device))).features(module, items)

    # --- predict --------------------------------------------------------------

    @property
    def history_(self):
        check_is_fitted(self, "net_")
        return self.net_.history

    @property
    def backbone_(self):
        check_is_fitted(self, "net_")
        return self.net_.module_.backbone

    def _forward(self, X) -> torch.Tensor:
        """The head's outputs for ``X`` (float32, on the CPU), batch by batch."""
        check_is_fitted(self, "net_")
        items = self._coerce(X)
        dataset = prediction_dataset(
            self._make_dataset(items, self.backbone_, train=False), len(items))
        chunks = [
            outputs.float().cpu()
            for outputs in self.net_.forward_iter(dataset, training=False)
        ]
        return torch.cat(chunks)

    # --- persistence and tags -------------------------------------------------

    def __setstate__(self, state):
        super().__setstate__(state)
        net = state.get("net_")
        if (
            net is not None
            and str(net.device).startswith("cuda")
            and not (torch.cuda.is_available())
        ):
            net.device = "cpu"
        if net is not None:
            self.device_ = str(net.device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = self.random_state is None
        return tags


def _check_rows(y, n_samples: int) -> None:
    if len(y) != n_samples:
        raise InvalidInputError(
            f"X has {n_samples} samples but y has {len(y)} rows (labels or targets)"
        )


def _take(y, rows):
    """``y[rows]`` for any array-like (list, Series, ndarray; 1-d or 2-d)."""
    return np.asarray(y)[rows]
