"""The frozen-prefix cache: the frozen blocks' outputs, computed once.

With ``cache`` set, some blocks frozen and some trained, no ``adapt``,
nothing random before the frozen blocks (the modality's
``_prefix_cacheable``: images without ``augment``, text without EDA or a
callable) and a backbone whose remaining blocks can be resumed from the last
frozen block's output (checked on two samples: the resumed pass must give
the full pass's features), the frozen blocks run once per sample. The
outputs are stored per sample in ``sktransfer.cache``'s store, keyed by a
digest of the frozen blocks' weights, their number, the output's shape, the
preprocessing and the sample's content: every epoch, fold and grid-search
candidate sharing the freeze depth reuses them.

Images: the output is a fixed-shape tensor per image (``TensorPrefix``).
Text: it is one hidden state per real token, ``(n_tokens, width)``
(``TokenPrefix``); the store keeps fixed-width entries, so each text goes
to the store of its length bucket (16, 32, 64... tokens: under twice its
length), zero-padded there. A batch of cached texts is padded to its longest
with an attention mask, as the tokenizer pads, and resumes the encoder after
the frozen layers (``FineTuneModule.encode``: ``prefix_states``).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from sktransfer._utils.engine import to_device
from sktransfer.cache import EmbeddingCache, caching, embed_with_cache, hash_parts
from sktransfer.finetune._arguments import TrainingArguments
from sktransfer.finetune._model import Model
from sktransfer.finetune._trainer import labelled_rows

__all__ = ["TensorPrefix", "TokenPrefix", "frozen_prefix", "pad_states"]

SHORTEST_BUCKET = 16  # tokens


class TensorPrefix:
    """Fixed-shape frozen outputs, one row per sample (images)."""

    collate_inputs = None  # torch's default collate stacks the rows

    def __init__(self, values: torch.Tensor):
        self.values = values

    def datasets(self, y, train_idx, valid_idx):
        def rows(indices):
            return TensorDataset(self.values[indices], torch.from_numpy(y[indices]))

        return rows(train_idx), None if valid_idx is None else rows(valid_idx)

    def batches(self, indices, batch_size: int):
        inputs = self.values[indices]
        for start in range(0, len(inputs), batch_size):
            yield inputs[start:start + batch_size]


class TokenPrefix(Dataset):
    """Per-text frozen hidden states ``(n_tokens_i, width)`` (text)."""

    def __init__(self, states: list):
        self.states = states

    def __len__(self):
        return len(self.states)

    def __getitem__(self, i):
        return self.states[i]

    @staticmethod
    def collate_inputs(samples) -> dict:
        return pad_states(list(samples))

    def datasets(self, y, train_idx, valid_idx):
        return (labelled_rows(self, y, train_idx),
                None if valid_idx is None else labelled_rows(self, y, valid_idx))

    def batches(self, indices, batch_size: int):
        rows = Subset(self, list(indices))
        for start in range(0, len(rows), batch_size):
            yield pad_states([rows[i] for i in
                              range(start, min(start + batch_size, len(rows)))])


def pad_states(states: list) -> dict:
    """Hidden states of different lengths as a batch the encoder resumes
    from: padded to the longest, an attention mask over the real tokens, and
    placeholder token ids (the skipped embeddings would have read them)."""
    longest = max(len(s) for s in states)
    width = states[0].shape[1]
    batch = states[0].new_zeros((len(states), longest, width))
    mask = torch.zeros((len(states), longest), dtype=torch.long)
    for i, s in enumerate(states):
        batch[i, :len(s)] = s
        mask[i, :len(s)] = 1
    return {"input_ids": torch.zeros_like(mask), "attention_mask": mask,
            "prefix_states": batch}


def frozen_prefix(estimator, model: Model, items, args: TrainingArguments):
    """The frozen blocks' outputs for every item (a ``TensorPrefix`` or a
    ``TokenPrefix``), or None where the cache does not apply (see the module
    docstring)."""
    module, n_frozen = model.module, model.n_frozen
    cache = estimator.cache
    if (not caching(cache) or n_frozen == 0 or model.head_only
            or module.adapter is not None or not estimator._prefix_cacheable()):
        return None
    device = next(module.parameters()).device  # where the module is now
    shape = _resumable_shape(estimator, module, n_frozen, items[:2], device)
    if shape is None:
        return None
    key = hash_parts("finetune-prefix", module.prefix_digest(n_frozen),
                     n_frozen, shape,
                     *estimator._preprocessing_identity(module.backbone))
    spec = estimator.model
    name = spec if isinstance(spec, (str, os.PathLike)) else type(spec).__name__
    description = {"estimator": type(estimator).__name__, "model": str(name),
                   "frozen_blocks": n_frozen}
    directory = None if cache is True else cache
    keys = [estimator._sample_key(item) for item in items]

    def outputs(indices):
        """``(rows, frozen outputs, attention mask or None)`` batch by batch."""
        dataset = estimator._make_dataset([items[i] for i in indices],
                                          module.backbone, train=False)
        module.eval()
        for start in range(0, len(indices), args.batch_size):
            rows = indices[start:start + args.batch_size]
            batch = estimator._collate([dataset[j] for j in
                                        range(start, start + len(rows))])
            batch = to_device(batch, device)
            mask = batch.get("attention_mask") if isinstance(batch, dict) else None
            yield rows, module.prefix(batch, n_frozen).float().cpu(), mask

    if len(shape) == 2 and shape[0] == -1:  # token states: (tokens, width)
        return _token_prefix(estimator, items, keys, key, shape[1], description,
                             directory, outputs)
    width = int(np.prod(shape))
    store = EmbeddingCache(key, width, directory,
                           {**description, "shape": list(shape)})

    def batches(indices):
        for rows, values, _ in outputs(indices):
            yield rows, values.reshape(len(rows), -1).numpy()

    values = embed_with_cache(len(items), keys, store, batches, width)
    return TensorPrefix(torch.from_numpy(values).reshape(len(items), *shape))


def _token_prefix(estimator, items, keys, key, width, description, directory,
                  outputs) -> TokenPrefix:
    """Each text's real tokens' states, through the store of its length
    bucket (a token count known from tokenising, which is cheap)."""
    lengths = _token_counts(estimator, items)
    buckets = [max(SHORTEST_BUCKET, 1 << math.ceil(math.log2(max(n, 1))))
               for n in lengths]
    states: list = [None] * len(items)
    for bucket in sorted(set(buckets)):
        members = [i for i, b in enumerate(buckets) if b == bucket]
        store = EmbeddingCache(f"{key}-t{bucket}", bucket * width, directory,
                               {**description, "tokens": bucket, "width": width})

        def batches(indices, members=members, bucket=bucket):
            for rows, values, mask in outputs([members[i] for i in indices]):
                padded = torch.zeros((len(rows), bucket, width))
                for j, row in enumerate(values):
                    real = row[mask[j].bool().cpu()]
                    padded[j, :len(real)] = real
                where = {members[i]: i for i in indices}  # item -> position
                yield [where[row] for row in rows], padded.reshape(
                    len(rows), -1).numpy()

        values = embed_with_cache(len(members), [keys[i] for i in members], store,
                                  batches, bucket * width)
        for position, i in enumerate(members):
            states[i] = torch.from_numpy(values[position]).reshape(
                bucket, width)[:lengths[i]].clone()
    return TokenPrefix(states)


def _token_counts(estimator, items) -> list[int]:
    counts: list[int] = []
    for start in range(0, len(items), 256):
        tokens = estimator._collate(items[start:start + 256])
        counts += tokens["attention_mask"].sum(1).tolist()
    return [int(n) for n in counts]


def _resumable_shape(estimator, module, n_frozen: int, items, device
                     ) -> tuple | None:
    """The shape of a frozen-prefix output (text: ``(-1, width)``, the token
    count varying), if resuming after it gives the full forward pass's
    features on ``items``; else None."""
    dataset = estimator._make_dataset(items, module.backbone, train=False)
    batch = to_device(estimator._collate([dataset[i] for i in range(len(items))]),
                      device)
    module.eval()
    try:
        with torch.no_grad():
            outputs = module.prefix(batch, n_frozen)
            full = module.encode(batch)
            resumed_input = outputs
            if isinstance(batch, dict):  # tokens: resume as the cache would
                mask = batch["attention_mask"].bool()
                resumed_input = to_device(pad_states(
                    [row[m] for row, m in zip(outputs, mask, strict=True)]), device)
            module.prefix_blocks = n_frozen
            try:
                resumed = module.encode(resumed_input)
            finally:
                module.prefix_blocks = 0
    except (RuntimeError, TypeError, ValueError, IndexError, AttributeError,
            KeyError):
        return None
    if not isinstance(outputs, torch.Tensor) or resumed.shape != full.shape \
            or not torch.allclose(resumed, full, rtol=1e-4, atol=1e-5):
        return None
    if isinstance(batch, dict):
        return (-1, int(outputs.shape[-1]))
    return tuple(int(n) for n in outputs.shape[1:])
