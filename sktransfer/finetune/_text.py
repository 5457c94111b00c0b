"""The text modality of the fine-tuning core: encoders, tokenised batches, EDA."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

from sktransfer.augment import EDA
from sktransfer.backbones import (
    Backbone,
    frozen_block_count,
    resolve_backbone,
    token_length,
)
from sktransfer.cache import text_key
from sktransfer.data import as_text_list
from sktransfer.exceptions import ModelNotAvailableError, ParameterTypeError
from sktransfer.finetune._core import BaseFineTuned

if TYPE_CHECKING:  # names used in annotations only

    pass

__all__ = ["TextDataset", "TextFineTuning"]


class TextFineTuning(BaseFineTuned):
    """The text modality of ``BaseFineTuned``: transformer encoders, mean-pooled
    token states, dynamically padded batches, ``augment="eda"``."""

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
        # A head on the frozen encoder (freeze_depth="all", no adapt) reads the
        # unit-norm sentence embedding, PretrainedTextEmbeddings' default
        # features, so the head is that tuned probe (on the raw pooled states
        # RidgeCV lost 0.04 R², bench_lora.py). A head trained with the encoder,
        # or behind an adaptation bottleneck, reads the raw pooled token states.
        n_blocks = len(backbone.blocks)
        frozen = frozen_block_count(self.freeze_depth, n_blocks, backbone.name)
        probe = frozen == n_blocks and getattr(self, "adapt", None) is None
        backbone.module.normalize = probe  # type: ignore[assignment]  # torch stubs
        return backbone

    def _coerce(self, X) -> list:
        return as_text_list(X)

    def _sample_key(self, item) -> str:
        return text_key(item)

    def _prefix_cacheable(self) -> bool:
        """EDA or a callable change the tokens before the frozen blocks."""
        return self.augment is None

    def _preprocessing_identity(self, backbone) -> tuple:
        tokenize = backbone.preprocess
        tokenizer = getattr(tokenize, "tokenizer", None)
        return ("text", repr(tokenize), type(tokenizer).__name__,
                len(tokenizer) if tokenizer is not None else None,
                bool(getattr(tokenize, "lowercase", False)), self.max_length_)

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
