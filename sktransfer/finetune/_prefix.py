"""The frozen-prefix cache: the frozen blocks' outputs, computed once.

With ``cache`` set, some blocks frozen and some trained, no ``adapt``,
nothing random before the frozen blocks (the modality's
``_prefix_cacheable``) and a backbone whose remaining blocks can be resumed
from the last frozen block's output (checked on two samples: the resumed pass
must give the full pass's features), the frozen blocks run once per sample.
The outputs are stored per sample in ``sktransfer.cache``'s store, keyed by a
digest of the frozen blocks' weights, their number, the output's shape, the
preprocessing and the sample's content: every epoch, fold and grid-search
candidate sharing the freeze depth reuses them.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from sktransfer._utils.engine import to_device
from sktransfer.cache import EmbeddingCache, embed_with_cache, hash_parts
from sktransfer.finetune._arguments import TrainingArguments
from sktransfer.finetune._model import Model

__all__ = ["frozen_prefix"]


def frozen_prefix(estimator, model: Model, items, args: TrainingArguments
                  ) -> torch.Tensor | None:
    """The frozen blocks' outputs for every item, or None where the cache
    does not apply (see the module docstring)."""
    module, n_frozen = model.module, model.n_frozen
    cache = estimator.cache
    if (cache is False or cache is None or n_frozen == 0 or model.head_only
            or module.adapter is not None or not estimator._prefix_cacheable()):
        return None
    device = next(module.parameters()).device  # where the module is now
    shape = _resumable_shape(estimator, module, n_frozen, items[:2], device)
    if shape is None:
        return None
    key = hash_parts("finetune-prefix", module.prefix_digest(n_frozen),
                     n_frozen, shape,
                     *estimator._preprocessing_identity(module.backbone))
    width = int(np.prod(shape))
    spec = estimator.model
    name = spec if isinstance(spec, (str, os.PathLike)) else type(spec).__name__
    store = EmbeddingCache(key, width, None if cache is True else cache, {
        "estimator": type(estimator).__name__, "model": str(name),
        "frozen_blocks": n_frozen, "shape": list(shape)})
    keys = [estimator._sample_key(item) for item in items]

    def batches(indices):
        dataset = estimator._make_dataset([items[i] for i in indices],
                                          module.backbone, train=False)
        module.eval()
        for start in range(0, len(indices), args.batch_size):
            rows = indices[start:start + args.batch_size]
            batch = estimator._collate([dataset[j] for j in
                                        range(start, start + len(rows))])
            outputs = module.prefix(to_device(batch, device), n_frozen)
            yield rows, outputs.float().cpu().reshape(len(rows), -1).numpy()

    values = embed_with_cache(len(items), keys, store, batches, width)
    return torch.from_numpy(values).reshape(len(items), *shape)


def _resumable_shape(estimator, module, n_frozen: int, items, device
                     ) -> tuple | None:
    """The shape of a frozen-prefix output, if resuming after it gives the
    full forward pass's features on ``items``; else None."""
    dataset = estimator._make_dataset(items, module.backbone, train=False)
    batch = to_device(estimator._collate([dataset[i] for i in range(len(items))]),
                      device)
    module.eval()
    try:
        with torch.no_grad():
            outputs = module.prefix(batch, n_frozen)
            full = module.encode(batch)
            module.prefix_blocks = n_frozen
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
