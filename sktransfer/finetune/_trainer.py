"""The trainer side of a fine-tuning fit: the loop, through skorch.

``Trainer(estimator, args).train(model, items, y, targets, prefix)`` runs one
fit of ``model`` (``finetune._model``) with the resolved ``args``
(``finetune._arguments``): the early-stopping split, the datasets (features
computed once on the head-only path, cached frozen-prefix outputs, or the
modality's samples), the tuned probe that starts the head, the skorch net
(``finetune._net.FineTuneNet``: parameter groups, freeze schedule, early
stopping, L2-SP, device and precision, losses read once per epoch) and its
clean-up. What a sample is and what is predicted stay the estimator's hooks
(``_make_dataset``, ``_collate``, ``_split``, ``_probe``, ``_criterion``,
``_adaptation``): the trainer asks, it does not know.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from sktransfer._utils.device import autocast
from sktransfer._utils.engine import to_device
from sktransfer.finetune._adapt import PairedCollate, PairedRows
from sktransfer.finetune._arguments import TrainingArguments
from sktransfer.finetune._lora import trained_norms
from sktransfer.finetune._model import Model, set_head
from sktransfer.finetune._net import FineTuneNet, FreezeSchedule

__all__ = ["Trainer", "TrainResult"]


@dataclasses.dataclass
class TrainResult:
    """What a fit leaves: the trained net, the held-out rows (None: every
    row trained) and the head's weight decay chosen by the probe."""

    net: FineTuneNet
    validation_indices: np.ndarray | None
    head_weight_decay: float


