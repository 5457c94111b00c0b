"""``PretrainedTextEmbeddings``: texts -> embeddings from a pretrained model."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sktransfer._embedding.embedder import BaseEmbedder, shared_model
from sktransfer._embedding.runtime import TOKENS_PER_PASS
from sktransfer._utils.device import autocast
from sktransfer._utils.engine import prefetch
from sktransfer._utils.options import TEXT_POOLING_NAMES
from sktransfer._utils.params import declare, store_parameters
from sktransfer.backbones import (
    BUNDLED_TEXT,
    resolve_backbone,
    spec_identity,
    token_length,
)
from sktransfer.cache import text_key
from sktransfer.data import as_text_list
from sktransfer.exceptions import ParameterError

__all__ = ["TEXT_POOLINGS", "PretrainedTextEmbeddings", "TextEmbedding", "TextLayers"]

TEXT_POOLINGS = TEXT_POOLING_NAMES

# Texts are sorted by length (longest first) within windows of this many
# batches, so that each batch pads little while results stream out in order.
SORT_WINDOW = 32
# On a CPU a batch runs in chunks of texts of similar token length, each cut
# to its own longest text and holding about this many tokens (rows x width;
# at least one row). One long text used to pad its whole batch: with chunks
# torch runs chatterbot texts 1.8x faster, ONNX Runtime 2x (RESULTS.md, O2).
CHUNK_TOKENS = TOKENS_PER_PASS  # per runtime; each runner reads its own


@declare("embeddings", "text")
class PretrainedTextEmbeddings(BaseEmbedder):
    """Embed texts with a pretrained model, as a scikit-learn transformer.

    Attributes
    ----------
    backbone_ : Backbone
        The resolved model (``sktransfer.backbones.resolve_backbone``):
        ``module`` maps a tokenized batch to sentence embeddings,
        ``preprocess`` is the tokenizer, ``blocks`` the embeddings and each
        encoder layer; ``data_config["kind"]`` is ``"sentence-transformers"``,
        ``"hf"`` or ``"word2vec"`` and ``data_config["source"]`` where the
        weights come from.
    n_features_out_ : int
        Width of the embeddings.
    max_length_ : int or None
        The truncation length in effect.
    device_ : str
        The device the model runs on.
    runtime_ : str or None
        ``"onnx"``, ``"onnx-int8"`` or ``"torch"`` (None for word vectors).
    int8_calibration_ : None
        Dynamic quantization needs no calibration (kept for symmetry).

    See Also
    --------
    sktransfer.PretrainedImageFeatures : the same transformer for images.
    sktransfer.FineTunedTextClassifier : train the encoder instead of freezing it.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer import PretrainedTextEmbeddings
    >>> clf = make_pipeline(PretrainedTextEmbeddings("all-MiniLM-L6-v2"),
    ...                     LogisticRegression(max_iter=1000))
    """

    _embeds = "text"  # what it embeds (sktransfer._embedding.files saves it)

    _auto_runtime = "torch"  # see the ``runtime`` parameter

    def __init__(
        self,
        model: str | os.PathLike[str] = BUNDLED_TEXT,
        layer: int | None = None,
        pooling: str = "mean",
        batch_size: int = 64,
        normalize: bool = True,
        max_length: int | None = None,
        device: str | torch.device = "auto",
        cache: bool | str | os.PathLike[str] | None = True,
        progress: bool = False,
        runtime: str = "auto",
    ):
        store_parameters(self, locals())

    def _resolve(self):
        key = ("text", spec_identity(self.model), self.device_)
        backbone = shared_model(key, self._build_backbone)
        self.max_length_ = token_length(backbone, self.max_length)
        if self._own_output():
            return backbone
        if backbone.data_config["kind"] == "word2vec":
            raise ParameterError(
                f"layer={self.layer!r}, pooling={self.pooling!r}: word vectors "
                f"have no layers or token states; use layer=None, pooling='mean'")
        if self.layer is not None:
            backbone.block_index(self.layer)  # validates, naming the blocks
        return backbone

    def _own_output(self) -> bool:
        """True: the model's own sentence embedding (``layer=None``, mean)."""
        return self.layer is None and self.pooling == "mean"

    def _layer_identity(self) -> tuple:
        # The default adds nothing: caches written before layers existed hold.
        return () if self._own_output() else (("layer", self.layer, self.pooling),)

    def _build_backbone(self):
        return resolve_backbone(self.model, modality="text", device=self.device_)

    def _n_out(self, backbone):
        if self._own_output():
            return backbone.out_features
        probe = backbone.preprocess(list(_PROBE_TEXTS), max_length=8)
        probe = {name: value.to(torch.device(self.device_))
                 for name, value in probe.items()}
        module = TextLayers(backbone, [(self.layer, self.pooling)], [False])
        with torch.inference_mode():
            return module(**probe).shape[1]

    def _model_identity(self):
        source = self.backbone_.data_config["source"]
        return (spec_identity(source), self.normalize, self.max_length_,
                *self._layer_identity())

    def _coerce(self, X):
        return as_text_list(X)

    def _sample_keys(self, items):
        return [text_key(text) for text in items]

    def _embedding_module(self) -> nn.Module:
        """The one module that maps a tokenized batch to the output vectors."""
        if self._own_output():
            return TextEmbedding(self.backbone_.module, self.normalize)
        return TextLayers(self.backbone_, [(self.layer, self.pooling)],
                          [self.normalize])

    def _embed_batches(self, items, indices):
        """``(rows, embeddings)`` of ``items[indices]``, one pair per batch.

        Within windows of ``SORT_WINDOW`` batches the texts run longest first,
        as in ``SentenceTransformer.encode``, so each batch pads little; each
        batch is yielded (and cached) as soon as it is computed.
        """
        module = self._embedding_module()
        n_batches = -(-len(indices) // self.batch_size)
        with tqdm(total=n_batches, disable=not self.progress, desc="embedding",
                  unit="batch") as bar:
            batches = self._token_batches(items, indices)
            if self._tokenise_ahead():
                batches = prefetch(batches)
            for rows, batch in batches:
                embedded = self._run(module, batch)
                bar.update()
                yield rows, embedded

    def _tokenise_ahead(self) -> bool:
        """Whether a background thread tokenises the next batches while one
        runs (fast tokenizers release the GIL): on an accelerator, where the
        host would otherwise leave the device waiting. On the CPU,
        tokenising is about 2% of the time (2,000 chatterbot lines with
        all-MiniLM-L6-v2) and a thread beside the network's threads costs
        as much as it saves (5.34 s against 5.17 s, best of 3)."""
        return torch.device(self.device_).type != "cpu"

    def _token_batches(self, items, indices):
        """``(rows, tokenized batch)`` in the order ``_embed_batches`` runs."""
        size = self.batch_size
        for first in range(0, len(indices), size * SORT_WINDOW):
            window = indices[first : first + size * SORT_WINDOW]
            order = np.argsort([-len(items[i]) for i in window], kind="stable")
            for start in range(0, len(window), size):
                rows = [window[i] for i in order[start : start + size]]
                yield rows, self.backbone_.preprocess(
                    [items[i] for i in rows], max_length=self.max_length_)

    def _run(self, module, batch) -> np.ndarray:
        """Embeddings of one tokenized batch (split into chunks of
        ``_chunk_tokens`` tokens on the CPU)."""
        budget, mask = self._chunk_tokens(), batch.get("attention_mask")
        if budget is None or mask is None:
            return self._forward(module, batch)
        # Longest first by real token count; each chunk keeps the columns up
        # to its last real token. Only trailing padding is cut, so a tokenizer
        # that pads on the left keeps its full width (and its results).
        order = torch.argsort(mask.sum(1), descending=True, stable=True)
        pieces, start, n_rows = [], 0, len(mask)
        while start < n_rows:
            rows = max(1, budget // _width(mask[order[start : start + 1]]))
            index = order[start : start + rows]
            width = _width(mask[index])
            pieces.append(self._forward(
                module, {name: value[index, :width] for name, value in batch.items()}))
            start += len(index)
        out = np.empty_like(pieces[0], shape=(n_rows, pieces[0].shape[1]))
        out[order.numpy()] = np.concatenate(pieces)
        return out

    def _chunk_tokens(self) -> int | None:
        """Tokens per forward pass within a batch; None: the whole batch (GPU)."""
        runner = self.runner_
        if runner is not None:
            return runner.tokens_per_pass
        on_cpu = torch.device(self.device_).type == "cpu"  # word vectors
        return CHUNK_TOKENS["torch"] if on_cpu else None

    def _forward(self, module, batch) -> np.ndarray:
        runner = self.runner_
        if runner is not None:
            return runner.run(batch, max_rows=len(batch["input_ids"]))
        device = torch.device(self.device_)  # word vectors: plain torch
        batch = {name: tensor.to(device) for name, tensor in batch.items()}
        with torch.inference_mode(), autocast(device):
            return module(**batch).float().cpu().numpy()

    def _runner_parts(self, requests=None):
        """What runs: ``(module, probe, identity, key)``, or None (word
        vectors); ``requests``: the ``(layer, pooling)`` pairs to compute side
        by side (default: this estimator's own)."""
        backbone = self.backbone_
        if backbone.data_config["kind"] == "word2vec":
            return None  # a mean of word vectors: nothing worth exporting
        probe = dict(backbone.preprocess(list(_PROBE_TEXTS),
                                         max_length=self.max_length_))
        if requests is None or list(requests) == [(self.layer, self.pooling)]:
            module, what = self._embedding_module(), self._layer_identity()
        else:
            requests = list(requests)
            module = TextLayers(backbone, requests, [self.normalize] * len(requests))
            what = (("layers", tuple(requests)),)
        identity = ("text", self.normalize, self.max_length_, *what)
        key = ("text", spec_identity(backbone.data_config["source"]),
               self.normalize, self.max_length_, *what, self.device_)
        return module, probe, identity, key


def _width(mask: torch.Tensor) -> int:
    """Columns up to the last real token of any row of ``mask`` (at least 1)."""
    used = torch.nonzero(mask.any(0))
    return int(used[-1]) + 1 if len(used) else 1


_PROBE_TEXTS = ("A short text.",
                "A longer sentence, so that the probe batch holds padding too.")


class TextEmbedding(nn.Module):
    """``(input_ids, attention_mask[, token_type_ids]) -> (n, d)`` embeddings.

    The backbone's sentence embedding, scaled to unit L2 norm when
    ``normalize`` (zero vectors stay zero): everything the transformer
    computes after tokenisation, in one module.
    """

    def __init__(self, encoder: nn.Module, normalize: bool):
        super().__init__()
        self.encoder = encoder
        self.normalize = normalize

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        out = self.encoder(input_ids, attention_mask, token_type_ids)
        return nn.functional.normalize(out, dim=1) if self.normalize else out


class TextLayers(nn.Module):
    """Token states of several layers, pooled, from one forward pass.

    ``requests``: ``(layer, pooling)`` pairs (``sktransfer.text`` names:
    ``"mean"``, ``"cls"``, ``"max"``; ``(None, "mean")`` is the model's own
    sentence embedding); ``normalize``: one flag per request. The output is
    the pooled vectors side by side, in the order of ``requests``.
    """

    def __init__(self, backbone, requests, normalize):
        super().__init__()
        self.encoder = backbone.module  # registered: its weights are the export's
        self.backbone = backbone
        self.requests = [(layer, "avg" if pooling == "mean" else pooling)
                         for layer, pooling in requests]
        self.normalize = list(normalize)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            batch["token_type_ids"] = token_type_ids
        parts = self.backbone.extract_many(batch, self.requests)
        parts = [nn.functional.normalize(part.float(), dim=1) if flag else part
                 for part, flag in zip(parts, self.normalize, strict=True)]
        return torch.cat(parts, dim=1)
