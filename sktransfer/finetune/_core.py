"""``BaseFineTuned``: the modality- and task-agnostic fine-tuning estimator.

It owns everything that does not depend on what a sample is or what is
predicted: freezing, learning rates, the head-first schedule, L2-SP, early
stopping, seeding, device and precision, the ``freeze_depth="all"`` fast path,
batched forward passes and pickling. An estimator is a modality × a task:
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

import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from sktransfer._utils.device import amp_dtype, autocast, resolve_device
from sktransfer._utils.engine import seeded
from sktransfer._utils.params import validate_params
from sktransfer.backbones import frozen_block_count
from sktransfer.cache import EmbeddingCache, embed_with_cache, hash_parts
from sktransfer.exceptions import InvalidInputError
from sktransfer.finetune._adapt import PairedCollate, PairedRows
from sktransfer.finetune._lora import (
    check_lora,
    inject_adapters,
    lora_target_names,
    merge_adapters,
    state_digest,
    trained_norms,
)
from sktransfer.finetune._module import FineTuneModule
from sktransfer.finetune._net import FineTuneNet, FreezeSchedule

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from typing_extensions import Self

__all__ = ["BaseFineTuned"]

PATIENCE = 5  # epochs without a better validation loss before stopping


class BaseFineTuned(BaseEstimator):
    """Base class of the fine-tuning estimators (see the module docstring)."""

    # bf16 autocast + channels-last on CUDA devices. Not a parameter: an
    # instance may set it to False to train in fp32 (the P7 benchmark does).
    _cuda_speedups = True

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
        with seeded(seed, device):
            self._fit([items[i] for i in labelled], y_encoded, seed, device, targets)
        if self.validation_indices_ is not None:  # rows of X
            self.validation_indices_ = labelled[self.validation_indices_]
        return self

    def _fit(self, items, y, seed: int, device: torch.device, targets=None) -> None:
        backbone = self._resolve_backbone()
        n_blocks = len(backbone.blocks)
        n_frozen = frozen_block_count(self.freeze_depth, n_blocks, backbone.name)
        self.n_blocks_, self.n_frozen_ = n_blocks, n_frozen
        self._add_lora(backbone, n_frozen)
        first = n_blocks if self.head_epochs else n_frozen
        adapter, _ = self._adaptation()
        module = FineTuneModule(backbone, self._n_outputs(), first, adapter,
                                lora=self.lora_rank is not None)
        if _channels_last(device, self._cuda_speedups):
            # torch stubs: no overload takes device and memory_format together
            module.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        fast = n_frozen == n_blocks
        prefix = None if fast else self._frozen_prefix(module, items, device)
        stores: list = []  # decoded pixels (closed when the fit ends)
        try:
            if not fast and prefix is None:  # epochs read every sample again
                items = self._decode_once(items, backbone, device, stores,
                                          self._first_reads(y, seed))
                if targets is not None:
                    targets = self._decode_once(targets, backbone, device, stores)
            self._train(module, items, y, seed, device, targets, prefix)
        finally:
            for store in stores:
                store.close()

    def _decode_once(self, items, backbone, device, stores: list, order=None):
        """``items`` as the epochs should read them (a modality hook: images
        are decoded once per fit, in ``order``, ``finetune._pixels``); default
        unchanged."""
        return items

    def _first_reads(self, y, seed: int) -> np.ndarray:
        """The rows in the order the fit first reads them: the training rows
        as the first epoch's shuffle draws them (``_make_net``'s generator,
        seeded with ``seed``, gives the DataLoader its base seed, then the
        permutation) or in order where ``head_epochs`` fit a probe first,
        then the validation rows. Decoding follows it (a wrong guess costs
        waiting, never a result: every read waits for its own row)."""
        train, valid = self._split(y, seed)
        if not self.head_epochs:
            generator = torch.Generator().manual_seed(seed)
            torch.empty((), dtype=torch.int64).random_(generator=generator)
            train = train[torch.randperm(len(train), generator=generator).numpy()]
        return train if valid is None else np.concatenate([train, valid])

    # --- the frozen-prefix cache ------------------------------------------------

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

    def _frozen_prefix(self, module, items, device) -> torch.Tensor | None:
        """The frozen blocks' outputs for every item, or None where the cache
        does not apply.

        It applies with ``cache`` set, some blocks frozen and some trained, no
        ``adapt``, nothing random before the frozen blocks
        (``_prefix_cacheable``) and a backbone whose remaining blocks can be
        resumed from the last frozen block's output (checked on two samples:
        the resumed pass must give the full pass's features). The outputs are
        stored per sample in ``sktransfer.cache``'s store, keyed by a digest
        of the frozen blocks' weights, their number, the output's shape, the
        preprocessing and the sample's content: every epoch, fold and
        grid-search candidate sharing the freeze depth reuses them.
        """
        n_frozen = self.n_frozen_
        if (self.cache is False or self.cache is None or n_frozen == 0
                or module.adapter is not None or not self._prefix_cacheable()):
            return None
        backbone = module.backbone
        device = next(module.parameters()).device  # where the module is now
        shape = self._resumable_shape(module, items[:2], device)
        if shape is None:
            return None
        key = hash_parts("finetune-prefix", module.prefix_digest(n_frozen),
                         n_frozen, shape, *self._preprocessing_identity(backbone))
        width = int(np.prod(shape))
        directory = None if self.cache is True else self.cache
        model = self.model if isinstance(self.model, (str, os.PathLike)) \
            else type(self.model).__name__
        store = EmbeddingCache(key, width, directory, {
            "estimator": type(self).__name__, "model": str(model),
            "frozen_blocks": n_frozen, "shape": list(shape)})
        keys = [self._sample_key(item) for item in items]

        def batches(indices):
            dataset = self._make_dataset([items[i] for i in indices], backbone,
                                         train=False)
            module.eval()
            for start in range(0, len(indices), self.batch_size):
                rows = indices[start:start + self.batch_size]
                batch = self._collate([dataset[j] for j in
                                       range(start, start + len(rows))])
                outputs = module.prefix(_to_device(batch, device), n_frozen)
                yield rows, outputs.float().cpu().reshape(len(rows), -1).numpy()

        values = embed_with_cache(len(items), keys, store, batches, width)
        return torch.from_numpy(values).reshape(len(items), *shape)

    def _resumable_shape(self, module, items, device) -> tuple | None:
        """The shape of a frozen-prefix output, if resuming after it gives the
        full forward pass's features on ``items``; else None."""
        dataset = self._make_dataset(items, module.backbone, train=False)
        batch = _to_device(self._collate([dataset[i] for i in range(len(items))]),
                           device)
        module.eval()
        try:
            with torch.no_grad():
                outputs = module.prefix(batch, self.n_frozen_)
                full = module.encode(batch)
                module.prefix_blocks = self.n_frozen_
                try:
                    resumed = module.encode(outputs)
                finally:
                    module.prefix_blocks = 0
        except (RuntimeError, TypeError, ValueError, IndexError, AttributeError,
                KeyError):
            return None
        if not isinstance(outputs, torch.Tensor) or resumed.shape != full.shape \
                or not torch.allclose(resumed, full, rtol=1e-4, atol=1e-5):
            return None
        return tuple(int(n) for n in outputs.shape[1:])

    def _train(self, module, items, y, seed, device, targets,
               prefix=None) -> None:
        n_blocks, n_frozen = self.n_blocks_, self.n_frozen_
        adapter = module.adapter
        fast = n_frozen == n_blocks
        # Head only, on the probe's own loss: the tuned probe is the solution.
        solved = fast and adapter is None and self._probe_is_the_fit()
        if solved:
            train_idx, valid_idx = np.arange(len(y)), None
        else:
            train_idx, valid_idx = self._split(y, seed)
        self.validation_indices_ = valid_idx
        if prefix is not None:  # the frozen blocks' outputs: cached tensors
            module.prefix_blocks = n_frozen
            train_ds, valid_ds = _tensor_datasets(prefix, y, train_idx, valid_idx)
        else:
            train_ds, valid_ds = self._datasets(
                items, y, module, train_idx, valid_idx, fast, device
            )
        probe = None
        if adapter is None and (fast or self.head_epochs):
            if prefix is not None:
                features = self._encode_tensors(module, prefix[train_idx], device)
                probe = self._probe(features.numpy().astype(np.float64),
                                    y[train_idx])
            else:
                probe = self._fit_probe(train_ds, items, y, train_idx, module,
                                        fast, device)
        self.head_weight_decay_ = 0.0 if probe is None else probe[2]
        if targets is not None:
            train_ds = PairedRows(
                train_ds, self._targets(targets, module, fast, device)
            )
        net = self._make_net(module, train_ds, valid_ds, seed, fast, device,
                             self.head_weight_decay_, tensors=prefix is not None)
        net.initialize()
        if probe is not None:
            _set_head(net.module_.head, probe[0], probe[1])
        if self.l2sp and not fast:
            net.module_.remember_start(n_frozen)
        if not solved:
            net.partial_fit(train_ds, None)
        self._count_parameters(net.module_)
        if self.lora_rank is not None:
            merge_adapters(net.module_)
        self._clean_up(net)
        self.net_ = net

    def _add_lora(self, backbone, n_frozen: int) -> None:
        """LoRA adapters in the unfrozen blocks; the pretrained weights' digest."""
        check_lora(self, n_frozen, len(backbone.blocks))
        self.lora_modules_ = self.backbone_digest_ = None
        if self.lora_rank is None:
            return
        names = lora_target_names(backbone, n_frozen, self.lora_targets)
        self.backbone_digest_ = state_digest(backbone.module)
        inject_adapters(backbone, names, self.lora_rank, self.lora_alpha,
                        self.lora_dropout)
        self.lora_modules_ = names

    def _fit_probe(self, train_ds, items, y, train_idx, module, fast, device):
        """The tuned linear probe on the frozen features of the training rows."""
        if fast:
            features = train_ds.tensors[0]
        else:  # head_epochs: the pretrained features, without augmentation
            features = self._features(module, [items[i] for i in train_idx], device)
        return self._probe(features.numpy().astype(np.float64), y[train_idx])

    def _count_parameters(self, module) -> None:
        params = list(module.parameters())
        self.n_params_ = sum(p.numel() for p in params)
        self.n_trainable_params_ = sum(p.numel() for p in params if p.requires_grad)

    def _split(self, y, seed: int):
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

    def _datasets(self, items, y, module, train_idx, valid_idx, fast, device):
        backbone = module.backbone
        if fast:
            # Frozen backbone: embed every row once, then only the head trains.
            features = self._features(module, items, device)
            module.inputs_are_features = True
            train = TensorDataset(features[train_idx], torch.from_numpy(y[train_idx]))
            valid = (
                None
                if valid_idx is None
                else TensorDataset(features[valid_idx], torch.from_numpy(y[valid_idx]))
            )
            return train, valid
        train = _Labeled(self._make_dataset(items, backbone, train=True), y, train_idx)
        valid = (
            None
            if valid_idx is None
            else _Labeled(
                self._make_dataset(items, backbone, train=False), y, valid_idx
            )
        )
        return train, valid

    def _targets(self, items, module, fast, device):
        """The target rows' inputs: features (fast path) or augmented samples."""
        if fast:
            return self._features(module, items, device)
        return self._make_dataset(items, module.backbone, train=True)

    def _features(self, module, items, device) -> torch.Tensor:
        dataset = self._make_dataset(items, module.backbone, train=False)
        loader = self._loader(dataset)
        module.eval()
        chunks = []
        with torch.no_grad(), autocast(device):
            for batch in loader:
                batch = _to_device(batch, device)
                chunks.append(module.encode(batch).float().cpu())
        return torch.cat(chunks)

    def _encode_tensors(self, module, inputs, device) -> torch.Tensor:
        """``module.encode`` on precomputed inputs (frozen-prefix outputs)."""
        module.eval()
        chunks = []
        with torch.no_grad(), autocast(device):
            for start in range(0, len(inputs), self.batch_size):
                batch = inputs[start:start + self.batch_size].to(device)
                chunks.append(module.encode(batch).float().cpu())
        return torch.cat(chunks)

    def _loader(self, dataset, collate=None):
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate or self._collate,
        )

    def _make_net(self, module, train_ds, valid_ds, seed, fast, device,
                  head_decay=0.0, tensors=False):
        backbone_lr = self.lr / 10 if self.backbone_lr is None else self.backbone_lr
        collate = _LabeledCollate(None if fast or tensors else self._collate)
        paired = isinstance(train_ds, PairedRows)
        train_collate = PairedCollate(None if fast else self._collate)
        epochs = self.head_epochs + self.max_epochs
        new_layers = {"lr": self.lr}  # the head, bottleneck and adapter
        norms = []  # LoRA: BatchNorm of the adapted blocks, at lr with the adapters
        if self.lora_rank is not None and not fast:
            norms = [f"encoder.{name}.*" for name, _ in
                     trained_norms(module.backbone, self.n_frozen_)]
        # The probe's penalty on the head's weight (not its bias).
        head = {"lr": self.lr, "weight_decay": head_decay}
        return FineTuneNet(
            module,
            criterion=self._criterion(),
            optimizer=torch.optim.Adam,
            lr=backbone_lr,
            optimizer__param_groups=[
                ("head.weight", head),
                *((name, new_layers)
                  for name in ("head.*", "neck.*", "adapter.*", "*lora_*", *norms)),
            ],
            max_epochs=epochs,
            batch_size=self.batch_size,
            train_split=None if valid_ds is None else predefined_split(valid_ds),
            callbacks=self._callbacks(),
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(seed),
            iterator_train__collate_fn=train_collate if paired else collate,
            iterator_valid__collate_fn=collate,
            iterator_train__num_workers=self.num_workers,
            iterator_valid__num_workers=self.num_workers,
            iterator_train__pin_memory=device.type == "cuda",
            device=str(device),
            verbose=int(self.progress),
            l2sp=0.0 if fast else self.l2sp,
            amp_dtype=_training_amp(device, self._cuda_speedups),
            channels_last=_channels_last(device, self._cuda_speedups),
            adapt_weight=self._adaptation()[1],
            adapt_steps=epochs * -(-len(train_ds) // self.batch_size),
        )

    def _callbacks(self) -> list:
        callbacks = [
            ("freeze_schedule", FreezeSchedule(self.head_epochs, self.n_frozen_))
        ]
        if self.early_stopping:
            stopper = EarlyStopping(
                monitor="valid_loss",
                patience=PATIENCE,
                load_best=True,
                sink=print if self.progress else _silent,
            )
            callbacks.append(("early_stopping", stopper))
        return callbacks

    def _clean_up(self, net) -> None:
        """Back to the full network; drop what only training needed."""
        module = net.module_
        module.inputs_are_features = False
        module.prefix_blocks = 0
        module.reference = None
        # The fast path validated on features; prediction feeds samples again.
        net.iterator_valid__collate_fn = _LabeledCollate(self._collate)
        net.train_split = None  # holds the validation dataset
        net.optimizer_.state.clear()  # Adam moments: twice the weights in a pickle

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
        dataset = _Labeled(
            self._make_dataset(items, self.backbone_, train=False),
            None,
            np.arange(len(items)),
        )
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


class _Labeled(Dataset):
    """``(input, label)`` pairs for the rows ``indices`` of a sample dataset."""

    def __init__(self, dataset, y, indices):
        self.dataset, self.y, self.indices = dataset, y, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        index = int(self.indices[i])
        label = 0 if self.y is None else self.y[index]
        return self.dataset[index], label


class _LabeledCollate:
    """Collate ``(input, label)`` pairs with the subclass's input collate."""

    def __init__(self, collate_inputs=None):
        self.collate_inputs = collate_inputs

    def __call__(self, pairs):
        if self.collate_inputs is None:
            return default_collate(pairs)
        inputs, labels = zip(*pairs, strict=True)
        return self.collate_inputs(list(inputs)), torch.from_numpy(np.stack(labels))


def _tensor_datasets(inputs, y, train_idx, valid_idx):
    train = TensorDataset(inputs[train_idx], torch.from_numpy(y[train_idx]))
    if valid_idx is None:
        return train, None
    return train, TensorDataset(inputs[valid_idx], torch.from_numpy(y[valid_idx]))


def _check_rows(y, n_samples: int) -> None:
    if len(y) != n_samples:
        raise InvalidInputError(
            f"X has {n_samples} samples but y has {len(y)} rows (labels or targets)"
        )


def _take(y, rows):
    """``y[rows]`` for any array-like (list, Series, ndarray; 1-d or 2-d)."""
    return np.asarray(y)[rows]


def _set_head(head, weight, bias) -> None:
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))


def _to_device(batch, device):
    if isinstance(batch, dict):
        return {k: v.to(device) for k, v in batch.items()}
    return batch.to(device)


def _channels_last(device, speedups: bool = True) -> bool:
    return speedups and device.type == "cuda"


def _training_amp(device, speedups: bool = True):
    # fp16 would need a gradient scaler; train in bf16 or fp32.
    if not speedups:
        return None
    dtype = amp_dtype(device)
    return dtype if dtype == torch.bfloat16 else None


def _silent(*args, **kwargs):
    pass