class Trainer:
    """Trains a ``Model`` for ``estimator`` with ``args`` (module docstring)."""

    def __init__(self, estimator, args: TrainingArguments):
        self.estimator, self.args = estimator, args

    # --- the fit ------------------------------------------------------------------

    def train(self, model: Model, items, y, targets=None, prefix=None
              ) -> TrainResult:
        est, module, fast = self.estimator, model.module, model.head_only
        # Head only, on the probe's own loss: the tuned probe is the solution.
        solved = fast and module.adapter is None and est._probe_is_the_fit()
        if solved:
            train_idx, valid_idx = np.arange(len(y)), None
        else:
            train_idx, valid_idx = est._split(y, self.args.seed)
        # read by the modality's datasets (text EDA draws no held-out words)
        est.validation_indices_ = valid_idx
        if prefix is not None:  # the frozen blocks' outputs, cached
            module.prefix_blocks = model.n_frozen
            train_ds, valid_ds = prefix.datasets(y, train_idx, valid_idx)
        else:
            train_ds, valid_ds = self.datasets(items, y, module, train_idx,
                                               valid_idx, fast)
        probe = None
        if module.adapter is None and (fast or est._probe_first()):
            probe = self._probe(train_ds, items, y, train_idx, module, fast, prefix)
        decay = 0.0 if probe is None else probe[2]
        if targets is not None:
            train_ds = PairedRows(train_ds, self._targets(targets, module, fast))
        net = self.make_net(module, train_ds, valid_ds, fast, decay,
                            n_frozen=model.n_frozen, prefix=prefix)
        net.initialize()
        if probe is not None:
            set_head(net.module_.head, probe[0], probe[1])
        if self.args.l2sp and not fast:
            net.module_.remember_start(model.n_frozen)
        if not solved:
            net.partial_fit(train_ds, None)
        return TrainResult(net, valid_idx, decay)

    def _probe(self, train_ds, items, y, train_idx, module, fast, prefix):
        """The tuned linear probe on the frozen features of the training rows."""
        if prefix is not None:
            features = self._encode_batches(
                module, prefix.batches(train_idx, self.args.batch_size))
        elif fast:
            features = train_ds.tensors[0]
        else:  # head_epochs or LP-FT: the pretrained features, no augmentation
            features = self.features(module, [items[i] for i in train_idx])
        return self.estimator._probe(features.numpy().astype(np.float64),
                                     y[train_idx])

    # --- data ---------------------------------------------------------------------

    def datasets(self, items, y, module, train_idx, valid_idx, fast):
        est = self.estimator
        if fast:
            # Frozen backbone: embed every row once, then only the head trains.
            features = self.features(module, items)
            module.inputs_are_features = True
            return _tensor_datasets(features, y, train_idx, valid_idx)
        backbone = module.backbone
        train = _Labeled(est._make_dataset(items, backbone, train=True), y, train_idx)
        valid = (None if valid_idx is None else
                 _Labeled(est._make_dataset(items, backbone, train=False), y,
                          valid_idx))
        return train, valid

    def _targets(self, items, module, fast):
        """The target rows' inputs: features (fast path) or augmented samples."""
        if fast:
            return self.features(module, items)
        return self.estimator._make_dataset(items, module.backbone, train=True)

    def features(self, module, items) -> torch.Tensor:
        """``module.encode`` of every item (eval preprocessing), on the CPU."""
        dataset = self.estimator._make_dataset(items, module.backbone, train=False)
        return self._encode_batches(module, self.loader(dataset))

    def _encode_batches(self, module, batches) -> torch.Tensor:
        module.eval()
        device = self.args.device
        chunks = []
        # the eval-time autocast (fp16 where bf16 is missing): features only
        with torch.no_grad(), autocast(device):
            for batch in batches:
                chunks.append(module.encode(to_device(batch, device)).float().cpu())
        return torch.cat(chunks)

    def loader(self, dataset, collate=None) -> DataLoader:
        return DataLoader(dataset, batch_size=self.args.batch_size,
                          num_workers=self.args.num_workers,
                          collate_fn=collate or self.estimator._collate)

    # --- the skorch net -------------------------------------------------------------

    def make_net(self, module, train_ds, valid_ds, fast, head_decay=0.0, *,
                 n_frozen: int, prefix=None) -> FineTuneNet:
        """The skorch net that trains ``module`` (and, rebuilt from a model
        file with empty data, the one that predicts); ``prefix``: the cached
        frozen outputs it trains on (``finetune._prefix``), if any."""
        est, args = self.estimator, self.args
        if prefix is not None:
            collate_inputs = prefix.collate_inputs
        else:
            collate_inputs = None if fast else est._collate
        paired = isinstance(train_ds, PairedRows)
        train_collate = PairedCollate(None if fast else est._collate)
        new_layers = {"lr": args.lr}  # the head, bottleneck and adapter
        norms = []  # LoRA: BatchNorm of the adapted blocks, at lr with the adapters
        if args.lora and not fast:
            norms = [f"encoder.{name}.*" for name, _ in
                     trained_norms(module.backbone, n_frozen)]
        # The probe's penalty on the head's weight (not its bias).
        head = {"lr": args.lr, "weight_decay": head_decay}
        return FineTuneNet(
            module,
            criterion=est._criterion(),
            optimizer=torch.optim.Adam,
            lr=args.backbone_lr,
            optimizer__param_groups=[
                ("head.weight", head),
                *((name, new_layers)
                  for name in ("head.*", "neck.*", "adapter.*", "*lora_*", *norms)),
            ],
            max_epochs=args.epochs,
            batch_size=args.batch_size,
            train_split=None if valid_ds is None else predefined_split(valid_ds),
            callbacks=self.callbacks(n_frozen),
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(args.seed),
            iterator_train__collate_fn=(train_collate if paired
                                        else _LabeledCollate(collate_inputs)),
            iterator_valid__collate_fn=_LabeledCollate(collate_inputs),
            iterator_train__num_workers=args.num_workers,
            iterator_valid__num_workers=args.num_workers,
            iterator_train__pin_memory=args.device.type == "cuda",
            device=str(args.device),
            verbose=int(args.progress),
            l2sp=0.0 if fast else args.l2sp,
            amp_dtype=args.amp_dtype,
            channels_last=args.channels_last,
            adapt_weight=est._adaptation()[1],
            adapt_steps=args.epochs * -(-len(train_ds) // args.batch_size),
            batch_losses=args.batch_losses,
        )

    def callbacks(self, n_frozen: int) -> list:
        args = self.args
        callbacks = [("freeze_schedule", FreezeSchedule(args.head_epochs, n_frozen))]
        if args.early_stopping:
            stopper = EarlyStopping(monitor="valid_loss", patience=args.patience,
                                    load_best=True,
                                    sink=print if args.progress else _silent)
            callbacks.append(("early_stopping", stopper))
        return callbacks

    def clean_up(self, net) -> None:
        """Back to the full network; drop what only training needed."""
        module = net.module_
        module.inputs_are_features = False
        module.prefix_blocks = 0
        module.reference = None
        # The fast path validated on features; prediction feeds samples again.
        net.iterator_valid__collate_fn = _LabeledCollate(self.estimator._collate)
        net.train_split = None  # holds the validation dataset
        net.optimizer_.state.clear()  # Adam moments: twice the weights in a pickle


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
    """Collate ``(input, label)`` pairs with the modality's input collate."""

    def __init__(self, collate_inputs=None):
        self.collate_inputs = collate_inputs

    def __call__(self, pairs):
        if self.collate_inputs is None:
            return default_collate(pairs)
        inputs, labels = zip(*pairs, strict=True)
        return self.collate_inputs(list(inputs)), torch.from_numpy(np.stack(labels))


def labelled_rows(dataset, y, indices) -> Dataset:
    """``(dataset[i], y[i])`` for the rows ``indices``."""
    return _Labeled(dataset, y, indices)


def prediction_dataset(dataset, n: int) -> Dataset:
    """``(dataset[i], 0)`` pairs: what the net's ``forward_iter`` reads."""
    return _Labeled(dataset, None, np.arange(n))


def _tensor_datasets(inputs, y, train_idx, valid_idx):
    train = TensorDataset(inputs[train_idx], torch.from_numpy(y[train_idx]))
    if valid_idx is None:
        return train, None
    return train, TensorDataset(inputs[valid_idx], torch.from_numpy(y[valid_idx]))


def _silent(*args, **kwargs):
    pass
