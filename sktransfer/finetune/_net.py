"""The skorch side: a NeuralNet with L2-SP, mixed precision and a freeze schedule."""

from __future__ import annotations

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import get_len, unpack_data
from skorch.utils import to_tensor

from sktransfer._utils import engine

__all__ = ["FineTuneNet", "FreezeSchedule"]


class FineTuneNet(NeuralNet):
    """``NeuralNet`` for a ``FineTuneModule``.

    Parameters (besides skorch's)
    -----------------------------
    l2sp : float
        Adds ``l2sp * sum ||w - w0||^2`` over the trainable backbone weights to
        the training loss (``module_.reference`` holds w0).
    amp_dtype : torch.dtype or None
        Autocast dtype for forward passes (CUDA only); None runs in fp32.
    channels_last : bool
        Feed 4-d inputs in channels-last memory format (CUDA convolutions).
    adapt_weight : float
        With a ``module_.adapter`` (domain adaptation), each training batch is
        ``n`` labelled source rows followed by target rows (``PairedCollate``)
        and the loss is the source cross-entropy plus ``adapt_weight`` times
        the adapter's loss on the two halves of ``module_.represent``.
    adapt_steps : int
        Training steps in the whole fit: the adapter gets the progress
        ``steps done / adapt_steps``.
    batch_losses : bool
        Write every batch's losses into its ``history`` row (read in one
        transfer per epoch); False records each epoch's mean losses only.
    """

    batch_losses = True  # nets pickled before the switch existed

    def __init__(
        self,
        *args,
        l2sp=0.0,
        amp_dtype=None,
        channels_last=False,
        adapt_weight=0.0,
        adapt_steps=1,
        batch_losses=False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.l2sp = l2sp
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last
        self.adapt_weight = adapt_weight
        self.adapt_steps = adapt_steps
        self.batch_losses = batch_losses

    def __getstate__(self):
        # ``module`` (the instance given to the net) is ``module_``: pickle them
        # together so that the weights are stored once and are mapped to the CPU
        # on a machine without CUDA.
        saved = self.cuda_dependent_attributes_
        self.cuda_dependent_attributes_ = [*saved, "module"]
        try:
            return super().__getstate__()
        finally:
            self.cuda_dependent_attributes_ = saved

    def initialize_optimizer(self, triggered_directly=None):
        """skorch's optimizer, built by the engine's ``make_optimizer`` (its
        fused kernel where the device has one), as the few-shot loop's is."""
        named_parameters = self.get_all_learnable_params()
        args, kwargs = self.get_params_for_optimizer("optimizer", named_parameters)
        self.optimizer_ = engine.make_optimizer(self.optimizer, *args, **kwargs)
        return self

    def _autocast(self):
        return engine.autocast_for(self.device, self.amp_dtype)

    def _to_input(self, x):
        x = to_tensor(x, device=self.device)
        if self.channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch without its per-batch ``loss.item()``.

        skorch reads every batch's loss to the host as soon as the step is
        queued, so the host waits for the device before it prepares the next
        batch. Here the losses stay on the device (``LossMeter``). With
        ``batch_losses`` they are written into the batch rows of ``history``
        in one transfer at the end of the epoch, before the epoch's callbacks
        read them (skorch's history, unchanged); without, only the epoch's
        batch-size-weighted mean loss leaves the device, recorded in the
        epoch's row with its ``_best`` flag as skorch's scoring callbacks
        would record it. On CUDA, with no DataLoader workers, a thread
        prepares the next batches (decoding, augmentation, collation) while
        the device computes (``prefetch``); on the CPU the network already
        uses every core, and the thread would interleave the augmentation's
        and the network's draws from torch's generator (runs would not
        repeat).
        """
        if iterator is None:
            return
        if (torch.device(self.device).type == "cuda"
                and getattr(iterator, "num_workers", 1) == 0):
            iterator = engine.prefetch(iterator, ahead=2)
        meters = {prefix + "_loss": engine.LossMeter()}
        if training and self.module_.adapter is not None:
            meters["adapt_loss"] = engine.LossMeter()
        self._meters = meters
        rows = []
        try:
            for batch in iterator:
                self.notify("on_batch_begin", batch=batch, training=training)
                step = step_fn(batch, **fit_params)
                batch_size = (get_len(batch[0]) if isinstance(batch, (tuple, list))
                              else get_len(batch))
                meters[prefix + "_loss"].add(step["loss"], batch_size)
                self.history.record_batch(prefix + "_batch_size", batch_size)
                rows.append(self.history[-1]["batches"][-1])
                self.notify("on_batch_end", batch=batch, training=training, **step)
        finally:
            self._meters = None
            if self.batch_losses:
                for name, meter in meters.items():
                    for row, value in zip(rows, meter.values(), strict=False):
                        row[name] = value
        self.history.record(prefix + "_batch_count", len(rows))
        if not self.batch_losses:
            for name, meter in meters.items():
                if len(meter):
                    _record_epoch_loss(self.history, name, meter.mean())

    def infer(self, x, **fit_params):
        with self._autocast():
            return self.module_(self._to_input(x), **fit_params)

    def train_step_single(self, batch, **fit_params):
        adapter = self.module_.adapter
        if adapter is None:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        n = len(yi)
        with self._autocast():
            features = self.module_.represent(self._to_input(Xi))
            y_pred = self.module_.head(features[:n])
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        features = features.float()
        adapt_loss = adapter(features[:n], features[n:], self._progress())
        self._meters["adapt_loss"].add(adapt_loss, n)  # read once per epoch
        loss = loss + self.adapt_weight * adapt_loss
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def _progress(self) -> float:
        """Training steps done, this one included, over ``adapt_steps``.

        Validation batches do not count: a finished epoch contributes its
        ``train_batch_count``; in the epoch under way, validation comes after
        training, so each batch recorded so far is a training step.
        """
        rows = list(self.history)
        done = sum(row.get("train_batch_count", 0) for row in rows[:-1])
        done += len(rows[-1]["batches"])
        return min(1.0, done / max(1, self.adapt_steps))

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred.float(), y_true, X=X, training=training)
        if training and self.l2sp:
            loss = loss + self.l2sp * self.module_.l2sp_penalty()
        return loss

    def evaluation_step(self, batch, training=False):
        if training:
            return super().evaluation_step(batch, training=True)
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        self._set_training(False)
        with torch.inference_mode():
            return self.infer(Xi).float()


def _record_epoch_loss(history, name: str, value: float) -> None:
    """``name`` and, for skorch's two losses, ``name_best`` (lower than
    every earlier epoch's) in the epoch's row, as ``PassthroughScoring``
    records them from the batch rows."""
    earlier = [row[name] for row in history[:-1] if name in row]
    history.record(name, value)
    if name in ("train_loss", "valid_loss"):
        history.record(name + "_best", not earlier or value < min(earlier))


class FreezeSchedule(Callback):
    """Train the head alone for ``head_epochs`` epochs, then unfreeze.

    Each epoch's history row gets ``phase``: ``"head"`` while the whole
    backbone is frozen, ``"finetune"`` once the blocks after ``n_frozen`` train.
    """

    def __init__(self, head_epochs: int, n_frozen: int):
        self.head_epochs = head_epochs
        self.n_frozen = n_frozen

    def on_epoch_begin(self, net, **kwargs):
        module = net.module_
        head_phase = len(net.history) <= self.head_epochs
        n_frozen = module.n_blocks if head_phase else self.n_frozen
        if module.n_frozen != n_frozen:
            module.freeze(n_frozen)
        phase = "head" if head_phase or n_frozen == module.n_blocks else "finetune"
        net.history.record("phase", phase)
