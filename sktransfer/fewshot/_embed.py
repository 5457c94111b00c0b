"""Embedding texts with a backbone held in memory (a tuned copy, not a spec).

``PretrainedTextEmbeddings`` does the work (length-sorted batches, chunks cut
to their own longest text on a CPU, autocast on CUDA); this subclass only
hands it the backbone instead of resolving ``model``, runs it with torch, and
never caches (the cache is keyed by the spec, not by tuned weights).
"""

from __future__ import annotations

import numpy as np

from sktransfer.backbones import Backbone, token_length
from sktransfer.text import PretrainedTextEmbeddings

__all__ = ["embed_with"]


class _HeldEmbeddings(PretrainedTextEmbeddings):
    """A ``PretrainedTextEmbeddings`` whose backbone is ``_held`` (set before fit)."""

    _held: Backbone

    def _resolve(self):
        self.max_length_ = token_length(self._held, self.max_length)
        return self._held

    def _model_identity(self):
        return ("held", id(self._held), self.max_length_)

    def _runner_parts(self):
        module, probe, _, _ = super()._runner_parts()
        return module, probe, None, None  # no identity: not exported, not shared


def embed_with(backbone: Backbone, texts: list[str], *, max_length, device,
               batch_size: int = 64) -> np.ndarray:
    """Unit-norm float32 embeddings of ``texts`` by ``backbone`` (eval mode)."""
    if not texts:
        return np.zeros((0, backbone.out_features), dtype=np.float32)
    embedder = _HeldEmbeddings(model="held", batch_size=batch_size,
                               max_length=max_length, device=device, cache=False,
                               runtime="torch")
    embedder._held = backbone
    backbone.module.eval()
    return embedder.fit(texts).transform(texts)

